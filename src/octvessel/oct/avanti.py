"""Optovue Avanti raw ``.OCT`` volumes: headerless little-endian float32.

Each B-scan is stored as A-scans x depth (385 x 640 by default); the B-scan count comes
from the file size. A size that fits no layout is refused with the layouts that would.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from octvessel.errors import InputError, UsageError
from octvessel.oct.read_common import check_voxels
from octvessel.oct.volume import AVANTI, Volume, assumed_spacing

__all__ = ["raw_shapes_that_fit", "read_avanti"]

_COMMON_ASCANS = (128, 200, 256, 304, 320, 385, 400, 500, 512, 640, 768, 1024)
_COMMON_DEPTHS = (384, 496, 512, 640, 768, 1024, 2048)


def raw_shapes_that_fit(n_values: int) -> list[tuple[int, int, int]]:
    """(B-scans, A-scans, depth) of common scan layouts that hold exactly ``n_values``."""
    fits = []
    for a in _COMMON_ASCANS:
        for d in _COMMON_DEPTHS:
            if n_values % (a * d) == 0:
                fits.append((n_values // (a * d), a, d))
    return fits


def read_avanti(
    path: Path,
    *,
    ascans: int | None = None,
    depth: int | None = None,
    bscans: int | None = None,
) -> Volume:
    """Optovue Avanti raw ``.OCT``: headerless float32, B-scans of (A-scans x depth) each.

    The B-scan count comes from the file size unless ``bscans`` is given; a count other
    than 141 (the 3D Retina scan) is allowed with a warning (``meta["warnings"]``).
    """
    a = AVANTI["ascans"] if ascans is None else ascans
    d = AVANTI["depth"] if depth is None else depth
    for name, v in (("ascans", a), ("depth", d), ("bscans", bscans)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise UsageError(f"{name}={v!r} is not valid; expected a positive integer")
    size = path.stat().st_size
    if size == 0:
        raise InputError("raw .OCT file is empty (0 bytes)", path)
    if size % 4:
        raise InputError(
            f"file size {size} bytes is not a multiple of 4; expected headerless float32 samples",
            path,
        )
    n = size // 4
    check_voxels((n,), path, "raw .OCT file")
    per_bscan = a * d
    expected_n = bscans * per_bscan if bscans is not None else None
    if n % per_bscan or (expected_n is not None and n != expected_n):
        fits = raw_shapes_that_fit(n)
        shown = (
            "; shapes that would fit (B-scans x A-scans x depth): "
            + ", ".join(f"{b}x{x}x{z}" for b, x, z in fits[:8])
            if fits
            else "; no common layout fits (is it a raw float32 file?)"
        )
        want = f"{bscans} x {a} x {d}" if bscans is not None else f"N x {a} x {d}"
        raise InputError(
            f"{n} float32 samples do not fit B-scans of {a} A-scans x {d} depth ({want}){shown}; "
            "pass ascans=/depth=/bscans= (--ascans/--depth/--bscans)",
            path,
        )
    nb = n // per_bscan
    notes = []
    if nb != AVANTI["bscans"]:
        note = f"{nb} B-scans; the Avanti 3D Retina scan has {AVANTI['bscans']} (check --ascans/--depth)"
        warnings.warn(f"{path.name}: {note}", stacklevel=2)
        notes.append(note)
    raw = np.fromfile(path, dtype="<f4")
    data = np.ascontiguousarray(raw.reshape(nb, a, d).transpose(0, 2, 1))
    return Volume(
        data=data,
        spacing=assumed_spacing(nb, a),
        path=path,
        meta={"format": "avanti", "spacing_source": "assumed", "warnings": notes},
    )
