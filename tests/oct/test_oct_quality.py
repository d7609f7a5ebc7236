"""Quality, QC outputs, spacing from HEYEX XML, --isotropic without spacing, batch runs
and the OCTA-500 presets of ``octvessel reconstruct``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from octvessel.cli import main
from octvessel.data.io import write_image
from octvessel.errors import InputError
from octvessel.oct import Volume, detect_boundaries, read_volume
from octvessel.oct.heyex_xml import read_heyex_geometry
from octvessel.oct.phantom import make_volume
from octvessel.oct.quality import assess
from octvessel.oct.volume import write_volume

SMALL = dict(bscans=16, depth=160, ascans=96, field_mm=(0.8, 1.75), axial_um=4.0)

XML = """<BODY><Patient><Study><Series><NumImages>{n1}</NumImages>
<Image><ID>0</ID><OphthalmicAcquisitionContext><Width>768</Width><Height>768</Height>
<ScaleX>0.0112</ScaleX><ScaleY>0.0112</ScaleY></OphthalmicAcquisitionContext></Image>
{scans}</Series></Study></Patient></BODY>"""
SCAN = """<Image><ID>{i}</ID><OphthalmicAcquisitionContext><Width>{w}</Width>
<Height>{h}</Height><ScaleX>0.011</ScaleX><ScaleY>0.0039</ScaleY>
<Start><Coord><X>1.4</X><Y>{y:.3f}</Y></Coord></Start>
<End><Coord><X>7.1</X><Y>{y:.3f}</Y></Coord></End></OphthalmicAcquisitionContext></Image>"""


def _bscan_folder(root: Path, n: int = 4, h: int = 64, w: int = 40, xml: bool = True) -> Path:
    folder = root / "bscans"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"{i + 1}-Input.png", rng.integers(0, 255, (h, w), dtype=np.uint8))
    if xml:
        scans = "".join(SCAN.format(i=i + 1, w=w, h=h, y=6.0 - 0.03 * i) for i in range(n))
        (root / "OCT-Info.xml").write_text(XML.format(n1=n + 1, scans=scans))
    return folder


def test_spacing_comes_from_the_heyex_xml_beside_the_folder(tmp_path):
    folder = _bscan_folder(tmp_path)
    geo = read_heyex_geometry(tmp_path / "OCT-Info.xml")
    assert geo.spacing == pytest.approx((0.03, 0.0039, 0.011))
    for src in (folder, tmp_path):  # the B-scan folder, or the export folder holding it
        v = read_volume(src)
        assert v.spacing == pytest.approx((0.03, 0.0039, 0.011))
        assert v.meta["spacing_source"] == "file" and not v.meta["warnings"]


def test_assumed_spacing_is_noted_and_isotropic_needs_spacing(tmp_path, capsys):
    folder = _bscan_folder(tmp_path / "a", xml=False)
    v = read_volume(folder)
    assert v.meta["spacing_source"] == "assumed"
    assert len(v.meta["warnings"]) == 1 and "--spacing" in v.meta["warnings"][0]
    assert not read_volume(folder, spacing=(0.03, 0.004, 0.01)).meta["warnings"]
    ph = make_volume(seed=0, **SMALL)
    np.save(tmp_path / "v.npy", ph.volume.data)
    code = main(["reconstruct", "-i", str(tmp_path / "v.npy"), "-o", str(tmp_path / "o"),
                 "--isotropic", "--variant", "P1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--spacing" in err and "Traceback" not in err


def test_reconstruct_writes_surfaces_qc_and_quality(tmp_path, capsys):
    ph = make_volume(seed=1, **SMALL)
    write_volume(tmp_path / "ph.npz", ph.volume)
    out = tmp_path / "out"
    assert main(["reconstruct", "-i", str(tmp_path / "ph.npz"), "-o", str(out),
                 "--variant", "P1,P2,P3,ILM-OPL,OPL-BM"]) == 0  # fmt: skip
    info = json.loads((out / "ph_enface.json").read_text())
    assert info["surfaces"]["file"] == "ph_surfaces.npz" and info["qc"]["file"] == "ph_qc.png"
    assert (out / "ph_qc.png").stat().st_size > 10_000
    assert (out / "ph_fundus_ILM-OPL.bmp").exists() and (out / "ph_fundus_OPL-BM.bmp").exists()
    with np.load(out / "ph_surfaces.npz") as z:
        assert set(z.files) == {"ILM", "OPL", "EZ", "RPE", "BM", "confidence"}
        assert z["RPE"].shape == (16, 96) and z["RPE"].dtype == np.float32
        assert np.abs(z["RPE"] - ph.boundaries["RPE"]).mean() < 1.5
    assert info["quality"]["median_confidence"] > 0.2
    assert set(info["quality"]["jumps"]) == {"ILM", "OPL", "EZ", "RPE", "BM"}


def test_noise_is_flagged_and_constant_volumes_are_refused():
    rng = np.random.default_rng(0)
    data = rng.random((12, 200, 80), dtype=np.float32)
    found = detect_boundaries(Volume(data, (0.05, 0.004, 0.01)))
    q = assess(data, found, (0.05, 0.004, 0.01))
    assert q["median_confidence"] < 0.15
    assert any("unreliable" in w for w in q["warnings"])
    ph = make_volume(seed=2, **SMALL)
    good = assess(ph.volume.data, detect_boundaries(ph.volume), ph.volume.spacing)
    assert not any("unreliable" in w for w in good["warnings"])
    # a B-scan whose signal drops is reported as low-signal
    dim = ph.volume.data.copy()
    dim[5] = dim[5] * 0.15 + rng.random(dim[5].shape, dtype=np.float32) * 0.1
    q = assess(dim, detect_boundaries(Volume(dim, ph.volume.spacing)), ph.volume.spacing)
    assert 5 in q["low_signal_bscans"]
    for value in (0.0, 0.7):
        with pytest.raises(InputError, match="volume is constant"):
            detect_boundaries(Volume(np.full((3, 100, 40), value, np.float32), (1, 1, 1)))


def test_batch_carries_on_lists_failures_and_reruns_what_is_missing(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for seed in (0, 1):
        write_volume(src / f"ph{seed}.npz", make_volume(seed=seed, **SMALL).volume)
    np.save(src / "flat.npy", np.zeros((4, 100, 50), np.float32))
    out = tmp_path / "out"
    args = ["reconstruct", "-i", str(src), "-o", str(out), "--variant", "P1,P2"]
    assert main(args) == 2
    text = capsys.readouterr()
    assert "2 reconstructed, 0 already done, 1 failed" in text.out and "flat.npy" in text.out
    assert (out / "ph0_enface.json").exists() and (out / "ph1_enface.json").exists()
    (out / "ph1_enface.json").unlink()  # as if interrupted before the sidecar
    assert main(args) == 2
    text = capsys.readouterr().out
    assert "1 reconstructed, 1 already done, 1 failed" in text
