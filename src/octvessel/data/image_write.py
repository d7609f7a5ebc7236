"""Writing images and binary masks atomically (the readers are :mod:`octvessel.data.io`).

Writers are atomic (:mod:`octvessel.atomic`: a temporary file in the destination folder
moved into place with ``os.replace``), so a crash never leaves a half-written file under
the final name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from octvessel.atomic import atomic_path
from octvessel.errors import UsageError

__all__ = ["TIFF_SUFFIXES", "write_image", "write_mask"]

TIFF_SUFFIXES = (".tif", ".tiff")
_TIFF = TIFF_SUFFIXES
_WRITE_IMAGE = (".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".pnm", ".jpg", ".jpeg")
_WRITE_MASK = (".png", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm")
_PIL_FORMAT = {
    ".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}  # fmt: skip


def _atomic(path: Path, write: Callable[[Path], None], overwrite: bool) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then move it into place."""
    with atomic_path(path, overwrite) as tmp:
        write(tmp)


def _as_hwc(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or 0 in arr.shape:
        raise UsageError(
            f"{what} must be H x W or H x W x C with C in 1, 3, 4; got shape {arr.shape}", path
        )
    return arr


def write_image(
    path: str | Path, array: np.ndarray, *, bits: int | None = None, overwrite: bool = True
) -> Path:
    """Write an image atomically; return the path.

    Args:
        path: destination; the suffix picks the format: .png, .tif/.tiff, .bmp, .ppm/.pgm,
            .jpg/.jpeg. Missing parent folders are created.
        array: H x W or H x W x C (C = 1, 3 or 4): float in [0, 1], uint8, uint16 or bool.
        bits: 8 or 16 for integer output. Default: 16 for uint16 input; for float input,
            32-bit float in TIFF and 8 bits elsewhere; 8 otherwise. 16-bit PNG is written
            for single-channel images only (Pillow limitation); use TIFF for 16-bit colour.
        overwrite: replace an existing file (default); False refuses it with InputError.

    Raises:
        UsageError: bad shape, dtype, value range, suffix or bits.
        InputError: the file exists and ``overwrite`` is False, or cannot be written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _WRITE_IMAGE:
        raise UsageError(
            f"cannot write images of type {suffix!r}; expected one of: {', '.join(_WRITE_IMAGE)}", p
        )
    arr = _as_hwc(np.asarray(array), p, "image")
    if bits not in (None, 8, 16):
        raise UsageError(f"bits={bits!r} is not valid; expected 8 or 16", p)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise UsageError("float image must be finite with values in [0, 1]", p)
        if bits is None and suffix in _TIFF:
            out: np.ndarray = arr.astype(np.float32)
        else:
            b = bits or 8
            full = 255 if b == 8 else 65535
            out = np.rint(arr * full).astype(np.uint8 if b == 8 else np.uint16)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * np.uint8(255)
        if bits == 16:
            out = out.astype(np.uint16) * np.uint16(257)
    elif arr.dtype == np.uint8:
        out = arr if bits != 16 else arr.astype(np.uint16) * np.uint16(257)
    elif arr.dtype == np.uint16:
        out = arr if bits != 8 else np.rint(arr / 257.0).astype(np.uint8)
    else:
        raise UsageError(
            f"unsupported image dtype {arr.dtype}; expected float, uint8, uint16 or bool", p
        )

    if (
        out.dtype == np.uint16
        and suffix not in _TIFF
        and not (suffix == ".png" and out.shape[2] == 1)
    ):
        raise UsageError("16-bit output is written as single-channel PNG or as TIFF only", p)
    if suffix in (".jpg", ".jpeg") and out.shape[2] == 4:
        out = out[..., :3]
    _atomic(p, lambda tmp: _write_array(tmp, out, suffix), overwrite)
    return p


def _write_array(tmp: Path, out: np.ndarray, suffix: str) -> None:
    if suffix in _TIFF:
        photometric = "minisblack" if out.shape[2] == 1 else "rgb"
        data = out[..., 0] if out.shape[2] == 1 else out
        extra = {"extrasamples": ["unassalpha"]} if out.shape[2] == 4 else {}
        tifffile.imwrite(tmp, data, photometric=photometric, compression="zlib", **extra)
        return
    data = out[..., 0] if out.shape[2] == 1 else out
    im = Image.fromarray(data)
    options = {"quality": 95} if _PIL_FORMAT[suffix] == "JPEG" else {}
    im.save(tmp, format=_PIL_FORMAT[suffix], **options)


def write_mask(path: str | Path, mask: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write a binary mask atomically as 8-bit {0, 255}; return the path.

    Args:
        path: destination: .png, .tif/.tiff, .bmp, .gif, .ppm/.pgm (no JPEG: it is lossy).
        mask: H x W (or H x W x 1) bool, or integers with values in {0, 1}.
        overwrite: replace an existing file (default); False refuses it with InputError.

    Raises:
        UsageError: bad shape, values or suffix.
        InputError: the file exists and ``overwrite`` is False, or cannot be written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _WRITE_MASK:
        raise UsageError(
            f"cannot write masks of type {suffix!r}; expected one of: {', '.join(_WRITE_MASK)}", p
        )
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise UsageError(f"mask must be H x W; got shape {arr.shape}", p)
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "ui" or not np.isin(arr, (0, 1)).all():
            raise UsageError(f"mask must be bool or hold only 0 and 1; got dtype {arr.dtype}", p)
        arr = arr.astype(bool)
    out = (arr.astype(np.uint8) * np.uint8(255))[..., None]
    _atomic(p, lambda tmp: _write_array(tmp, out, suffix), overwrite)
    return p
