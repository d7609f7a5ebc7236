"""Projection of a depth slab: the boundaries it needs, and its reduction over depth.

Voxel ``z`` belongs to the slab when ``top <= z < bottom`` (voxel centres; at least one
voxel per A-scan). :func:`resolve_boundaries` takes the file's boundaries or detects them
(:mod:`octvessel.oct.layers`); :func:`project` reduces the slab to a float32
(B-scans, A-scans) image, before any normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from octvessel.errors import InputError, UsageError, check_choice
from octvessel.oct.layers import DetectConfig, detect_boundaries
from octvessel.oct.slabs import BOUNDARY_SOURCES, EDGES, Slab
from octvessel.oct.volume import Volume, check_order

__all__ = ["project", "resolve_boundaries"]


def resolve_boundaries(
    volume: Volume,
    needed: Sequence[str],
    source: str = "auto",
    detect_config: DetectConfig | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The boundaries to project with, and where they came from (``"file"`` / ``"detected"``).

    ``auto`` uses the file's boundaries when all of ``needed`` are there (NaN gaps filled
    from the nearest known A-scan), else detects ILM, RPE and BM; ``file`` insists on the
    file's; ``detect`` always detects.
    """
    check_choice("boundaries", source, BOUNDARY_SOURCES)
    needed = [n for n in needed if n not in EDGES]
    have = volume.boundaries
    if source != "detect" and all(n in have and np.isfinite(have[n]).any() for n in needed):
        return {k: _fill_gaps(v) for k, v in have.items() if np.isfinite(v).any()}, "file"
    if source == "file":
        missing = [n for n in needed if n not in have or not np.isfinite(have[n]).any()]
        found = ", ".join(have) or "none"
        raise InputError(
            f"the file has no {', '.join(missing)} boundary (it has: {found}); "
            "use boundaries='auto' or 'detect'",
            volume.path,
        )
    detected = detect_boundaries(volume, detect_config)
    unknown = [n for n in needed if n not in detected]
    if unknown:
        raise UsageError(
            f"boundary {', '.join(unknown)} is neither in the file nor detected; "
            f"detected boundaries: {', '.join(detected)}"
        )
    # regions without surfaces (NaN: an optic-disc cup, tissue cut off at the top) take
    # the nearest A-scan's depth, as the file's gaps do
    return {k: _fill_gaps(v) for k, v in detected.items() if np.isfinite(v).any()}, "detected"


def _fill_gaps(h: np.ndarray) -> np.ndarray:
    """NaN entries take the value of the nearest finite entry (same B-scan first)."""
    h = np.asarray(h, dtype=np.float32)
    bad = ~np.isfinite(h)
    if not bad.any():
        return h
    from scipy import ndimage

    _, (ir, ic) = ndimage.distance_transform_edt(bad, return_indices=True)
    return h[ir, ic]


# ------------------------------------------------------------------------- projection


def project(volume: Volume, slab: Slab, boundaries: Mapping[str, np.ndarray]) -> np.ndarray:
    """Reduce ``slab`` over depth: float32 (B-scans, A-scans), no normalisation."""
    data = volume.data
    nb, nd, na = data.shape
    if slab.top == "top" and slab.bottom == "bottom" and slab.top_um == slab.bottom_um == 0:
        return _reduce_full(data, slab.reducer)
    um = volume.spacing[1] * 1000.0
    top = _edge_depth(slab.top, boundaries, (nb, na), nd)
    bottom = _edge_depth(slab.bottom, boundaries, (nb, na), nd)
    if slab.top not in EDGES and slab.bottom not in EDGES and slab.top != slab.bottom:
        check_order(top, bottom, slab.top, slab.bottom, volume.path)
    top = top + slab.top_um / um
    bottom = bottom + slab.bottom_um / um
    start = np.clip(np.ceil(top), 0, nd - 1).astype(np.intp)
    end = np.clip(np.ceil(bottom), 1, nd).astype(np.intp)
    empty = end <= start
    if empty.mean() > 0.5:
        raise UsageError(
            f"slab {slab.describe()} is empty in {100 * empty.mean():.0f}% of the A-scans "
            "(its bottom lies above its top); check the offsets"
        )
    end = np.where(empty, np.minimum(start + 1, nd), end)
    start = np.where(end <= start, end - 1, start)
    return _reduce_slab(data, start, end, slab.reducer)


def _edge_depth(
    name: str, boundaries: Mapping[str, np.ndarray], shape: tuple[int, int], nd: int
) -> np.ndarray:
    if name == "top":
        return np.full(shape, -0.5, np.float32)  # the first voxel's upper edge
    if name == "bottom":
        return np.full(shape, nd - 0.5, np.float32)
    if name not in boundaries:
        raise UsageError(
            f"boundary {name!r} is not available; available: {', '.join(boundaries) or 'none'}"
        )
    return np.asarray(boundaries[name], dtype=np.float32)


def _reduce_full(data: np.ndarray, reducer: str) -> np.ndarray:
    if reducer == "mean":
        return data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if reducer == "sum":
        return data.sum(axis=1, dtype=np.float64).astype(np.float32)
    if reducer == "max":
        return data.max(axis=1)
    if reducer == "min":
        return data.min(axis=1)
    return np.median(data, axis=1).astype(np.float32)


def _reduce_slab(
    data: np.ndarray, start: np.ndarray, end: np.ndarray, reducer: str, chunk: int = 16
) -> np.ndarray:
    """Reduce data[b, start:end, a] for every (b, a), B-scans in chunks to bound memory."""
    nb, nd, na = data.shape
    out = np.empty((nb, na), np.float32)
    length = int((end - start).max())
    k = np.arange(length)[None, :, None]
    for b0 in range(0, nb, chunk):
        s = start[b0 : b0 + chunk, None, :]
        n = (end - start)[b0 : b0 + chunk, None, :]
        idx = np.minimum(s + k, nd - 1)
        vals = np.take_along_axis(data[b0 : b0 + chunk], idx, axis=1)
        valid = k < n
        if reducer in ("mean", "sum"):
            total = np.where(valid, vals, 0).sum(axis=1, dtype=np.float64)
            res = total / n[:, 0, :] if reducer == "mean" else total
        elif reducer == "max":
            res = np.where(valid, vals, -np.inf).max(axis=1)
        elif reducer == "min":
            res = np.where(valid, vals, np.inf).min(axis=1)
        else:
            res = np.nanmedian(np.where(valid, vals, np.nan), axis=1)
        out[b0 : b0 + chunk] = res
    return out
