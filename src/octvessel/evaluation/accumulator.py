"""One pixel accumulator for every score octvessel reports (evaluate, cv, training validation).

In the style of MONAI's cumulative metrics: :meth:`PixelAccumulator.update` takes one
image at a time, :meth:`~PixelAccumulator.aggregate` gives the result, ``reset`` starts
over. The protocol is applied here once: a probability map on another grid than its label
is resampled (bilinear) to the label's grid (labels never are), clipped to [0, 1], and only
the pixels inside the FOV are kept; each image's confusion counts at the threshold are
counted once, on update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError, UsageError
from octvessel.evaluation.results import EvaluationResult
from octvessel.metrics import Confusion, Curves, confusion, curves, summarize


@dataclass
class PixelAccumulator:
    """FOV pixels and confusion counts of images seen so far.

    Args:
        threshold: the probability at or above which a pixel is vessel, in [0, 1].
        allow_resample: resample a probability map whose grid differs from its label's;
            False makes that an :class:`InputError`.
    """

    threshold: float = 0.5
    allow_resample: bool = True
    names: list[str] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    counts: list[Confusion] = field(default_factory=list)
    resampled: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
            raise UsageError(f"threshold={t!r}: expected a number in [0, 1]")

    def __len__(self) -> int:
        return len(self.names)

    def update(
        self,
        prob: np.ndarray,
        label: np.ndarray,
        fov: np.ndarray | None,
        name: str,
        *,
        where: str | Path | None = None,
        label_where: str | Path | None = None,
    ) -> Confusion:
        """Add one image: ``prob`` float H' x W' in [0, 1], ``label`` and ``fov`` bool H x W.

        ``where`` (the prediction's file) and ``label_where`` name the files in errors.
        Returns the image's confusion counts at the threshold.
        """
        label = np.asarray(label, bool)
        fov = np.ones(label.shape, bool) if fov is None else np.asarray(fov, bool)
        if fov.shape != label.shape:
            raise InputError(
                f"FOV mask is {fov.shape[1]}x{fov.shape[0]} but the label is "
                f"{label.shape[1]}x{label.shape[0]} (WxH)",
                where or name,
            )
        if not fov.any():
            raise InputError("the FOV mask is empty: no pixels to score", where or name)
        prob = np.asarray(prob)
        if prob.shape != label.shape:
            if not self.allow_resample:
                raise InputError(
                    f"prediction is {prob.shape[1]}x{prob.shape[0]} (WxH) but the label "
                    f"{label_where or ''} is {label.shape[1]}x{label.shape[0]}; they must match "
                    "(or allow resampling)",
                    where or name,
                )
            from octvessel.inference.engine import resample

            self.resampled.append({"name": name, "from": list(prob.shape), "to": list(label.shape)})
            prob = resample(prob, label.shape)
        p_in = np.clip(prob[fov], 0.0, 1.0).astype(np.float32)
        l_in = label[fov]
        c = confusion(p_in >= self.threshold, l_in)
        self.names.append(name)
        self.probs.append(p_in)
        self.labels.append(l_in)
        self.counts.append(c)
        return c

    def merge(self, other: PixelAccumulator) -> PixelAccumulator:
        """Add every image of ``other`` (same threshold), e.g. the folds of one cv arm."""
        if other.threshold != self.threshold:
            raise UsageError(
                f"cannot pool threshold {other.threshold} into threshold {self.threshold}"
            )
        self.names += other.names
        self.probs += other.probs
        self.labels += other.labels
        self.counts += other.counts
        self.resampled += other.resampled
        return self

    def reset(self) -> None:
        """Forget every image."""
        for items in (self.names, self.probs, self.labels, self.counts, self.resampled):
            items.clear()

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """All FOV pixels so far: probabilities (float32) and labels (bool), flat."""
        if not self.names:
            raise UsageError("no images to evaluate")
        return np.concatenate(self.probs), np.concatenate(self.labels)

    def curves(self) -> Curves | None:
        """Pooled ROC and PR curves (None when the pixels hold one class only)."""
        return curves(*self.pixels())

    def aggregate(self) -> EvaluationResult:
        """Pooled and per-image metrics of every image so far."""
        if not self.names:
            raise UsageError("no images to evaluate")
        summary = summarize(self.probs, self.labels, self.counts, self.threshold, self.names)
        for row, c in zip(summary["per_image"], self.counts, strict=True):
            row.update({"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn})
        return EvaluationResult.from_dict(summary)


__all__ = ["PixelAccumulator"]
