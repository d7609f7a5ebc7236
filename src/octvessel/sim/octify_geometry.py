"""Geometry of octify: a source's pixel size, crop positions and resampling matrices.

:func:`resample_matrix` maps a crop of retina onto the OCT grid (exact area averaging
where output pixels are larger, linear interpolation where smaller);
:func:`source_mm_per_px` finds the source's pixel size; :func:`crop_positions` places
the crops inside the field of view.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.sim.octify_config import FIELD_DEG, OctifyConfig

__all__ = ["crop_positions", "resample_matrix", "source_mm_per_px", "source_window"]


def resample_matrix(start: float, length: float, n_out: int, n_in: int) -> np.ndarray:
    """Weights (n_out x n_in, float64, rows summing to 1) resampling a 1-D signal.

    Output pixel ``i`` covers the source interval ``[start + i s, start + (i + 1) s)`` with
    ``s = length / n_out`` (source pixel ``j`` covers ``[j, j + 1)``). Where ``s >= 1`` the
    weight is the exact overlap (area averaging); where ``s < 1`` it is linear
    interpolation at the interval's centre, clamped at the edges.
    """
    if n_out < 1 or n_in < 1 or length <= 0:
        raise UsageError(f"resample_matrix: bad sizes n_out={n_out}, n_in={n_in}, length={length}")
    step = length / n_out
    out = np.zeros((n_out, n_in))
    i = np.arange(n_out)
    if step >= 1.0:
        lo = start + i * step
        hi = lo + step
        j = np.arange(n_in)
        out = np.clip(
            np.minimum(hi[:, None], j[None, :] + 1.0) - np.maximum(lo[:, None], j[None, :]), 0, None
        )
    else:
        centre = start + (i + 0.5) * step - 0.5  # in source pixel-centre coordinates
        centre = np.clip(centre, 0.0, n_in - 1.0)
        j0 = np.floor(centre).astype(int)
        j1 = np.minimum(j0 + 1, n_in - 1)
        frac = centre - j0
        np.add.at(out, (i, j0), 1.0 - frac)
        np.add.at(out, (i, j1), frac)
    total = out.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise UsageError(f"resample_matrix: interval [{start}, {start + length}) leaves the signal")
    return out / total


def source_window(start: float, length: float, n: int) -> tuple[int, int]:
    """Source indices [a, b) that a resampling of [start, start + length) can touch."""
    return max(0, math.floor(start) - 1), min(n, math.ceil(start + length) + 1)


def _fov_width_px(fov: np.ndarray) -> int:
    """Diameter of the FOV in pixels: its widest row (top/bottom clipping does not matter)."""
    return int(fov.sum(axis=1).max()) if fov.any() else 0


def source_mm_per_px(sample: Sample, config: OctifyConfig) -> tuple[float, float, str]:
    """(row_mm, col_mm, how) for a source image; ``how`` says where the number came from.

    Raises:
        InputError: the pixel size is unknown (no ``mm_per_px``, no spacing, a format with
            no field angle and no ``field_deg``) or the FOV is empty.
    """
    if config.mm_per_px is not None:
        return config.mm_per_px, config.mm_per_px, "mm_per_px option"
    if config.field_deg is None and sample.spacing is not None:
        return float(sample.spacing[0]), float(sample.spacing[1]), "dataset spacing"
    fmt = sample.meta.get("format")
    deg = config.field_deg if config.field_deg is not None else FIELD_DEG.get(fmt)
    if deg is None:
        raise InputError(
            f"pixel size unknown for a {fmt or 'generic'} image: pass mm_per_px (--mm-per-px) or "
            f'the camera\'s field angle (--field-deg), or put "spacing" in dataset.json; known '
            f"field angles: {', '.join(f'{k} {v:g} deg' for k, v in FIELD_DEG.items())}",
            sample.path,
        )
    width = _fov_width_px(sample.fov)
    if width < 8:
        raise InputError(
            f"field of view is {width} px wide; cannot derive the pixel size", sample.path
        )
    mm = deg * config.mm_per_degree / width
    return mm, mm, f"{deg:g} deg x {config.mm_per_degree:g} mm/deg over a {width} px FOV"


def crop_positions(
    fov: np.ndarray,
    size: tuple[int, int],
    config: OctifyConfig,
    rng: np.random.Generator,
    where: Path | str | None = None,
) -> list[tuple[int, int, float]]:
    """Top-left corners (row, col) of the crops, each with its fraction inside the FOV.

    ``size`` is the crop in whole source pixels (rows, cols). ``config.crops == 0``: a
    grid over the FOV's bounding box, steps of half a crop; otherwise ``crops`` positions
    drawn uniformly (without replacement while possible) from every admissible corner.
    Only corners whose crop lies at least ``min_fov_fraction`` inside the FOV are kept.

    Raises:
        InputError: the crop is larger than the image, or no crop is inside the FOV enough.
    """
    h, w = fov.shape
    ch, cw = size
    if ch > h or cw > w:
        raise InputError(
            f"a {config.crop_mm:g} mm crop is {cw}x{ch} px (WxH) at this pixel size, larger than "
            f"the {w}x{h} image; lower crop_mm or check mm_per_px",
            where,
        )
    sat = np.zeros((h + 1, w + 1))
    sat[1:, 1:] = fov.astype(np.float64).cumsum(0).cumsum(1)
    inside = (sat[ch:, cw:] - sat[:-ch, cw:] - sat[ch:, :-cw] + sat[:-ch, :-cw]) / (ch * cw)
    ok = inside >= config.min_fov_fraction - 1e-12  # (h - ch + 1) x (w - cw + 1)
    if not ok.any():
        raise InputError(
            f"no {config.crop_mm:g} mm crop ({cw}x{ch} px) lies {config.min_fov_fraction:.0%} "
            f"inside the field of view (best {inside.max():.0%}); lower min_fov_fraction or crop_mm",
            where,
        )
    if config.crops == 0:
        rows = np.flatnonzero(fov.any(axis=1))
        cols = np.flatnonzero(fov.any(axis=0))
        grid = [
            _grid_1d(int(a[0]), int(a[-1]) + 1, c, n - c + 1)
            for a, c, n in ((rows, ch, h), (cols, cw, w))
        ]
        corners = [(r, c) for r in grid[0] for c in grid[1] if ok[r, c]]
        if not corners:  # the grid missed the admissible zone: take its best corner
            r, c = np.unravel_index(int(np.argmax(inside)), inside.shape)
            corners = [(int(r), int(c))]
    else:
        flat = np.flatnonzero(ok)
        pick = rng.choice(flat.size, size=config.crops, replace=config.crops > flat.size)
        corners = [tuple(int(v) for v in np.unravel_index(flat[k], ok.shape)) for k in pick]
    return [(r, c, float(inside[r, c])) for r, c in corners]


def _grid_1d(lo: int, hi: int, size: int, n_pos: int) -> list[int]:
    """Corners from ``lo`` to ``hi - size`` in steps of at most half a crop (clamped)."""
    last = hi - size
    if last <= lo:
        centre = (lo + hi - size) // 2
        return [min(max(centre, 0), n_pos - 1)]
    n = math.ceil((last - lo) / (size / 2)) + 1
    return sorted({min(max(int(round(v)), 0), n_pos - 1) for v in np.linspace(lo, last, n)})
