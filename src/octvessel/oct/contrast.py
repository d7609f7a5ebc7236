"""Vessel contrast of an en-face image against its local background (a quality measure)."""

from __future__ import annotations

import numpy as np

from octvessel.errors import UsageError

__all__ = ["vessel_contrast"]


def vessel_contrast(
    image: np.ndarray, vessels: np.ndarray, margin: int = 2, window: int = 21
) -> dict[str, float]:
    """Vessel contrast of an en-face image against the local background (vessels dark).

    Background = pixels farther than ``margin`` pixels from any vessel; its local level at
    every pixel is the mean of the background pixels in a ``window`` x ``window``
    neighbourhood, so slow brightness trends do not count as contrast or as noise.

    Returns:
        ``contrast``: median over vessel pixels of (local background - vessel) / local
        background (Weber contrast);
        ``cnr``: mean (local background - vessel) over the standard deviation of the
        background around its local level.
    """
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float64)
    ves = np.asarray(vessels, dtype=bool)
    if img.shape != ves.shape or not ves.any() or ves.all():
        raise UsageError(
            "vessel_contrast needs an image and a vessel map of the same shape, "
            "with both vessel and background pixels"
        )
    far = ~ndimage.binary_dilation(ves, iterations=margin) if margin > 0 else ~ves
    if not far.any():
        far = ~ves
    w = far.astype(np.float64)
    local = ndimage.uniform_filter(img * w, window, mode="reflect") / np.maximum(
        ndimage.uniform_filter(w, window, mode="reflect"), 1e-12
    )
    diff = local[ves] - img[ves]
    noise = float((img - local)[far].std())
    with np.errstate(divide="ignore", invalid="ignore"):
        weber = float(np.median(diff / local[ves]))
    return {"contrast": weber, "cnr": float(diff.mean()) / (noise + 1e-12)}
