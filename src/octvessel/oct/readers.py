"""Reading OCT volumes into :class:`~octvessel.oct.volume.Volume` objects.

Readers (``read_volume``, ``format="auto"`` picks one from the suffix):

- ``npy`` / ``npz``: a 3-D array (2-D: one B-scan). ``.npz`` keys: ``data`` (or
  ``volume``, or the only array), optional ``spacing`` (3 floats, mm), ``laterality``,
  and ``boundary_<NAME>`` height maps -- the format :func:`write_volume` writes.
- ``tiff``: a multi-page TIFF, one page per B-scan (depth x A-scans).
- ``bscans``: a folder of 2-D B-scan images, taken in natural name order.
- ``avanti``: Optovue Avanti raw ``.OCT``: headerless little-endian float32, each B-scan
  stored as A-scans x depth (385 x 640 by default), the B-scan count from the file size.
- ``vol`` / ``e2e`` / ``xml`` / ``fda``: Heidelberg and Topcon files through the optional
  ``eyepy`` package (:mod:`octvessel.oct.vendors`).

Integer data are scaled to [0, 1] by the dtype's full scale (unsigned types); float data
are kept as they are. Formats without spacing get the Avanti "3D Retina" geometry (7 x 7
mm field, 3.1 um axial samples) and say so in ``meta["spacing_source"] == "assumed"``.

Each format has its module: :mod:`.array_files` (npy, npz, tiff), :mod:`.bscan_folder`,
:mod:`.avanti`, :mod:`.vendors`; shared checks are in :mod:`.read_common`. This module
picks the reader and applies the user's overrides.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from octvessel.data.io import (
    IMAGE_SUFFIXES,
    check_tiff_pages,
    image_suffix,
    is_image_file,
    quiet_decoders,
)
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.oct.array_files import read_npy, read_npz, read_tiff
from octvessel.oct.avanti import raw_shapes_that_fit, read_avanti
from octvessel.oct.bscan_folder import bscan_subfolder, read_bscans
from octvessel.oct.read_common import (
    DEFAULT_MAX_VOXELS,
    assumed_note,
    check_voxels,
    max_voxels,
    natural_key,
)
from octvessel.oct.volume import Volume, normalize_laterality

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "FORMATS",
    "assumed_note",
    "check_voxels",
    "detect_volume_format",
    "find_volumes",
    "max_voxels",
    "raw_shapes_that_fit",
    "read_avanti",
    "read_volume",
]

FORMATS = ("npy", "npz", "tiff", "bscans", "avanti", "vol", "e2e", "xml", "fda")
VENDOR_FORMATS = ("vol", "e2e", "xml", "fda")
_SUFFIX_FORMAT = {
    ".npy": "npy", ".npz": "npz", ".tif": "tiff", ".tiff": "tiff", ".oct": "avanti",
    ".vol": "vol", ".e2e": "e2e", ".xml": "xml", ".fda": "fda",
}  # fmt: skip


# ---------------------------------------------------------------------------- reading


def detect_volume_format(path: Path) -> str:
    """The reader for ``path``: from its suffix, or for a folder from its content."""
    if path.is_dir():
        if any(p.suffix.lower() == ".xml" for p in path.iterdir()):
            return "xml"
        if any(is_image_file(p) for p in path.iterdir()):
            return "bscans"
        raise InputError(
            "folder holds neither a HEYEX-XML export (*.xml) nor B-scan images "
            f"({', '.join(IMAGE_SUFFIXES)})",
            path,
        )
    fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_SUFFIX_FORMAT))
        raise InputError(
            f"unknown volume file type {path.suffix or '(none)'!r}; expected one of: {known}, "
            "or a folder of B-scan images (or pass format=)",
            path,
        )
    return fmt


def read_volume(
    path: str | Path,
    format: str = "auto",
    *,
    spacing: tuple[float, float, float] | None = None,
    laterality: str | None = None,
    ascans: int | None = None,
    depth: int | None = None,
    bscans: int | None = None,
) -> Volume:
    """Read an OCT volume.

    Args:
        path: a volume file, a folder of B-scan images or a HEYEX-XML export folder.
        format: ``"auto"`` (from the suffix / folder content) or one of ``FORMATS``.
        spacing: (slow, axial, fast) mm; overrides the file's (``spacing_source="user"``).
        laterality: ``"OD"`` / ``"OS"``; overrides the file's.
        ascans, depth: raw Avanti B-scan layout (default 385 A-scans x 640 samples).
        bscans: raw Avanti B-scan count (default: file size / B-scan size).

    Returns:
        A :class:`Volume` (float32, B-scans x depth x A-scans).

    Raises:
        UsageError: bad option, or raw-layout options for a format that is not raw.
        InputError: missing or unreadable file, a raw size that fits no shape (the message
            lists shapes that would), NaN or infinite voxels, bad boundaries, eyepy missing
            for vendor formats.
    """
    p = Path(path)
    check_choice("format", format, ("auto", *FORMATS))
    if not p.exists():
        raise InputError("volume file or folder not found", p)
    fmt = detect_volume_format(p) if format == "auto" else format
    if fmt != "avanti" and any(v is not None for v in (ascans, depth, bscans)):
        raise UsageError(
            f"ascans/depth/bscans describe raw Avanti .OCT files; {p.name} is read as {fmt}"
        )
    if fmt in ("bscans",) and not p.is_dir():
        raise InputError("expected a folder of B-scan images", p)
    if fmt not in ("bscans", "xml") and p.is_dir():
        raise InputError(f"expected a {fmt} file, found a folder", p)
    if fmt == "xml" and format == "auto" and p.is_dir():
        sub = bscan_subfolder(p)
        if sub is not None:  # HEYEX-style export with the B-scans in a sub-folder
            fmt, p = "bscans", sub
    if fmt == "avanti":
        vol = read_avanti(p, ascans=ascans, depth=depth, bscans=bscans)
    elif fmt in VENDOR_FORMATS:
        from octvessel.oct.vendors import read_vendor

        vol = read_vendor(p, fmt)
    else:
        vol = {"npy": read_npy, "npz": read_npz, "tiff": read_tiff, "bscans": read_bscans}[fmt](p)
    changes: dict[str, Any] = {}
    if spacing is not None:
        changes["spacing"] = _user_spacing(spacing)
        vol.meta["spacing_source"] = "user"
        notes = vol.meta.get("warnings") or []
        vol.meta["warnings"] = [n for n in notes if not n.startswith("spacing assumed")]
    if laterality is not None:
        changes["laterality"] = normalize_laterality(laterality)
    return replace(vol, **changes) if changes else vol


def _user_spacing(spacing: Any) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise UsageError(
            f"spacing={spacing!r} is not valid; expected 3 positive numbers (slow, axial, fast) mm"
        )
    return values  # type: ignore[return-value]


def find_volumes(folder: str | Path) -> list[Path]:
    """The volume files (and HEYEX-XML export folders) directly inside ``folder``.

    A folder that is itself one volume (B-scan images, an XML export) gives ``[folder]``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError("expected a folder", root)
    files = sorted(
        (
            p
            for p in root.iterdir()
            if not p.name.startswith(".")
            and p.is_file()
            and p.suffix.lower() in _SUFFIX_FORMAT
            and p.suffix.lower() not in (".xml", ".tif", ".tiff")
            and not p.name.endswith("_boundaries.npz")  # reconstruct's own output
        ),
        key=natural_key,
    )
    xml_dirs = sorted(
        (
            p
            for p in root.iterdir()
            if p.is_dir() and any(q.suffix.lower() == ".xml" for q in p.iterdir())
        ),
        key=natural_key,
    )
    tiffs = [p for p in root.iterdir() if p.is_file() and image_suffix(p) in (".tif", ".tiff")]
    stacks = sorted((p for p in tiffs if _tiff_pages(p) > 1), key=natural_key)
    found = files + stacks + xml_dirs
    if found:
        return found
    if any(p.suffix.lower() == ".xml" for p in root.iterdir()) or any(
        is_image_file(p) for p in root.iterdir()
    ):
        return [root]
    raise InputError(
        f"no OCT volumes here; expected files ending in {', '.join(sorted(_SUFFIX_FORMAT))} "
        "or a folder of B-scan images",
        root,
    )


def _tiff_pages(path: Path) -> int:
    try:
        with quiet_decoders(), tifffile.TiffFile(path) as tif:
            return check_tiff_pages(tif)
    except Exception:
        return 0
