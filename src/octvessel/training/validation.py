"""Validation during training, through the inference engine and the pixel accumulator.

The trainer scores its validation images exactly as ``octvessel evaluate`` scores a model
with ``--method whole``: :func:`~octvessel.inference.predict_image` on each whole image,
then :class:`~octvessel.evaluation.PixelAccumulator` (label grid, FOV pixels), so the
validation AUC of a run and the AUC ``evaluate`` reports for its weights agree.

Which epoch is "best" is decided by one named metric, fixed when training starts
(:func:`best_metric`) and recorded in the run's ``config.json`` as ``best_metric``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from octvessel.data.sample import Sample
from octvessel.evaluation.accumulator import PixelAccumulator
from octvessel.inference.config import InferenceConfig
from octvessel.inference.engine import predict_image
from octvessel.models.base import SegmentationModel
from octvessel.preprocessing import Preprocessing

#: metric -> True when larger is better
BEST_METRICS = {"val_auc": True, "val_loss": False, "train_loss": False}
#: metric -> how messages name it
METRIC_LABELS = {
    "val_auc": "validation AUC-ROC",
    "val_loss": "validation loss",
    "train_loss": "training loss",
}
#: what validation does not bound: the whole-image pass the trainer has always made
_UNBOUNDED_MB = 1 << 40


def validation_config(precision: str) -> InferenceConfig:
    """Whole-image inference in the training precision (fp16 runs validate in fp32)."""
    return InferenceConfig(method="whole", bf16=precision == "bf16", memory_budget_mb=_UNBOUNDED_MB)


def _bce(prob: np.ndarray, label: np.ndarray) -> float:
    """Mean binary cross-entropy of flat probabilities against flat bool labels."""
    p = np.clip(prob.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(np.where(label, np.log(p), np.log1p(-p))))


def validate(
    model: SegmentationModel,
    samples: Sequence[Sample],
    pre: Preprocessing,
    device: torch.device,
    precision: str,
) -> dict[str, float]:
    """``val_auc`` (pooled AUC-ROC inside the FOV) and ``val_loss`` (mean BCE per image).

    The model is left in eval mode; the training loop puts it back in train mode.
    """
    model.eval()
    config = validation_config(precision)
    acc, losses = PixelAccumulator(), []
    for s in samples:
        prob = predict_image(model, s.image, preprocessing=pre, device=device, config=config)
        acc.update(prob, s.label, s.fov, s.name)
        losses.append(_bce(acc.probs[-1], acc.labels[-1]))
    return {"val_auc": acc.aggregate().auc_roc, "val_loss": float(np.mean(losses))}


def best_metric(val_samples: Sequence[Sample]) -> str:
    """The metric that picks ``best.safetensors``: ``val_auc`` when the validation pixels
    hold both classes, else ``val_loss``; ``train_loss`` without validation images."""
    if not val_samples:
        return "train_loss"
    has_vessel = any(bool(s.label[s.fov].any()) for s in val_samples)
    has_background = any(bool((~s.label[s.fov]).any()) for s in val_samples)
    return "val_auc" if has_vessel and has_background else "val_loss"


def improves(metric: str, value: float, best: float | None) -> bool:
    """True when ``value`` of ``metric`` beats ``best`` (None: nothing yet; NaN never does)."""
    if not math.isfinite(value):
        return best is None
    if best is None or not math.isfinite(best):
        return True
    return value > best if BEST_METRICS[metric] else value < best


def describe_best(metric: str | None, value: float | None, epoch: int | None) -> str:
    """How the epoch of ``best.safetensors`` was picked, in words.

    >>> describe_best("val_auc", 0.91234, 3)
    'best epoch 3 by validation AUC-ROC (highest): 0.9123'
    >>> describe_best("train_loss", 0.3, 2)
    'no validation images: best epoch 2 by training loss (lowest): 0.3000'
    """
    if epoch is None or value is None or metric not in BEST_METRICS:
        return "no epoch finished yet"
    label = METRIC_LABELS[metric]
    way = "highest" if BEST_METRICS[metric] else "lowest"
    text = f"best epoch {epoch} by {label} ({way}): {value:.4f}"
    if metric == "train_loss":
        return "no validation images: " + text
    if metric == "val_loss":
        return text + " (the validation pixels hold one class: no AUC)"
    return text


__all__ = [
    "BEST_METRICS",
    "METRIC_LABELS",
    "best_metric",
    "describe_best",
    "improves",
    "validate",
    "validation_config",
]
