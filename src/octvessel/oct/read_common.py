"""What every OCT volume reader shares: the voxel limit, numeric checks, the assumed spacing.

Integer data are scaled to [0, 1] by the dtype's full scale (unsigned types); float data
are kept as they are. Formats without spacing get the Avanti "3D Retina" geometry (7 x 7
mm field, 3.1 um axial samples) and say so in ``meta["spacing_source"] == "assumed"``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError, UsageError
from octvessel.oct.volume import Volume, assumed_spacing

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "as_3d",
    "as_float",
    "assumed_note",
    "check_voxels",
    "max_voxels",
    "natural_key",
    "one_line",
    "plain_volume",
]


#: Largest volume read, in voxels (about 4 GB as float32); checked from the file's header
#: or size before any data are read. ``OCTVESSEL_MAX_VOXELS`` raises it.
DEFAULT_MAX_VOXELS = 1_000_000_000


def max_voxels() -> int:
    """The voxel limit of the readers: ``$OCTVESSEL_MAX_VOXELS`` or :data:`DEFAULT_MAX_VOXELS`."""
    text = os.environ.get("OCTVESSEL_MAX_VOXELS", "")
    try:
        value = int(text) if text else DEFAULT_MAX_VOXELS
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"OCTVESSEL_MAX_VOXELS={text!r}: expected a positive integer")
    return value


def check_voxels(shape: tuple[int, ...], path: Path, what: str = "volume") -> None:
    """Refuse a volume whose header (or size) announces more than :func:`max_voxels` voxels."""
    n = int(np.prod([int(v) for v in shape], dtype=np.float64)) if len(shape) else 1
    if n > max_voxels():
        raise InputError(
            f"{what} of shape {tuple(int(v) for v in shape)} has {n:,} voxels, above the limit "
            f"of {max_voxels():,} (set OCTVESSEL_MAX_VOXELS to raise it)",
            path,
        )


def as_float(arr: np.ndarray, path: Path) -> np.ndarray:
    """float32 voxels: unsigned integers scaled by full scale, floats and signed ints kept."""
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
        raise InputError(f"expected numeric voxels, found dtype {arr.dtype}", path)
    if arr.dtype.kind == "u":
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32, copy=False)


def as_3d(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise InputError(
            f"expected a 3-D array (B-scans, depth, A-scans) or one 2-D B-scan, found shape "
            f"{arr.shape}",
            path,
        )
    return arr


def plain_volume(data: np.ndarray, path: Path, fmt: str, **meta: Any) -> Volume:
    data = as_3d(as_float(np.asarray(data), path), path)
    spacing = assumed_spacing(data.shape[0], data.shape[2])
    return Volume(
        data=data,
        spacing=spacing,
        path=path,
        meta={
            "format": fmt,
            "spacing_source": "assumed",
            "warnings": [assumed_note(spacing)],
            **meta,
        },
    )


def assumed_note(spacing: tuple[float, float, float]) -> str:
    """The one-line note recorded and printed when the spacing had to be assumed."""
    s, a, f = spacing
    return (
        f"spacing assumed: {s:.4g} x {a:.4g} x {f:.4g} mm (B-scans x depth x A-scans, a "
        "7 x 7 mm Avanti-like scan); the input gives none, pass --spacing SLOW,AXIAL,FAST"
    )


def natural_key(p: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
