"""``octvessel measure`` on files: tables, pictures, metadata, bad input (exit 2, nothing written)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from octvessel.cli import main
from octvessel.data.io import write_image, write_mask
from octvessel.morphometry import COLUMNS


@pytest.fixture()
def mask_dir(tmp_path):
    m = np.zeros((120, 160), bool)
    m[50:56, 10:150] = True
    m[56:110, 78:82] = True
    d = tmp_path / "pred"
    write_mask(d / "eye_mask.png", m)
    write_image(d / "eye_prob.png", m.astype(np.float32) * 0.9)
    (d / "prediction.json").write_text(json.dumps({"spacing": [0.02, 0.01]}))
    return d


def test_measure_writes_tables_and_pictures(mask_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["measure", "-i", str(mask_dir), "-o", str(out), "--fovea", "60,80",
               "--laterality", "OS"])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader((out / "measurements.csv").open()))
    assert tuple(rows[0]) == COLUMNS
    assert [r["region"] for r in rows][:2] == ["whole", "centre"] and len(rows) == 10
    info = json.loads((out / "measurements.json").read_text())
    assert info["images"]["eye"]["spacing_source"].endswith("prediction.json")
    assert info["images"]["eye"]["kind"] == "probability"
    assert (out / "eye_measure.png").stat().st_size > 1000
    assert float(rows[0]["length_mm"]) == pytest.approx(140 * 0.01 + 54 * 0.02, rel=0.1)


def test_measure_without_spacing_says_pixels(mask_dir, tmp_path, capsys):
    (mask_dir / "prediction.json").unlink()
    out = tmp_path / "out"
    assert main(["measure", "-i", str(mask_dir / "eye_mask.png"), "-o", str(out)]) == 0
    assert "PIXELS" in capsys.readouterr().out
    assert json.loads((out / "measurements.json").read_text())["images"]["eye"]["units"] == "px"


@pytest.mark.parametrize(
    ("make", "extra"),
    [
        ("empty", []),
        ("full", []),
        ("grey", []),
        ("ok", ["--spacing", "0,0.01"]),
        ("ok", ["--spacing=-1,0.01"]),
        ("ok", ["--spacing", "50,50"]),
        ("ok", ["--spacing", "0.01,0.01", "--fovea", "500,10"]),
    ],
)
def test_bad_input_exit_2_nothing_written(make, extra, tmp_path, capsys):
    m = np.zeros((40, 40), np.uint8)
    if make == "ok":
        m[18:22, :] = 255
    elif make == "full":
        m[:] = 255
    elif make == "grey":
        m = (np.arange(1600).reshape(40, 40) % 7 * 30).astype(np.uint8)
    path = tmp_path / "x_mask.png"
    write_image(path, m.astype(np.float32) / 255)
    out = tmp_path / "out"
    assert main(["measure", "-i", str(path), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_report_of_a_measure_folder(mask_dir, tmp_path):
    from octvessel.report.kinds import build_report, detect_kind

    out = tmp_path / "out"
    assert main(["measure", "-i", str(mask_dir), "-o", str(out), "--fovea", "60,80",
                 "--laterality", "OD"]) == 0  # fmt: skip
    assert detect_kind(out) == "measure"
    html = build_report(out)
    assert "Morphometry (octvessel measure)" in html and "ETDRS sectors" in html
    assert "inner_nasal" in html and "prediction.json" in html
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()
