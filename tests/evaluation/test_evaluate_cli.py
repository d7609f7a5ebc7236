"""Issue 16 through `octvessel evaluate` / `report`: an interrupted --save-predictions
resumes (case 8), sizes and paths (case 9), undefined ratios and flag hints (case 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from octvessel import atomic
from octvessel.cli import main
from octvessel.data import read_mask, write_image
from octvessel.inference.predictor import Predictor

pytestmark = pytest.mark.usefixtures("leave_the_allocator_alone")


def strict_json(path: Path) -> dict:
    """``path`` parsed as strict JSON (NaN / Infinity refused)."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def dataset(generic_dataset) -> tuple[Path, dict]:
    """(the conftest's 3-image generic dataset, {"labels": {name: bool 30 x 34}})."""
    labels = {f"case{i}": read_mask(generic_dataset / "labels" / f"case{i}.png") for i in range(3)}
    return generic_dataset, {"labels": labels}


@pytest.fixture
def bundle(tmp_path, make_tiny_iternet) -> Path:
    from octvessel.models import save_pretrained

    return save_pretrained(make_tiny_iternet(), tmp_path / "model")


# ------------------------------------------------------------------ case 8: resume


def test_interrupted_save_predictions_resumes_and_overwrite_redoes(
    dataset, bundle, tmp_path, monkeypatch, capsys
):
    data, _ = dataset
    base = ["evaluate", "-d", str(data), "-m", str(bundle), "--save-predictions", "--no-progress"]
    assert main([*base, "-o", str(tmp_path / "whole")]) == 0  # uninterrupted, for comparison
    calls = []
    real = Predictor.predict_array

    def predict(self, image, *args, **kwargs):
        calls.append(1)
        if stop_at and len(calls) == stop_at:
            raise KeyboardInterrupt  # Ctrl-C while the third image runs
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict_array", predict)
    out = tmp_path / "ev"
    stop_at = 3
    assert main([*base, "-o", str(out)]) == 130
    saved = sorted(p.name for p in (out / "predictions").glob("*_prob.tif"))
    assert saved == ["case0_prob.tif", "case1_prob.tif"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "predictions").iterdir()}
    (out / "metrics.csv").write_text("cut short\n")  # as if stopped while writing outputs
    capsys.readouterr()
    stop_at, calls[:] = None, []
    assert main([*base, "-o", str(out)]) == 0  # the same command continues
    assert len(calls) == 1  # only the image the interruption cut short
    assert "kept the saved predictions of 2 image(s)" in capsys.readouterr().out
    for name, mtime in before.items():
        if name.startswith(("case0", "case1")):
            assert (out / "predictions" / name).stat().st_mtime_ns == mtime, name
    resumed = strict_json(out / "metrics.json")
    whole = strict_json(tmp_path / "whole" / "metrics.json")
    assert resumed["pooled"] == whole["pooled"] and resumed["per_image"] == whole["per_image"]
    assert resumed["source"]["saved_predictions"]["kept_from_an_earlier_run"] == [
        "case0",
        "case1",
    ]
    calls[:] = []
    assert main([*base, "-o", str(out), "--overwrite"]) == 0
    assert len(calls) == 3  # --overwrite predicts every image again
    assert "kept the saved" not in capsys.readouterr().out


# ------------------------------------------------------------------ case 9: sizes, paths


def _predictions(folder: Path, labels: dict, resize: dict) -> None:
    """Probability maps of ``labels``; ``resize[name]`` = the (H, W) to write instead."""
    for name, label in labels.items():
        prob = np.clip(0.7 * label + 0.2, 0, 1).astype(np.float32)
        if name in resize:
            h, w = resize[name]
            rows = np.arange(h) * label.shape[0] // h
            cols = np.arange(w) * label.shape[1] // w
            prob = prob[np.ix_(rows, cols)]
        write_image(folder / f"{name}_prob.tif", prob)


def test_same_aspect_is_resampled_with_a_note_another_is_refused(dataset, tmp_path, capsys):
    data, truth = dataset  # labels 30 x 34 (H x W)
    _predictions(tmp_path / "ok", truth["labels"], {"case1": (60, 68)})
    ok = ["evaluate", "-d", str(data), "-p", str(tmp_path / "ok"), "--no-progress"]
    assert main([*ok, "-o", str(tmp_path / "ev_ok")]) == 0
    assert "case1 68x60 -> 34x30" in capsys.readouterr().out
    _predictions(tmp_path / "bad", truth["labels"], {"case2": (30, 60)})
    bad = ["evaluate", "-d", str(data), "-p", str(tmp_path / "bad"), "--no-progress"]
    assert main([*bad, "-o", str(tmp_path / "ev_bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "case2_prob.tif" in err and "60x30" in err and "34x30" in err
    assert "aspect ratio" in err
    assert not (tmp_path / "ev_bad" / "metrics.json").exists()


def test_report_from_another_folder_finds_curves_and_images(dataset, tmp_path, monkeypatch):
    _, truth = dataset
    _predictions(tmp_path / "pred", truth["labels"], {})
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "-d", "generic_dataset", "-p", "pred", "-o", "ev", "--no-progress"]
    assert main(args) == 0  # relative paths, as a user types them
    m = strict_json(tmp_path / "ev" / "metrics.json")
    assert m["dataset"] == str((tmp_path / "generic_dataset").resolve())
    assert m["dataset_given"] == "generic_dataset"
    assert m["source"]["predictions"] == str((tmp_path / "pred").resolve())
    assert m["source"]["predictions_given"] == "pred"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", str(tmp_path / "ev")]) == 0
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "curves and image rows left out" not in html
    assert "case0: F1" in html  # the per-image rows with their pictures


# ------------------------------------------------------------------ case 11: n/a, hints


def test_undefined_ratios_print_na_and_store_null(dataset, tmp_path, capsys):
    data, truth = dataset
    atomic.write_json(data / "dataset.json", {"splits": {"test": ["case0"]}})  # one image
    pred = tmp_path / "nothing"
    write_image(pred / "case0_prob.tif", np.zeros_like(truth["labels"]["case0"], np.float32))
    args = ["evaluate", "-d", str(data), "-p", str(pred), "-o", str(tmp_path / "ev")]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["precision"] == ["n/a", "n/a", "n/a"]  # a model that predicts nothing
    assert rows["sensitivity"][:2] == ["0.0000", "0.0000"]
    assert all(rows[m][2] == "n/a" for m in ("accuracy", "sensitivity", "f1"))  # std of 1
    m = strict_json(tmp_path / "ev" / "metrics.json")  # valid JSON: null, never NaN
    assert m["pooled"]["precision"] is None and m["per_image"][0]["precision"] is None
    assert m["pooled"]["sensitivity"] == 0.0
    assert all(v is None for v in m["std"].values())
    csv_pooled = (tmp_path / "ev" / "metrics.csv").read_text().splitlines()[2].split(",")
    assert csv_pooled[0] == "POOLED" and "" in csv_pooled


def test_cli_hints_use_flags_not_python(dataset, tmp_path, capsys):
    data, truth = dataset
    _predictions(tmp_path / "pred", truth["labels"], {})
    args = ["evaluate", "-d", str(data), "-p", str(tmp_path / "pred"), "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "ev")]) == 0
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "ev")]) == 2  # exists already
    err = capsys.readouterr().err
    assert "--overwrite" in err and "=True" not in err and "overwrite=" not in err
    soft = np.tile(np.array([0, 100, 200], np.uint8), (30, 12))[:, :34]
    write_image(data / "labels" / "case0.png", soft)  # three levels: not a mask
    assert main([*args, "-o", str(tmp_path / "ev2")]) == 2
    err = capsys.readouterr().err
    assert "not binary" in err and "read_mask(" not in err and "threshold=" not in err


def test_error_messages_keep_the_python_form_for_library_users():
    from octvessel import atomic
    from octvessel.errors import InputError

    with pytest.raises(InputError) as exc:
        atomic.check_writable(Path(__file__), overwrite=False)
    assert "--overwrite" in str(exc.value) and "overwrite=True" not in str(exc.value)
    assert "overwrite=True" in exc.value.python_message
