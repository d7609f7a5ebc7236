"""One pixel accumulator for every score octvessel reports (evaluate, cv, training validation).

In the style of MONAI's cumulative metrics: :meth:`PixelAccumulator.update` takes one
image at a time, :meth:`~PixelAccumulator.aggregate` gives the result, ``reset`` starts
over. The protocol is applied here once: a probability map on another grid than its label
is resampled (bilinear) to the label's grid (labels never are) when it is a resampling of
the same picture -- its aspect ratio (width / height) within :data:`ASPECT_TOLERANCE` of the
label's -- and refused otherwise (a map of another image, or a crop); it is clipped to
[0, 1], and only the pixels inside the FOV are kept; each image's confusion counts at the
threshold are counted once, on update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError, UsageError
from octvessel.evaluation.results import EvaluationResult
from octvessel.metrics import Confusion, Curves, confusion, curves, summarize

#: relative difference of aspect ratios (width / height) up to which a probability map of
#: another size is taken for a resampling of its label's picture: 2 %, more than the
#: rounding of any integer rescale of an image of 50 pixels or more
ASPECT_TOLERANCE = 0.02


def same_aspect(
    a: tuple[int, ...], b: tuple[int, ...], tolerance: float = ASPECT_TOLERANCE
) -> bool:
    """True when H x W grids ``a`` and ``b`` have aspect ratios within ``tolerance`` (relative)."""
    ra, rb = a[1] / a[0], b[1] / b[0]
    return abs(ra - rb) <= tolerance * max(ra, rb)


@dataclass
class PixelAccumulator:
    """FOV pixels and confusion counts of images seen so far.

    Args:
        threshold: the probability at or above which a pixel is vessel, in [0, 1].
        allow_resample: resample a probability map whose grid differs from its label's but
            has its aspect ratio (:data:`ASPECT_TOLERANCE`); False makes every size
            difference an :class:`InputError` (another aspect ratio always is one).
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
            sizes = (
                f"prediction is {prob.shape[1]}x{prob.shape[0]} (WxH) but its label "
                f"{label_where or ''} is {label.shape[1]}x{label.shape[0]}".replace("  ", " ")
            )
            if prob.ndim != 2 or not same_aspect(prob.shape, label.shape):
                raise InputError(
                    f"{sizes}: another aspect ratio (more than {ASPECT_TOLERANCE:.0%} apart) is "
                    "not a resampling of the same image; expected the prediction of this image",
                    where or name,
                )
            if not self.allow_resample:
                raise InputError(
                    f"{sizes}; they must match (resampling was turned off: "
                    "--no-resample (allow_resample=False))",
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


__all__ = ["ASPECT_TOLERANCE", "PixelAccumulator", "same_aspect"]
