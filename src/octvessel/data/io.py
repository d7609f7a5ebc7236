"""Reading and writing images and binary masks.

Readers return a fixed layout whatever the file holds: images as float32 H x W x C in
[0, 1] (C = 1 or 3), masks as bool H x W. Writers are atomic (:mod:`octvessel.atomic`: a
temporary file in the destination folder moved into place with ``os.replace``), so a
crash never leaves a half-written file under the final name.

Formats: PNG, JPEG, TIFF (tifffile first, so 16-bit and float32 TIFF keep their precision;
Pillow as fallback), BMP, GIF, PPM/PGM/PBM; any of them gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import io
import numbers
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from octvessel.data.image_checks import (  # noqa: F401  (re-exported: readers import them from here)
    DEFAULT_MAX_PIXELS,
    MAX_TIFF_PAGES,
    _is_tiff,
    _quiet_c_stderr,
    _size_of,
    check_pixels,
    check_png_data,
    check_tiff_data,
    check_tiff_pages,
    max_pixels,
    quiet_decoders,
)
from octvessel.data.image_write import TIFF_SUFFIXES as _TIFF
from octvessel.data.image_write import write_image, write_mask
from octvessel.errors import InputError, UsageError

__all__ = [
    "IMAGE_SUFFIXES",
    "is_image_file",
    "read_image",
    "read_mask",
    "write_image",
    "write_mask",
]

IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm",
)  # fmt: skip
#: ITU-R BT.601 luma weights (R, G, B), as Pillow's "L" conversion: the one copy in octvessel
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA = np.array(LUMA_WEIGHTS)


def image_suffix(path: str | Path) -> str:
    """Lower-case image suffix of ``path``, looking through a trailing ``.gz``."""
    p = Path(path)
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()


def is_image_file(path: str | Path) -> bool:
    """True for a visible file whose suffix is a readable image type (``.gz`` allowed)."""
    p = Path(path)
    return not p.name.startswith(".") and image_suffix(p) in IMAGE_SUFFIXES and p.is_file()


# ----------------------------------------------------------------------------- reading


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} file not found", path)
    if not path.is_file():
        raise InputError(f"expected a {what} file, found a folder or special file", path)
    if path.stat().st_size == 0:
        raise InputError(f"{what} file is empty (0 bytes)", path)


def _source(path: Path, what: str) -> Path | io.BytesIO:
    """The file itself, or its decompressed bytes when it ends in ``.gz``."""
    if path.suffix.lower() != ".gz":
        return path
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot decompress {what} file ({_one_line(exc)})", path) from exc
    if not data:
        raise InputError(f"{what} file is empty after decompression", path)
    return io.BytesIO(data)


def _one_line(exc: BaseException, path: Path | None = None) -> str:
    """The exception as one short line, without a repeat of the file name."""
    text = str(exc)
    if path is not None:
        text = text.replace(f" '{path}'", "").replace(f" {path}", "")
    text = " ".join(text.split()) or type(exc).__name__
    return text[:200]


def _read_raw(path: str | Path, what: str) -> tuple[np.ndarray, bool]:
    """Pixel values as stored: (H x W or H x W x C array, came_from_a_palette).

    Palettes are expanded to their RGB colours (uint8), 1-bit images become uint8
    {0, 255} (bool from TIFF), 16-bit data stays uint16 and float TIFF stays float.
    """
    p = Path(path)
    max_pixels()  # a bad OCTVESSEL_MAX_PIXELS is a usage error, not this file's
    _check_file(p, what)
    src = _source(p, what)
    with quiet_decoders():
        if image_suffix(p) in _TIFF:
            try:
                return _read_tiff(src, what)
            except InputError as exc:
                raise InputError(str(exc), p) from exc
            except MemoryError as exc:
                raise InputError(f"not enough memory to read this {what} ({exc})", p) from exc
            except Exception:  # e.g. a compression tifffile cannot decode: try Pillow
                if isinstance(src, io.BytesIO):
                    src.seek(0)
        try:
            with _quiet_c_stderr(_is_tiff(src)):
                return _read_pillow(src, what)
        except InputError as exc:
            raise InputError(str(exc), p) from exc
        except Image.DecompressionBombError as exc:
            raise InputError(
                f"{what} header announces an image too large to read ({_one_line(exc, p)}; "
                "Pillow refuses such sizes)",
                p,
            ) from exc
        except MemoryError as exc:
            raise InputError(f"not enough memory to read this {what} ({exc})", p) from exc
        except Exception as exc:  # Pillow raises many exception types for bad files
            raise InputError(
                f"cannot read {what} file: not a valid or complete image ({_one_line(exc, p)})", p
            ) from exc


def _read_tiff(src: Path | io.BytesIO, what: str = "image") -> tuple[np.ndarray, bool]:
    with tifffile.TiffFile(src) as tif:
        check_tiff_pages(tif)
        series = tif.series[0]
        page = tif.pages[0]
        shape = series.shape
        if shape and int(np.prod(shape, dtype=np.float64)) > 4 * max_pixels():
            raise InputError(
                f"TIFF {what} of shape {tuple(shape)} holds more than {4 * max_pixels() / 1e6:.0f} "
                "million samples (set OCTVESSEL_MAX_PIXELS to raise the limit)"
            )
        if len(page.shape) >= 2:
            check_pixels(page.imagelength, page.imagewidth, what)
        check_tiff_data(series.pages, _size_of(src))
        arr = series.asarray()
        axes = series.axes
        palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE
        colormap = page.colormap if palette else None
    # drop singleton axes other than Y and X, then move samples (S) last
    keep = [i for i, a in enumerate(axes) if a in "YXS" or arr.shape[i] != 1]
    arr = arr.reshape([arr.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if set(axes) - set("YXS"):
        raise InputError(f"expected one 2-D image, found a TIFF of shape {arr.shape} (axes {axes})")
    if arr.size == 0 or "Y" not in axes or "X" not in axes:
        raise InputError(f"TIFF holds no {what} data (shape {arr.shape})")
    arr = np.moveaxis(arr, [axes.index(a) for a in axes if a in "YX"], [0, 1])
    if palette and colormap is not None and arr.ndim == 2:
        cmap = np.asarray(colormap)
        if cmap.max() > 255:
            cmap = cmap // 257
        arr = cmap[:, arr].transpose(1, 2, 0).astype(np.uint8)
    return arr, palette


def _read_pillow(src: Path | io.BytesIO, what: str = "image") -> tuple[np.ndarray, bool]:
    with Image.open(src) as im:
        check_pixels(im.height, im.width, what)
        if im.format == "PNG":
            check_png_data(src.getvalue() if isinstance(src, io.BytesIO) else src.read_bytes())
        elif im.format == "GIF" and im.width * im.height > 4096 * _size_of(src) + 65536:
            raise InputError(
                f"GIF is truncated or damaged: {_size_of(src):,} bytes cannot hold the "
                f"{im.width}x{im.height} image its header announces"
            )
        im.load()
        mode = im.mode
        palette = mode in ("P", "PA")
        if palette:
            im = im.convert("RGB")
        elif mode == "1":
            im = im.convert("L")
        elif mode in ("LA", "La"):
            im = im.getchannel(0)
        elif mode not in ("L", "RGB", "I", "F") and not mode.startswith("I;16"):
            im = im.convert("RGB")  # RGBA, RGBX, CMYK, YCbCr, LAB, HSV ...
        arr = np.asarray(im)
    if arr.dtype.kind == "i":  # Pillow mode "I": 16-bit PGM/PNG stored as int32
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(
                f"32-bit integer image with values {arr.min()}..{arr.max()}; "
                "expected 8- or 16-bit data"
            )
        arr = arr.astype(np.uint16)
    elif arr.dtype.kind == "u" and arr.dtype != np.uint8:
        arr = arr.astype(np.uint16)  # I;16B and friends
    return arr, palette


def _full_scale(dtype: np.dtype) -> float:
    """The value that means "white" for a dtype: 255, 65535, 1.0 ..."""
    if dtype == np.bool_ or dtype.kind == "f":
        return 1.0
    return float(np.iinfo(dtype).max)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as float32 H x W x C with values in [0, 1].

    8-bit data is divided by 255, 16-bit by 65535; float data (TIFF) must already lie in
    [0, 1]. Grayscale (and gray palettes) give C = 1, colour gives C = 3; alpha is dropped
    (RGBA -> RGB, LA -> L); palettes are expanded to their colours.

    Raises:
        InputError: missing, empty, truncated or unreadable file, more than one image in
            the file, or float values outside [0, 1].
    """
    p = Path(path)
    raw, palette = _read_raw(p, "image")
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.ndim != 3 or raw.shape[2] not in (1, 2, 3, 4) or 0 in raw.shape:
        raise InputError(f"expected a 2-D grayscale or colour image, found shape {raw.shape}", p)
    if raw.shape[2] in (2, 4):
        raw = raw[..., : raw.shape[2] - 1]  # drop alpha
    if (
        palette
        and raw.shape[2] == 3
        and np.array_equal(raw[..., 0], raw[..., 1])
        and (np.array_equal(raw[..., 0], raw[..., 2]))
    ):
        raw = raw[..., :1]
    if raw.dtype.kind == "f":
        img = raw.astype(np.float32)
        if not np.isfinite(img).all():
            raise InputError("float image contains NaN or infinite values", p)
        lo, hi = float(img.min()), float(img.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(f"float image values span [{lo:.4g}, {hi:.4g}]; expected [0, 1]", p)
        img = np.clip(img, 0.0, 1.0)
    elif raw.dtype.kind in "ub":
        img = raw.astype(np.float32) / np.float32(_full_scale(raw.dtype))
    elif raw.dtype.kind == "i":
        if raw.min() < 0:
            raise InputError(f"signed image has negative values (min {raw.min()})", p)
        img = raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max)
    else:
        raise InputError(f"unsupported pixel type {raw.dtype}", p)
    return np.ascontiguousarray(img, dtype=np.float32)


def read_mask(path: str | Path, what: str = "label", threshold: float | None = None) -> np.ndarray:
    """Read a binary mask (vessel label or FOV mask) as bool H x W (True = foreground).

    Accepted by default (``threshold=None``, strict): exactly two levels ``{0, v}`` for any
    v > 0 ({0, 1}, {0, 255}, {0, 65535}, {0.0, 1.0} ...), a single level (0 -> all False,
    v > 0 -> all True), and palette images whose used colours map to two luminance levels
    (the brighter one is True, e.g. DRIVE's 2nd_manual GIFs, palette indices {0, 1}).
    Colour files are reduced to one channel when the channels agree, else to luminance.
    With ``threshold`` in [0, 1], soft masks (JPEG, anti-aliased) are accepted:
    True where value / full-scale (255, 65535 or 1.0) > threshold.

    Args:
        path: the file.
        what: what the mask is ("label", "FOV mask"), used in error messages.
        threshold: None for strict two-level masks, or a float in [0, 1].

    Raises:
        InputError: unreadable file, or (strict) more than two levels; the message names
            the values found.
    """
    p = Path(path)
    if threshold is not None and not (
        isinstance(threshold, numbers.Real) and 0.0 <= float(threshold) <= 1.0
    ):
        raise UsageError(
            f"threshold={threshold!r} is not valid; expected None or a number in [0, 1]"
        )
    raw, palette = _read_raw(p, what)
    if raw.dtype.kind not in "biuf":
        raise InputError(f"unsupported pixel type {raw.dtype} for a {what}", p)
    if raw.ndim == 3 and raw.shape[2] not in (1, 2, 3, 4):
        raise InputError(
            f"expected a 2-D {what} (gray or colour), found {raw.shape[2]} channels "
            f"(shape {raw.shape})",
            p,
        )
    scale = _full_scale(raw.dtype)
    if raw.ndim == 3:
        if raw.shape[2] in (2, 4):
            raw = raw[..., : raw.shape[2] - 1]
        if raw.shape[2] == 1 or (
            np.array_equal(raw[..., 0], raw[..., 1]) and np.array_equal(raw[..., 0], raw[..., 2])
        ):
            raw = raw[..., 0]
        else:
            raw = raw.astype(np.float64) @ _LUMA
    if raw.ndim != 2 or 0 in raw.shape:
        raise InputError(f"expected a 2-D {what}, found shape {raw.shape}", p)
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise InputError(f"{what} contains NaN or infinite values", p)
    if threshold is not None:
        return np.ascontiguousarray(raw / scale > float(threshold))

    levels = _levels(raw)
    if len(levels) == 1:
        only = float(levels[0])
        value = only >= 0.5 * scale if palette else only > 0
        return np.full(raw.shape, value, dtype=bool)
    if len(levels) == 2 and (palette or float(levels[0]) == 0.0):
        return np.ascontiguousarray(raw == levels[1])
    shown = ", ".join(f"{float(v):g}" for v in levels[:8]) + (", ..." if len(levels) > 8 else "")
    expected = (
        "two levels such as {0, 1} or {0, 255}"
        if len(levels) > 2
        else "0 for background and one value for foreground"
    )
    raise InputError(
        f"{what} is not binary: found {len(levels)} values ({shown}); expected {expected} "
        "(in Python: read_mask(..., threshold=0.5) accepts soft masks)",
        p,
    )


def _levels(arr: np.ndarray) -> np.ndarray:
    """Sorted distinct values (fast path for 8-bit data)."""
    if arr.dtype == np.uint8:
        return np.flatnonzero(np.bincount(arr.ravel(), minlength=256)).astype(np.uint8)
    return np.unique(arr)
