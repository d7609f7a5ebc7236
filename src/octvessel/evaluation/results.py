"""Typed evaluation results: what :class:`~octvessel.evaluation.PixelAccumulator` returns.

``to_dict()`` gives the JSON layout of ``metrics.json`` (the same keys as
:func:`octvessel.metrics.evaluate`), so files and reports do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from octvessel.errors import check_choice
from octvessel.metrics import METRICS, Confusion


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of a set of images at one threshold.

    Attributes:
        threshold: probability at or above which a pixel is vessel.
        n_images, n_pixels: images scored and FOV pixels pooled.
        confusion: pooled confusion counts.
        pooled: metric -> value over all FOV pixels of all images (the headline).
        per_image: one dict per image: ``name``, every metric, ``tp``/``fp``/``fn``/``tn``.
        mean, std: metric -> mean / std over images (undefined AUCs left out).
        auc_undefined: images whose AUC is undefined (one class only).
    """

    threshold: float
    n_images: int
    n_pixels: int
    confusion: Confusion
    pooled: dict[str, float]
    per_image: list[dict[str, Any]] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    auc_undefined: list[str] = field(default_factory=list)

    @property
    def auc_roc(self) -> float:
        """Pooled AUC-ROC (NaN when undefined)."""
        return self.pooled["auc_roc"]

    def metric(self, name: str) -> float:
        """A pooled metric by name (one of :data:`octvessel.metrics.METRICS`)."""
        check_choice("metric", name, METRICS)
        return self.pooled[name]

    def finite(self, name: str) -> bool:
        return math.isfinite(self.pooled[name])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationResult:
        c = d["confusion"]
        return cls(
            threshold=d["threshold"],
            n_images=d["n_images"],
            n_pixels=d["n_pixels"],
            confusion=Confusion(int(c["tp"]), int(c["fp"]), int(c["fn"]), int(c["tn"])),
            pooled=dict(d["pooled"]),
            per_image=[dict(r) for r in d["per_image"]],
            mean=dict(d["mean"]),
            std=dict(d["std"]),
            auc_undefined=list(d["auc_undefined"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` layout (NaN kept; :func:`octvessel.metrics.json_safe` writes null)."""
        c = self.confusion
        return {
            "threshold": self.threshold,
            "n_images": self.n_images,
            "n_pixels": self.n_pixels,
            "confusion": {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn},
            "pooled": dict(self.pooled),
            "per_image": [dict(r) for r in self.per_image],
            "mean": dict(self.mean),
            "std": dict(self.std),
            "auc_undefined": list(self.auc_undefined),
        }


__all__ = ["EvaluationResult"]
