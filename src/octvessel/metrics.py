"""Segmentation metrics as pure functions over arrays (DESIGN.md section 7).

One protocol for every model: pixels inside the FOV, at the label's native resolution,
pooled over all images (the headline) and per image (mean and std). Threshold metrics come
from confusion counts; AUC-ROC and AUC-PR (average precision) from the probabilities via
scikit-learn.

Empty-mask rule: a ratio whose numerator and denominator are both 0 is 1.0 (nothing to
find and nothing found is perfect); MCC with a zero denominator is 0.0; AUCs are NaN
when the pixels hold only one class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from octvessel.errors import UsageError

THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "iou", "mcc")
METRICS = ("auc_roc", "auc_pr", *THRESHOLD_METRICS)


@dataclass(frozen=True)
class Confusion:
    """Pixel counts: true/false positives/negatives."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 and num == 0 else (float(num) / den if den else 0.0)


def confusion(pred: np.ndarray, label: np.ndarray, fov: np.ndarray | None = None) -> Confusion:
    """Counts of ``pred`` (bool H x W) against ``label`` (bool H x W) inside ``fov`` (bool H x W)."""
    pred, label = np.asarray(pred, bool), np.asarray(label, bool)
    if pred.shape != label.shape:
        raise UsageError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if fov is not None:
        fov = np.asarray(fov, bool)
        if fov.shape != label.shape:
            raise UsageError(f"FOV shape {fov.shape} differs from label shape {label.shape}")
        pred, label = pred[fov], label[fov]
    tp = int(np.count_nonzero(pred & label))
    fp = int(np.count_nonzero(pred & ~label))
    fn = int(np.count_nonzero(~pred & label))
    return Confusion(tp, fp, fn, int(pred.size) - tp - fp - fn)


def threshold_metrics(c: Confusion) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, precision, F1 (= Dice), IoU and MCC from counts."""
    tp, fp, fn, tn = (float(v) for v in (c.tp, c.fp, c.fn, c.tn))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "mcc": float((tp * tn - fp * fn) / den) if den > 0 else 0.0,
    }


def auc_roc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of flat ``probs`` against flat bool ``labels`` (NaN for one class)."""
    labels = np.asarray(labels, bool).ravel()
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(probs, np.float64).ravel()))


def auc_pr(probs: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives."""
    labels = np.asarray(labels, bool).ravel()
    if not labels.any():
        return float("nan")
    return float(average_precision_score(labels, np.asarray(probs, np.float64).ravel()))


def _check(
    probs: Sequence[np.ndarray], labels: Sequence[np.ndarray], fovs: Sequence[np.ndarray] | None
) -> None:
    if len(probs) != len(labels) or (fovs is not None and len(fovs) != len(labels)):
        raise UsageError(
            f"got {len(probs)} probability maps, {len(labels)} labels and {len(fovs) if fovs is not None else 'no'} FOV masks; expected equal counts"
        )
    if not probs:
        raise UsageError("no images to evaluate")
    for i, (p, lab) in enumerate(zip(probs, labels, strict=True)):
        if np.shape(p) != np.shape(lab):
            raise UsageError(
                f"image {i}: probability shape {np.shape(p)} differs from label shape {np.shape(lab)} (resample predictions to the label grid first)"
            )


def evaluate(
    probs: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    fovs: Sequence[np.ndarray] | None = None,
    threshold: float = 0.5,
    names: Sequence[str] | None = None,
) -> dict:
    """Score probability maps against labels, pooled and per image.

    Args:
        probs: float H x W maps in [0, 1], one per image.
        labels: bool H x W labels at the same (native) grid.
        fovs: bool H x W masks; None scores every pixel.
        threshold: probability at or above which a pixel is called vessel.
        names: image names for the per-image table.

    Returns:
        ``{"threshold", "n_images", "n_pixels", "pooled": {metric: value},
        "per_image": [{"name", metric: value}], "mean": {...}, "std": {...}}``.
    """
    probs, labels = list(probs), list(labels)
    fovs = list(fovs) if fovs is not None else None
    _check(probs, labels, fovs)
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold={threshold}: expected a value in [0, 1]")
    names = list(names) if names is not None else [str(i) for i in range(len(probs))]
    pooled_p, pooled_l, per_image, total = [], [], [], Confusion(0, 0, 0, 0)
    for i, (p, lab) in enumerate(zip(probs, labels, strict=True)):
        fov = np.ones(np.shape(lab), bool) if fovs is None else np.asarray(fovs[i], bool)
        p_in, l_in = np.asarray(p, np.float32)[fov], np.asarray(lab, bool)[fov]
        c = confusion(p_in >= threshold, l_in)
        total = total + c
        pooled_p.append(p_in)
        pooled_l.append(l_in)
        row = {
            "name": names[i],
            "auc_roc": auc_roc(p_in, l_in),
            "auc_pr": auc_pr(p_in, l_in),
            **threshold_metrics(c),
        }
        per_image.append(row)
    all_p, all_l = np.concatenate(pooled_p), np.concatenate(pooled_l)
    pooled = {
        "auc_roc": auc_roc(all_p, all_l),
        "auc_pr": auc_pr(all_p, all_l),
        **threshold_metrics(total),
    }
    table = np.array([[r[m] for m in METRICS] for r in per_image], dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = dict(zip(METRICS, np.nanmean(table, axis=0).tolist(), strict=True))
        std = dict(zip(METRICS, np.nanstd(table, axis=0).tolist(), strict=True))
    return {
        "threshold": threshold,
        "n_images": len(probs),
        "n_pixels": int(all_l.size),
        "confusion": asdict(total),
        "pooled": pooled,
        "per_image": per_image,
        "mean": mean,
        "std": std,
    }


def format_table(result: dict) -> str:
    """A plain-text table of pooled values and per-image mean +- std."""
    lines = [f"{'metric':<12} {'pooled':>8} {'mean':>8} {'std':>8}"]
    for m in METRICS:
        lines.append(
            f"{m:<12} {result['pooled'][m]:>8.4f} {result['mean'][m]:>8.4f} {result['std'][m]:>8.4f}"
        )
    lines.append(
        f"({result['n_images']} images, {result['n_pixels']:,} pixels, threshold {result['threshold']})"
    )
    return "\n".join(lines)
