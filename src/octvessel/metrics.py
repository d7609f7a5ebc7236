"""Segmentation metrics as pure functions over arrays and confusion counts.

One protocol for every model: pixels inside the FOV, at the label's native resolution,
pooled over all images (the headline) and per image (mean and std). Threshold metrics come
from confusion counts; AUC-ROC and AUC-PR (average precision) from the probabilities via
scikit-learn.

Undefined values: a ratio with a zero denominator -- the precision of a model that
calls no pixel vessel, the sensitivity of an image without vessel pixels, F1 and IoU when
neither label nor prediction holds a vessel, MCC when any margin of the confusion table is
0 -- and AUCs of pixels that hold one class only are NaN: ``null`` in JSON, empty in CSV,
``n/a`` in tables, left out of means. A std over fewer than two values is undefined too
(``n/a``, not 0). An empty FOV is an error.

Note on the reference codes: the IterNet, retina-unet and BCDU-Net scripts print a
"Jaccard similarity score" computed with scikit-learn's ``jaccard_similarity_score`` on
flattened binary vectors, which (in the scikit-learn versions they used) is the fraction of
equal labels, i.e. **accuracy**. octvessel reports accuracy as accuracy and the real IoU
(Jaccard index) as ``iou`` = TP / (TP + FP + FN).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

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
    """``num / den``; NaN (undefined) when ``den`` is 0."""
    return float(num) / den if den else float("nan")


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
    """Accuracy, sensitivity, specificity, precision, F1 (= Dice), IoU and MCC from counts
    (NaN where a denominator is 0: see the module docstring)."""
    tp, fp, fn, tn = (float(v) for v in (c.tp, c.fp, c.fn, c.tn))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "mcc": float((tp * tn - fp * fn) / den) if den > 0 else float("nan"),
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
    ap = float(average_precision_score(labels, np.asarray(probs, np.float64).ravel()))
    return min(ap, 1.0)  # its sum of steps can round to 1.0000000000000002


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
    pooled_p, pooled_l, counts = [], [], []
    for i, (p, lab) in enumerate(zip(probs, labels, strict=True)):
        fov = np.ones(np.shape(lab), bool) if fovs is None else np.asarray(fovs[i], bool)
        if np.shape(fov) != np.shape(lab):
            raise UsageError(
                f"image {names[i]}: FOV shape {np.shape(fov)} differs from label shape {np.shape(lab)}"
            )
        if not fov.any():
            raise UsageError(f"image {names[i]}: the FOV mask is empty (no pixels to score)")
        p_in, l_in = np.asarray(p, np.float32)[fov], np.asarray(lab, bool)[fov]
        counts.append(confusion(p_in >= threshold, l_in))
        pooled_p.append(p_in)
        pooled_l.append(l_in)
    return summarize(pooled_p, pooled_l, counts, threshold, names)


def summarize(
    probs: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    counts: Sequence[Confusion],
    threshold: float,
    names: Sequence[str],
) -> dict:
    """:func:`evaluate`'s dict from each image's FOV pixels and its confusion counts.

    ``probs[i]`` (float32, flat) and ``labels[i]`` (bool, flat) are image i's FOV pixels,
    ``counts[i]`` their confusion at ``threshold`` (counted once, by the caller); pooled
    threshold metrics come from the summed counts, pooled AUCs from all pixels together.
    """
    per_image, total = [], Confusion(0, 0, 0, 0)
    for name, p_in, l_in, c in zip(names, probs, labels, counts, strict=True):
        total = total + c
        per_image.append(
            {
                "name": name,
                "auc_roc": auc_roc(p_in, l_in),
                "auc_pr": auc_pr(p_in, l_in),
                **threshold_metrics(c),
            }
        )
    all_p, all_l = np.concatenate(probs), np.concatenate(labels)
    pooled = {
        "auc_roc": auc_roc(all_p, all_l),
        "auc_pr": auc_pr(all_p, all_l),
        **threshold_metrics(total),
    }
    mean, std = mean_std(per_image)
    return {
        "threshold": threshold,
        "n_images": len(per_image),
        "n_pixels": int(all_l.size),
        "confusion": asdict(total),
        "pooled": pooled,
        "per_image": per_image,
        "mean": mean,
        "std": std,
        "auc_undefined": [r["name"] for r in per_image if np.isnan(r["auc_roc"])],
    }


def mean_std(rows: Sequence[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-metric mean and population std over ``rows`` (dicts with every metric; NaN and
    None left out). A mean of no values is NaN, a std of fewer than two values is NaN."""
    table = np.array(
        [[np.nan if r.get(m) is None else r[m] for m in METRICS] for r in rows], np.float64
    ).reshape(len(rows), len(METRICS))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: undefined values
        mean = np.nanmean(table, axis=0)
        std = np.nanstd(table, axis=0)
    std[np.isfinite(table).sum(axis=0) < 2] = np.nan
    return (
        dict(zip(METRICS, mean.tolist(), strict=True)),
        dict(zip(METRICS, std.tolist(), strict=True)),
    )


def fmt_metric(value: float | None, width: int = 8) -> str:
    """``value`` with 4 decimals, or ``n/a`` (None, NaN: undefined), right-aligned."""
    ok = value is not None and np.isfinite(value)
    return f"{value:>{width}.4f}" if ok else f"{'n/a':>{width}}"


def _cell(value: float) -> str:
    return fmt_metric(value)


def format_table(result: dict) -> str:
    """A plain-text table of pooled values and per-image mean +- std (``n/a``: undefined)."""
    lines = [f"{'metric':<12} {'pooled':>8} {'mean':>8} {'std':>8}"]
    for m in METRICS:
        lines.append(
            f"{m:<12} {_cell(result['pooled'][m])} {_cell(result['mean'][m])} {_cell(result['std'][m])}"
        )
    lines.append(
        f"({result['n_images']} images, {result['n_pixels']:,} pixels, threshold {result['threshold']})"
    )
    undefined = result.get("auc_undefined") or []
    if undefined:
        shown = ", ".join(undefined[:5]) + (", ..." if len(undefined) > 5 else "")
        lines.append(
            f"AUC undefined (one class only) for {len(undefined)} image(s): {shown}; "
            "their AUCs are left out of the mean"
        )
    if any(not np.isfinite(v) for v in result["pooled"].values() if v is not None) or any(
        result["pooled"].get(m) is None for m in METRICS
    ):
        lines.append("n/a: undefined (a ratio of 0 pixels, e.g. precision when none is predicted)")
    return "\n".join(lines)


# ------------------------------------------------------------------- curves, thresholds


@dataclass(frozen=True)
class Curves:
    """ROC and precision-recall curves of pooled pixels (scikit-learn's, thresholds descending).

    ``roc_thresholds[i]`` gives (``fpr[i]``, ``tpr[i]``); ``pr_thresholds[i]`` gives
    (``recall[i]``, ``precision[i]``), and the PR arrays end with the point (0, 1) that
    has no threshold. A pixel is called vessel when its probability is >= the threshold.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray

    def f1_optimal(self) -> dict[str, float]:
        """The threshold maximising F1 on these pixels, with its F1, precision and recall."""
        p, r = self.precision[:-1], self.recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        i = int(np.argmax(f1))
        return {
            "threshold": float(self.pr_thresholds[i]),
            "f1": float(f1[i]),
            "precision": float(p[i]),
            "recall": float(r[i]),
        }


def curves(probs: np.ndarray, labels: np.ndarray) -> Curves | None:
    """ROC and PR curves of flat ``probs`` against flat bool ``labels``; None for one class."""
    labels = np.asarray(labels, bool).ravel()
    if labels.all() or not labels.any():
        return None
    scores = np.asarray(probs, np.float64).ravel()
    fpr, tpr, roc_t = roc_curve(labels, scores)
    precision, recall, pr_t = precision_recall_curve(labels, scores)
    return Curves(fpr, tpr, roc_t, precision, recall, pr_t)


def f1_optimal_threshold(probs: np.ndarray, labels: np.ndarray) -> dict[str, float] | None:
    """The threshold that maximises F1 over flat ``probs``/``labels`` (None for one class).

    Report it next to the headline numbers, never instead of them: choosing the threshold
    on the test set flatters the result.
    """
    c = curves(probs, labels)
    return None if c is None else c.f1_optimal()


def json_safe(obj: object) -> object:
    """``obj`` with NaN and infinities replaced by None (strict JSON), numpy scalars as floats."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
