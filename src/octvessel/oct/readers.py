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
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import tifffile

from octvessel.data.io import (
    IMAGE_SUFFIXES,
    check_tiff_data,
    check_tiff_pages,
    image_suffix,
    is_image_file,
    quiet_decoders,
    read_image,
)
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.oct.volume import AVANTI, Volume, assumed_spacing, normalize_laterality

__all__ = ["FORMATS", "find_volumes", "raw_shapes_that_fit", "read_avanti", "read_volume"]

FORMATS = ("npy", "npz", "tiff", "bscans", "avanti", "vol", "e2e", "xml", "fda")
VENDOR_FORMATS = ("vol", "e2e", "xml", "fda")
_SUFFIX_FORMAT = {
    ".npy": "npy", ".npz": "npz", ".tif": "tiff", ".tiff": "tiff", ".oct": "avanti",
    ".vol": "vol", ".e2e": "e2e", ".xml": "xml", ".fda": "fda",
}  # fmt: skip

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
        sub = _bscan_subfolder(p)
        if sub is not None:  # HEYEX-style export with the B-scans in a sub-folder
            fmt, p = "bscans", sub
    if fmt == "avanti":
        vol = read_avanti(p, ascans=ascans, depth=depth, bscans=bscans)
    elif fmt in VENDOR_FORMATS:
        from octvessel.oct.vendors import read_vendor

        vol = read_vendor(p, fmt)
    else:
        vol = {"npy": _read_npy, "npz": _read_npz, "tiff": _read_tiff, "bscans": _read_bscans}[fmt](
            p
        )
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


def _as_float(arr: np.ndarray, path: Path) -> np.ndarray:
    """float32 voxels: unsigned integers scaled by full scale, floats and signed ints kept."""
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
        raise InputError(f"expected numeric voxels, found dtype {arr.dtype}", path)
    if arr.dtype.kind == "u":
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32, copy=False)


def _as_3d(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise InputError(
            f"expected a 3-D array (B-scans, depth, A-scans) or one 2-D B-scan, found shape "
            f"{arr.shape}",
            path,
        )
    return arr


def _plain(data: np.ndarray, path: Path, fmt: str, **meta: Any) -> Volume:
    data = _as_3d(_as_float(np.asarray(data), path), path)
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


def _npy_header(fh: IO[bytes], size: int | None, path: Path) -> None:
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
            f"cannot read .npy file (not a valid array header: {_one_line(exc)})", path
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


def _read_npy(path: Path) -> Volume:
    try:
        with open(path, "rb") as fh:
            _npy_header(fh, path.stat().st_size, path)
        arr = np.load(path, allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, MemoryError) as exc:
        raise InputError(f"cannot read .npy file ({_one_line(exc)})", path) from exc
    return _plain(arr, path, "npy")


def _read_npz(path: Path) -> Volume:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    with zf.open(info) as fh:
                        _npy_header(fh, info.file_size, path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except InputError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many types for bad files
        raise InputError(f"cannot read .npz file ({_one_line(exc)})", path) from exc
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
    data = _as_3d(_as_float(arrays[key], path), path)
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


def _read_tiff(path: Path) -> Volume:
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
        raise InputError(f"cannot read TIFF file ({_one_line(exc)})", path) from exc
    if arr.size == 0:
        raise InputError(f"TIFF holds no image data (shape {arr.shape})", path)
    arr = np.squeeze(arr) if arr.ndim > 3 else arr
    return _plain(arr, path, "tiff")


def _read_bscans(path: Path) -> Volume:
    files = sorted((p for p in path.iterdir() if is_image_file(p)), key=_natural_key)
    if not files:
        raise InputError("no B-scan images in this folder", path)
    scans: list[np.ndarray] = []
    for f in files:
        img = read_image(f)
        if not scans:
            check_voxels((len(files), *img.shape[:2]), path, "B-scan folder")
        gray = img[..., 0] if img.shape[2] == 1 else img[..., :3] @ _LUMA
        if scans and gray.shape != scans[0].shape:
            raise InputError(
                f"B-scan is {gray.shape[1]}x{gray.shape[0]} (WxH) but {files[0].name} is "
                f"{scans[0].shape[1]}x{scans[0].shape[0]}; all B-scans must have the same size",
                f,
            )
        scans.append(gray.astype(np.float32))
    vol = _plain(np.stack(scans), path, "bscans", files=[f.name for f in files])
    return _spacing_from_xml(vol, path)


def _bscan_subfolder(folder: Path) -> Path | None:
    """The one sub-folder of B-scan images of a folder that has none itself, else None."""
    if any(is_image_file(q) for q in folder.iterdir()):
        return None
    subs = [q for q in folder.iterdir() if q.is_dir() and q.name.lower() in ("bscans", "b-scans")]
    return subs[0] if len(subs) == 1 else None


def _spacing_from_xml(vol: Volume, folder: Path) -> Volume:
    """Take the spacing from a HEYEX-style XML beside the B-scan folder, when it fits."""
    from octvessel.oct.heyex_xml import find_heyex_xml, read_heyex_geometry

    xml = find_heyex_xml(folder)
    if xml is None:
        return vol
    geo = read_heyex_geometry(xml)
    nb, nd, na = vol.shape
    if (geo.height, geo.width) != (nd, na) or geo.bscans != nb:
        vol.meta["warnings"] = [
            *(vol.meta.get("warnings") or []),
            f"{xml.name} describes {geo.bscans} B-scans of {geo.width}x{geo.height} but the "
            f"folder holds {nb} of {na}x{nd}; its spacing is not used",
        ]
        return vol
    notes = [w for w in vol.meta.get("warnings") or [] if not w.startswith("spacing assumed")]
    meta = {**vol.meta, "spacing_source": "file", "spacing_file": str(xml), "warnings": notes}
    return replace(vol, spacing=geo.spacing, meta=meta)


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _natural_key(p: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]


# ------------------------------------------------------------------------- Avanti raw

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
        key=_natural_key,
    )
    xml_dirs = sorted(
        (
            p
            for p in root.iterdir()
            if p.is_dir() and any(q.suffix.lower() == ".xml" for q in p.iterdir())
        ),
        key=_natural_key,
    )
    tiffs = [p for p in root.iterdir() if p.is_file() and image_suffix(p) in (".tif", ".tiff")]
    stacks = sorted((p for p in tiffs if _tiff_pages(p) > 1), key=_natural_key)
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
