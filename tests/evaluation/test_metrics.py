"""Metric functions on tiny masks computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from octvessel.errors import UsageError
from octvessel.metrics import Confusion, auc_pr, auc_roc, confusion, evaluate, threshold_metrics


def test_confusion_counts_inside_the_fov():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    label = np.array([[1, 0, 0], [1, 1, 1]], bool)
    fov = np.array([[1, 1, 1], [1, 1, 0]], bool)
    assert confusion(pred, label) == Confusion(tp=2, fp=1, fn=2, tn=1)
    assert confusion(pred, label, fov) == Confusion(tp=2, fp=1, fn=1, tn=1)


def test_threshold_metrics_by_hand():
    m = threshold_metrics(Confusion(tp=6, fp=2, fn=4, tn=88))
    assert m["accuracy"] == pytest.approx(94 / 100)
    assert m["sensitivity"] == pytest.approx(6 / 10)
    assert m["specificity"] == pytest.approx(88 / 90)
    assert m["precision"] == pytest.approx(6 / 8)
    assert m["f1"] == pytest.approx(12 / 18)
    assert m["iou"] == pytest.approx(6 / 12)
    assert m["mcc"] == pytest.approx((6 * 88 - 2 * 4) / math.sqrt(8 * 10 * 90 * 92))


def test_undefined_ratios_are_nan_not_a_perfect_score():
    """Issue 16 case 11: nothing to find and nothing found is undefined, not 1.0."""
    m = threshold_metrics(Confusion(tp=0, fp=0, fn=0, tn=50))
    for name in ("sensitivity", "precision", "f1", "iou", "mcc"):
        assert math.isnan(m[name]), name
    assert m["accuracy"] == 1.0 and m["specificity"] == 1.0
    m = threshold_metrics(Confusion(tp=0, fp=0, fn=7, tn=43))  # a model that predicts nothing
    assert math.isnan(m["precision"]) and math.isnan(m["mcc"])
    assert m["sensitivity"] == 0.0 and m["f1"] == 0.0
    m = threshold_metrics(Confusion(tp=0, fp=3, fn=0, tn=47))  # no vessel in the label
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and math.isnan(m["sensitivity"])


def test_auc_by_hand():
    probs = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1], bool)
    assert auc_roc(probs, labels) == pytest.approx(0.75)
    assert auc_roc(probs, ~labels) == pytest.approx(0.25)
    assert math.isnan(auc_roc(probs, np.ones(4, bool)))
    assert auc_pr(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0], bool)) == pytest.approx(1.0)


def test_evaluate_pools_pixels_and_reports_per_image():
    rng = np.random.default_rng(0)
    labels = [rng.random((8, 9)) < 0.3 for _ in range(3)]
    probs = [
        np.clip(lab * 0.7 + rng.random(lab.shape) * 0.5, 0, 1).astype(np.float32) for lab in labels
    ]
    fovs = [np.ones_like(lab) for lab in labels]
    fovs[1][:, :3] = False
    res = evaluate(probs, labels, fovs, threshold=0.5, names=["a", "b", "c"])
    assert res["n_images"] == 3 and res["n_pixels"] == 8 * 9 * 3 - 8 * 3
    total = sum(
        (confusion(p >= 0.5, lab, f) for p, lab, f in zip(probs, labels, fovs, strict=True)),
        Confusion(0, 0, 0, 0),
    )
    assert res["pooled"]["accuracy"] == pytest.approx(threshold_metrics(total)["accuracy"])
    assert [r["name"] for r in res["per_image"]] == ["a", "b", "c"]
    assert res["mean"]["f1"] == pytest.approx(np.mean([r["f1"] for r in res["per_image"]]))
    one = evaluate(probs[:1], labels[:1], fovs[:1])
    for key in ("auc_roc", "f1", "mcc"):
        assert one["pooled"][key] == pytest.approx(one["per_image"][0][key])
    perfect = evaluate([lab.astype(np.float32) for lab in labels], labels)
    assert perfect["pooled"]["auc_roc"] == 1.0 and perfect["pooled"]["f1"] == 1.0


def test_evaluate_refuses_mismatched_shapes():
    with pytest.raises(UsageError, match="resample"):
        evaluate([np.zeros((4, 4))], [np.zeros((4, 5), bool)])
    with pytest.raises(UsageError, match="equal counts"):
        evaluate([np.zeros((4, 4))], [])
