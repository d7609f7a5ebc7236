"""Post-processing of en-face projections: de-striping, contrast stretch and row grids.

Per-B-scan and per-column normalisation against striping (:func:`normalize_stripes`),
isotropic resampling of the slow axis (:func:`resample_rows`, back with
:func:`to_native_grid`), and a percentile contrast stretch to [0, 1] (:func:`stretch`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from octvessel.errors import UsageError

__all__ = ["isotropic_rows", "normalize_stripes", "resample_rows", "stretch", "to_native_grid"]


def normalize_stripes(image: np.ndarray, rows: float = 6.0, columns: float = 8.0) -> np.ndarray:
    """Remove B-scan (row) stripes, then column stripes, keeping vessels and slow trends.

    A row's level is the median, along the row, of its difference to the median column
    profile; its stripe is that level minus a Gaussian-smoothed (``rows`` sigma) version of
    the levels, and is subtracted. Then the same for columns (``columns`` sigma). Medians
    keep vessels out of the levels unless one covers more than half of a row (or column).
    Additive, since OCT intensities are log-compressed, where a gain change is an offset.
    """
    from scipy import ndimage

    img = image.astype(np.float32, copy=True)
    for axis, sigma in ((1, rows), (0, columns)):  # axis along which a level is taken
        if img.shape[1 - axis] < 3:
            continue
        profile = np.median(img, axis=1 - axis, keepdims=True)
        level = np.median(img - profile, axis=axis)
        stripe = level - ndimage.gaussian_filter1d(level, sigma, mode="nearest")
        img -= np.expand_dims(stripe, axis).astype(np.float32)
    return img


def stretch(image: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """Map the ``percentiles`` of ``image`` to 0 and 1 (clipped); return (image, lo, hi)."""
    lo, hi = (float(v) for v in np.percentile(image, percentiles))
    if not hi > lo:
        return np.full(image.shape, 0.5, np.float32), lo, hi
    out = (image - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32), lo, hi


def isotropic_rows(native_rows: int, slow_mm: float, fast_mm: float) -> int:
    """Rows of the isotropic grid: the slow extent over the fast spacing (141 -> 385)."""
    return max(1, int(round(native_rows * slow_mm / fast_mm)))


def resample_rows(image: np.ndarray, rows: int) -> np.ndarray:
    """Linear resampling along axis 0 to ``rows`` rows, pixel centres aligned.

    Output row ``j`` samples input row ``(j + 0.5) * H_in / rows - 0.5`` (clamped), so
    resampling there and back is the identity up to interpolation blur. Works on any
    (H, W, ...) array; float32 out.
    """
    h = image.shape[0]
    pos = np.clip((np.arange(rows) + 0.5) * h / rows - 0.5, 0, h - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, h - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (image.ndim - 1)).astype(np.float32)
    img = image.astype(np.float32, copy=False)
    return img[i0] * (1 - w) + img[i1] * w


def to_native_grid(array: np.ndarray, native_shape: Sequence[int]) -> np.ndarray:
    """Map an (isotropic) en-face array, e.g. a probability map, back to the native grid.

    ``native_shape`` is the sidecar's ``native_shape`` (B-scans, A-scans). Columns must
    match; rows are resampled linearly (the inverse mapping of :func:`resample_rows`).
    """
    arr = np.asarray(array)
    nb, na = (int(v) for v in native_shape)
    if arr.shape[1] != na:
        raise UsageError(f"array has {arr.shape[1]} columns but the native grid has {na} A-scans")
    return arr.astype(np.float32) if arr.shape[0] == nb else resample_rows(arr, nb)
