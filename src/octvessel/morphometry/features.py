"""Widths, tortuosity and fractal dimension (pure functions on arrays).

Width: ``2 * d - e / 2`` at every centre-line pixel, ``d`` the Euclidean distance (mm, with the
grid's pixel size: ``distance_transform_edt(mask, sampling=spacing)``) from the pixel's
centre to the centre of the nearest background pixel, ``e`` the extent of one pixel along
that direction (``min(sr / |u_r|, sc / |u_c|)`` for the unit vector ``u`` towards that
background pixel). The vessel's edge lies half a pixel before the background pixel's
centre. A vessel W pixels wide has its centre line on its middle pixel when W is odd
(``d = (W + 1) / 2``, ``2 * d = W + 1``) but half a pixel off the middle when W is even
(``d = W / 2``, ``2 * d = W``): ``2 * d - e`` would be right for odd widths and one pixel
short for even ones, ``2 * d - e / 2`` is half a pixel off either way and unbiased over
both (1-pixel vessels measure 1.5 pixels). On anisotropic grids ``e`` is the pixel size
across the vessel (18 um or 50 um on an Avanti en-face grid), not a fixed half pixel.

Tortuosity: arc length / chord length of each segment between two graph nodes; the image
value is the mean weighted by arc length. Closed loops (no chord) and segments with a
chord shorter than two pixels (the larger side) are left out.

Fractal dimension: box counting on the binary mask. Anisotropic masks are first resampled
to square pixels of the smaller side (shape-based, :func:`to_square_pixels`), so boxes are squares in
millimetres. Box sides are 2, 4, 8, ... pixels up to half the shorter side of the region's
bounding box (the grid anchored at its top-left corner); the dimension is minus the slope
of the least-squares line through (log side, log boxes holding vessel). With fewer than
three box sizes (a region under 16 pixels across) it is NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def width_map_mm(mask: np.ndarray, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(distance to background, vessel width) in mm, float64 H x W (0 off the mask)."""
    sr, sc = spacing
    dist, (ir, ic) = ndimage.distance_transform_edt(mask, sampling=spacing, return_indices=True)
    rr, cc = np.indices(mask.shape)
    dy = np.abs(ir - rr) * sr
    dx = np.abs(ic - cc) * sc
    with np.errstate(divide="ignore", invalid="ignore"):
        ey = np.where(dy > 0, sr * dist / np.where(dy > 0, dy, 1), np.inf)
        ex = np.where(dx > 0, sc * dist / np.where(dx > 0, dx, 1), np.inf)
    extent = np.minimum(ey, ex)
    width = np.where(mask, 2 * dist - 0.5 * np.where(np.isfinite(extent), extent, 0), 0.0)
    return dist, np.maximum(width, 0.0)


def weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(weighted mean, weighted median) of 1-D arrays; NaN when the weights sum to 0."""
    total = float(weights.sum())
    if values.size == 0 or total <= 0:
        return float("nan"), float("nan")
    mean = float((values * weights).sum() / total)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    median = float(values[order][np.searchsorted(cum, 0.5 * total)])
    return mean, median


def tortuosity(lengths: np.ndarray, chords: np.ndarray, min_chord: float) -> float:
    """Length-weighted mean of arc / chord over segments with chord >= ``min_chord``."""
    ok = chords >= min_chord
    if not ok.any():
        return float("nan")
    arc, chord = lengths[ok], chords[ok]
    return float((arc * (arc / chord)).sum() / arc.sum())


def to_square_pixels(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Resample a bool mask to square pixels of ``min(spacing)`` (shape-based).

    The signed distance to the outline (inside minus outside, in mm) is interpolated by a
    cubic spline and thresholded at 0, so an oblique edge stays a straight edge; the bool mask
    interpolated itself would turn it into a stair of row-high steps. Output pixel j
    samples input position ``(j + 0.5) * n_in / n_out - 0.5`` on each axis (the row
    mapping of octvessel's isotropic reconstructions). Square inputs are returned as they are.
    """
    s = min(spacing)
    if spacing[0] == spacing[1]:
        return mask
    shape = [max(1, round(n * sp / s)) for n, sp in zip(mask.shape, spacing, strict=True)]
    coords = [(np.arange(m) + 0.5) * n / m - 0.5 for m, n in zip(shape, mask.shape, strict=True)]
    grid = np.meshgrid(*coords, indexing="ij")
    m = mask.astype(bool)
    signed = ndimage.distance_transform_edt(m, sampling=spacing) - ndimage.distance_transform_edt(
        ~m, sampling=spacing
    )
    return ndimage.map_coordinates(signed.astype(np.float32), grid, order=3, mode="nearest") > 0


def square_to_input_px(
    points: np.ndarray, in_shape: tuple[int, int], square_shape: tuple[int, int]
) -> np.ndarray:
    """(k, 2) float (row, col) on :func:`to_square_pixels`' grid -> the input grid's pixels."""
    pts = np.asarray(points, float).reshape(-1, 2)
    scale = np.asarray(in_shape, float) / np.asarray(square_shape, float)
    return (pts + 0.5) * scale - 0.5


def box_counting_dimension(mask: np.ndarray) -> float:
    """Box-counting dimension of a bool mask on square pixels (module docstring)."""
    if not mask.any():
        return float("nan")
    h, w = mask.shape
    sizes = []
    side = 2
    while side <= min(h, w) / 2:
        sizes.append(side)
        side *= 2
    if len(sizes) < 3:
        return float("nan")
    counts = []
    for s in sizes:
        hh, ww = -(-h // s) * s, -(-w // s) * s
        padded = np.zeros((hh, ww), bool)
        padded[:h, :w] = mask
        counts.append(int(padded.reshape(hh // s, s, ww // s, s).any(axis=(1, 3)).sum()))
    slope = np.polyfit(np.log(sizes), np.log(counts), 1)[0]
    return float(-slope)


def region_fractal_dimension(mask: np.ndarray, region: np.ndarray) -> float:
    """Box-counting dimension of ``mask & region`` inside the region's bounding box."""
    rr, cc = np.nonzero(region)
    if rr.size == 0:
        return float("nan")
    sl = (slice(rr.min(), rr.max() + 1), slice(cc.min(), cc.max() + 1))
    return box_counting_dimension(mask[sl] & region[sl])
