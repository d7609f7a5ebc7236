"""Array files as OCT volumes: ``.npy``, ``.npz`` and multi-page TIFF stacks.

- ``npy`` / ``npz``: a 3-D array (2-D: one B-scan). ``.npz`` keys: ``data`` (or
  ``volume``, or the only array), optional ``spacing`` (3 floats, mm), ``laterality``,
  and ``boundary_<NAME>`` height maps -- the format :func:`write_volume` writes.
- ``tiff``: a multi-page TIFF, one page per B-scan (depth x A-scans).

Headers are checked (shape, dtype, size) before any data are read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import tifffile

from octvessel.data.io import check_tiff_data, check_tiff_pages, quiet_decoders
from octvessel.errors import InputError
from octvessel.oct.read_common import (
    as_3d,
    as_float,
    assumed_note,
    check_voxels,
    one_line,
    plain_volume,
)
from octvessel.oct.volume import Volume, assumed_spacing

__all__ = ["check_npy_header", "read_npy", "read_npz", "read_tiff"]


def check_npy_header(fh: IO[bytes], size: int | None, path: Path) -> None:
    """Check an ``.npy`` header (shape, dtype) before reading: no objects, sane size.

    ``size`` is the bytes the stream holds (None when unknown, e.g. inside a zip member).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, _fortran, dtype = fmt.read_array_header_2_0(fh)
    except Exception as exc:  # numpy raises ValueError, SyntaxError, TokenError ... for junk
        raise InputError(
            f"cannot read .npy file (not a valid array header: {one_line(exc)})", path
        ) from exc
    if dtype.hasobject:
        raise InputError(
            "holds Python objects (pickled data), which are never loaded; expected a numeric array",
            path,
        )
    check_voxels(shape, path, "array")
    if size is not None:
        need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        have = size - fh.tell()
        if need > have:
            raise InputError(
                f"header announces shape {tuple(shape)} ({need:,} bytes) but the file holds "
                f"{max(have, 0):,} bytes after it (truncated or corrupt)",
                path,
            )


def read_npy(path: Path) -> Volume:
    try:
        with open(path, "rb") as fh:
            check_npy_header(fh, path.stat().st_size, path)
        arr = np.load(path, allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, MemoryError) as exc:
        raise InputError(f"cannot read .npy file ({one_line(exc)})", path) from exc
    return plain_volume(arr, path, "npy")


def read_npz(path: Path) -> Volume:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    with zf.open(info) as fh:
                        check_npy_header(fh, info.file_size, path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except InputError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many types for bad files
        raise InputError(f"cannot read .npz file ({one_line(exc)})", path) from exc
    if not arrays:
        raise InputError("the .npz file holds no arrays", path)
    key = next((k for k in ("data", "volume") if k in arrays), None)
    if key is None:
        candidates = [k for k, v in arrays.items() if v.ndim == 3]
        if len(candidates) != 1:
            raise InputError(
                f"cannot tell which array is the volume (keys: {', '.join(arrays) or 'none'}); "
                "expected a key 'data' or 'volume'",
                path,
            )
        key = candidates[0]
    data = as_3d(as_float(arrays[key], path), path)
    meta: dict[str, Any] = {"format": "npz", "extra_keys": sorted(arrays)}
    if "spacing" in arrays:
        try:
            spacing = tuple(float(v) for v in np.asarray(arrays["spacing"], dtype=float).ravel())
        except (TypeError, ValueError):
            raise InputError(
                f"'spacing' holds {arrays['spacing'].dtype} values; expected 3 numbers in mm", path
            ) from None
        meta["spacing_source"] = "file"
    else:
        spacing = assumed_spacing(data.shape[0], data.shape[2])
        meta["spacing_source"] = "assumed"
        meta["warnings"] = [assumed_note(spacing)]
    lat = arrays.get("laterality")
    laterality = str(lat) if lat is not None and lat.size == 1 else None
    boundaries = {k[len("boundary_") :]: v for k, v in arrays.items() if k.startswith("boundary_")}
    if boundaries:
        meta["boundary_source"] = "file"
    return Volume(data, spacing, laterality, boundaries, path, meta)


def read_tiff(path: Path) -> Volume:
    try:
        with quiet_decoders(), tifffile.TiffFile(path) as tif:
            check_tiff_pages(tif)
            if not tif.series:
                raise InputError("TIFF holds no image data", path)
            check_voxels(tif.series[0].shape, path, "TIFF stack")
            check_tiff_data(tif.series[0].pages, path.stat().st_size)
            arr = tif.series[0].asarray()
    except InputError as exc:
        if exc.path is None:
            raise InputError(str(exc), path) from exc
        raise
    except Exception as exc:  # tifffile raises many types for bad files
        raise InputError(f"cannot read TIFF file ({one_line(exc)})", path) from exc
    if arr.size == 0:
        raise InputError(f"TIFF holds no image data (shape {arr.shape})", path)
    arr = np.squeeze(arr) if arr.ndim > 3 else arr
    return plain_volume(arr, path, "tiff")
