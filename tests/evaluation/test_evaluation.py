"""``octvessel evaluate``: the one metric protocol on a dataset, its files, and its errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from octvessel import atomic
from octvessel.cli import main
from octvessel.data import write_image, write_mask
from octvessel.errors import InputError
from octvessel.evaluation import evaluate_dataset, format_report
from octvessel.inference import InferenceConfig
from octvessel.inference.predictor import Predictor
from octvessel.metrics import (
    auc_roc,
    confusion,
    curves,
    evaluate,
    f1_optimal_threshold,
    format_table,
    json_safe,
    threshold_metrics,
)
from octvessel.models import create_model

H, W = 30, 34


pytestmark = pytest.mark.usefixtures("leave_the_allocator_alone")


def strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def make_case(root: Path, n: int = 3, seed: int = 0, fov_margin: int = 4) -> dict:
    """A generic dataset (split test) with FOV masks, and probability maps for it."""
    rng = np.random.default_rng(seed)
    labels, fovs, probs = {}, {}, {}
    for i in range(n):
        name = f"case{i}"
        label = rng.random((H, W)) < 0.25
        fov = np.zeros((H, W), bool)
        fov[fov_margin:-fov_margin, fov_margin:-fov_margin] = True
        prob = np.clip(0.45 * label + 0.6 * rng.random((H, W)), 0, 1).astype(np.float32)
        write_image(root / "images" / f"{name}.png", (rng.random((H, W, 3)) * 255).astype(np.uint8))
        write_mask(root / "labels" / f"{name}.png", label)
        write_mask(root / "masks" / f"{name}.png", fov)
        labels[name], fovs[name], probs[name] = label, fov, prob
    atomic.write_json(root / "dataset.json", {"splits": {"test": list(labels)}})
    return {"labels": labels, "fovs": fovs, "probs": probs}


def write_predictions(folder: Path, probs: dict, suffix: str = "_prob.tif") -> None:
    for name, p in probs.items():
        write_image(folder / f"{name}{suffix}", p)


def test_protocol_pools_fov_pixels_and_writes_all_files(tmp_path):
    case = make_case(tmp_path / "ds")
    write_predictions(tmp_path / "pred", case["probs"])
    res = evaluate_dataset(
        tmp_path / "ds", tmp_path / "eval", predictions=tmp_path / "pred", progress=False
    )
    names = sorted(case["labels"])
    # by hand: pool the FOV pixels of every image
    all_p = np.concatenate([case["probs"][n][case["fovs"][n]] for n in names])
    all_l = np.concatenate([case["labels"][n][case["fovs"][n]] for n in names])
    total = confusion(all_p >= 0.5, all_l)
    assert res["n_pixels"] == all_l.size == 3 * (H - 8) * (W - 8)
    assert res["pooled"]["auc_roc"] == pytest.approx(auc_roc(all_p, all_l), abs=1e-12)
    for key, value in threshold_metrics(total).items():
        assert res["pooled"][key] == pytest.approx(value)
    one = res["per_image"][1]
    p, lab, f = (case[k]["case1"] for k in ("probs", "labels", "fovs"))
    assert one["name"] == "case1"
    assert one["f1"] == pytest.approx(threshold_metrics(confusion(p >= 0.5, lab, f))["f1"])
    assert one["tp"] + one["fp"] + one["fn"] + one["tn"] == f.sum()
    assert res["split"] == "test" and not res["resampled"]

    files = {p.name for p in (tmp_path / "eval").iterdir()}
    assert files == {"metrics.json", "metrics.csv", "roc.png", "pr.png"}
    saved = strict_json(tmp_path / "eval" / "metrics.json")
    assert saved["pooled"]["mcc"] == pytest.approx(res["pooled"]["mcc"])
    assert saved["f1_optimal"]["threshold"] == pytest.approx(res["f1_optimal"]["threshold"])
    assert any("accuracy" in n and "Jaccard" in n for n in saved["notes"])
    rows = list(csv.DictReader((tmp_path / "eval" / "metrics.csv").open()))
    assert [r["name"] for r in rows] == [*names, "POOLED", "MEAN", "STD"]
    assert float(rows[3]["auc_pr"]) == pytest.approx(res["pooled"]["auc_pr"], rel=1e-5)
    assert int(rows[3]["tp"]) == total.tp
    # existing outputs are kept unless overwrite
    with pytest.raises(InputError, match="exists already"):
        evaluate_dataset(
            tmp_path / "ds", tmp_path / "eval", predictions=tmp_path / "pred", progress=False
        )
    evaluate_dataset(
        tmp_path / "ds",
        tmp_path / "eval",
        predictions=tmp_path / "pred",
        overwrite=True,
        progress=False,
    )


def test_f1_optimal_threshold_is_the_brute_force_best():
    rng = np.random.default_rng(3)
    labels = rng.random(400) < 0.3
    probs = np.clip(0.35 * labels + 0.7 * rng.random(400), 0, 1)
    best = f1_optimal_threshold(probs, labels)
    f1s = {t: threshold_metrics(confusion(probs >= t, labels))["f1"] for t in np.unique(probs)}
    t_star = max(f1s, key=f1s.get)
    assert best["f1"] == pytest.approx(f1s[t_star])
    assert best["f1"] == pytest.approx(f1s[best["threshold"]])
    assert curves(probs, np.zeros(400, bool)) is None
    assert f1_optimal_threshold(probs, np.ones(400, bool)) is None


def test_predictions_of_another_size_are_resampled_and_said_so(tmp_path):
    case = make_case(tmp_path / "ds", n=2)
    write_predictions(tmp_path / "pred", case["probs"])
    big = np.kron(case["probs"]["case1"], np.ones((2, 2), np.float32))  # 60 x 68
    write_image(tmp_path / "pred" / "case1_prob.tif", big)
    res = evaluate_dataset(tmp_path / "ds", None, predictions=tmp_path / "pred", progress=False)
    assert res["resampled"] == [{"name": "case1", "from": [2 * H, 2 * W], "to": [H, W]}]
    assert any("resampled" in n for n in res["notes"]) and "resampled" in format_report(res)
    with pytest.raises(InputError, match=r"68x60 \(WxH\).*34x30") as err:
        evaluate_dataset(
            tmp_path / "ds",
            None,
            predictions=tmp_path / "pred",
            allow_resample=False,
            progress=False,
        )
    assert "case1_prob.tif" in str(err.value)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_missing_prediction_empty_fov_and_unreadable_file_are_input_errors(tmp_path):
    case = make_case(tmp_path / "ds", n=2)
    write_predictions(tmp_path / "pred", {"case0": case["probs"]["case0"]})
    with pytest.raises(InputError, match="no prediction for image case1"):
        evaluate_dataset(tmp_path / "ds", None, predictions=tmp_path / "pred", progress=False)
    write_image(tmp_path / "pred" / "case1.png", case["probs"]["case1"], bits=16)  # other name form
    res = evaluate_dataset(tmp_path / "ds", None, predictions=tmp_path / "pred", progress=False)
    assert res["n_images"] == 2
    (tmp_path / "pred" / "case0_prob.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="case0_prob.tif"):
        evaluate_dataset(tmp_path / "ds", None, predictions=tmp_path / "pred", progress=False)
    write_mask(tmp_path / "ds" / "masks" / "case0.png", np.zeros((H, W), bool))
    write_predictions(tmp_path / "pred", case["probs"])
    with pytest.raises(InputError, match="FOV mask is empty") as err:
        evaluate_dataset(tmp_path / "ds", None, predictions=tmp_path / "pred", progress=False)
    assert "case0.png" in str(err.value)


def test_image_without_vessels_has_undefined_auc_and_no_crash(tmp_path, capsys):
    case = make_case(tmp_path / "ds", n=2)
    write_mask(tmp_path / "ds" / "labels" / "case0.png", np.zeros((H, W), bool))
    write_predictions(tmp_path / "pred", case["probs"])
    code = main(
        [
            "evaluate",
            "-d",
            str(tmp_path / "ds"),
            "-p",
            str(tmp_path / "pred"),
            "-o",
            str(tmp_path / "ev"),
        ]
        + ["--no-progress"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "AUC undefined (one class only) for 1 image(s): case0" in out
    saved = strict_json(tmp_path / "ev" / "metrics.json")
    row0 = saved["per_image"][0]
    assert row0["name"] == "case0" and row0["auc_roc"] is None and row0["auc_pr"] is None
    assert saved["auc_undefined"] == ["case0"]
    assert saved["mean"]["auc_roc"] == pytest.approx(saved["per_image"][1]["auc_roc"])
    assert math.isfinite(saved["pooled"]["auc_roc"])
    row = next(csv.DictReader((tmp_path / "ev" / "metrics.csv").open()))
    assert row["auc_roc"] == ""


def test_evaluating_a_model_equals_evaluating_its_saved_predictions(tmp_path, capsys):
    make_case(tmp_path / "ds", n=2)
    torch.manual_seed(0)
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(tmp_path / "model")
    code = main(
        [
            "evaluate",
            "-d",
            str(tmp_path / "ds"),
            "-m",
            str(tmp_path / "model"),
            "-o",
            str(tmp_path / "ev"),
        ]
        + ["--save-predictions", "--method", "tiles", "--tile", "16", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    by_model = strict_json(tmp_path / "ev" / "metrics.json")
    assert by_model["source"]["inference"]["method"] == "tiles"
    res = evaluate_dataset(
        tmp_path / "ds", None, predictions=tmp_path / "ev" / "predictions", progress=False
    )
    assert res["pooled"]["auc_roc"] == pytest.approx(by_model["pooled"]["auc_roc"], abs=1e-9)
    assert res["confusion"] == by_model["confusion"]
    predictor = Predictor.from_pretrained(
        tmp_path / "model", config=InferenceConfig(method="whole")
    )
    whole = evaluate_dataset(tmp_path / "ds", None, predictor=predictor, progress=False)
    assert whole["source"]["inference"]["method"] == "whole"


def test_cli_evaluate_bad_input_exits_2(tmp_path, capsys):
    make_case(tmp_path / "ds", n=1)
    code = main(
        [
            "evaluate",
            "-d",
            str(tmp_path / "ds"),
            "-p",
            str(tmp_path / "nope"),
            "-o",
            str(tmp_path / "ev"),
        ]
    )
    assert code == 2 and "predictions folder not found" in capsys.readouterr().err
    code = main(
        ["evaluate", "-d", str(tmp_path / "nods"), "-p", str(tmp_path), "-o", str(tmp_path / "ev")]
    )
    assert code == 2 and "nods" in capsys.readouterr().err


def test_metrics_api_is_kept_and_nan_is_reported():
    labels = [np.array([[1, 0], [0, 0]], bool), np.zeros((2, 2), bool)]
    probs = [np.array([[0.9, 0.2], [0.1, 0.6]], np.float32), np.full((2, 2), 0.3, np.float32)]
    res = evaluate(probs, labels, names=["a", "b"])
    assert math.isnan(res["per_image"][1]["auc_roc"]) and res["auc_undefined"] == ["b"]
    rows = {line.split()[0]: line.split()[1:] for line in format_table(res).splitlines()[1:]}
    assert "n/a" not in rows["auc_roc"][:2]  # pooled and mean AUCs are defined
    assert rows["auc_roc"][2] == "n/a"  # a std over the one defined AUC is not 0
    only = format_table(evaluate(probs[1:], labels[1:]))
    assert only.splitlines()[1].split()[1:] == ["n/a", "n/a", "n/a"]
    assert json_safe({"x": [float("nan"), np.float32(1.5), np.int64(2)]}) == {"x": [None, 1.5, 2]}
    with pytest.raises(ValueError, match="FOV mask is empty"):
        evaluate(probs, labels, [np.zeros((2, 2), bool), np.ones((2, 2), bool)])
