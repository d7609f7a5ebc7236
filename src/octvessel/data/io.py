"""Reading and writing images and binary masks.

Readers return a fixed layout whatever the file holds: images as float32 H x W x C in
[0, 1] (C = 1 or 3), masks as bool H x W. Writers are atomic (:mod:`octvessel.atomic`: a
temporary file in the destination folder moved into place with ``os.replace``), so a
crash never leaves a half-written file under the final name.

Formats: PNG, JPEG, TIFF (tifffile first, so 16-bit and float32 TIFF keep their precision;
Pillow as fallback), BMP, GIF, PPM/PGM/PBM; any of them gzip-compressed (``.gz``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import numbers
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from octvessel.atomic import atomic_path
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
_TIFF = (".tif", ".tiff")
_WRITE_IMAGE = (".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".pnm", ".jpg", ".jpeg")
_WRITE_MASK = (".png", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm")
_PIL_FORMAT = {
    ".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}  # fmt: skip
#: ITU-R BT.601 luma weights (R, G, B), as Pillow's "L" conversion: the one copy in octvessel
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA = np.array(LUMA_WEIGHTS)
#: Largest image read, in pixels (the file's header is checked before any decoding), so a
#: hostile or mistaken header cannot ask for gigabytes. ``OCTVESSEL_MAX_PIXELS`` raises it.
DEFAULT_MAX_PIXELS = 100_000_000


def max_pixels() -> int:
    """The pixel limit of the readers: ``$OCTVESSEL_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get("OCTVESSEL_MAX_PIXELS", "")
    try:
        value = int(text) if text else DEFAULT_MAX_PIXELS
    except ValueError:
        raise UsageError(
            f"OCTVESSEL_MAX_PIXELS={text!r}: expected a positive integer number of pixels"
        ) from None
    if value < 1:
        raise UsageError(f"OCTVESSEL_MAX_PIXELS={text!r}: expected a positive integer")
    return value


def check_pixels(height: int, width: int, what: str = "image") -> None:
    """Refuse an image whose header announces more than :func:`max_pixels` pixels."""
    limit = max_pixels()
    if int(height) * int(width) > limit:
        raise InputError(
            f"{what} is {width}x{height} pixels ({int(height) * int(width) / 1e6:.0f} megapixels), "
            f"above the limit of {limit / 1e6:.0f} megapixels (set OCTVESSEL_MAX_PIXELS to raise it)"
        )


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """Keep tifffile's log lines and Pillow's warnings off the terminal while reading.

    A bad file becomes one :class:`InputError` line; the decoders' own chatter about it
    (dozens of ``<TiffTag.fromfile> raised ...`` lines) would bury that line.
    """
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", module="tifffile")
            warnings.filterwarnings("ignore", module="PIL")
            yield
    finally:
        logger.setLevel(level)


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


def _is_tiff(src: Path | io.BytesIO) -> bool:
    """True when the content starts like a TIFF (whatever the file is called)."""
    try:
        if isinstance(src, io.BytesIO):
            head = src.getvalue()[:4]
        else:
            with open(src, "rb") as fh:
                head = fh.read(4)
    except OSError:
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@contextlib.contextmanager
def _quiet_c_stderr(active: bool = True) -> Iterator[None]:
    """Silence file descriptor 2 while Pillow's libtiff decodes a TIFF.

    libtiff prints its warnings about damaged files ("TIFFReadDirectory: ...") straight to
    the C-level stderr, past Python; the reader reports the problem as one InputError line.
    """
    if not active:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: most pages a TIFF may chain (a B-scan stack of 100,000 is far beyond any scanner's)
MAX_TIFF_PAGES = 100_000


def check_tiff_pages(tif: tifffile.TiffFile, limit: int = MAX_TIFF_PAGES) -> int:
    """Walk a TIFF's page chain once; return the page count.

    tifffile follows the chain of pages blindly, so a damaged file whose next-page offset
    points back at an earlier page would keep it busy forever: such a loop, or more than
    ``limit`` pages, raises :class:`InputError` instead.
    """
    seen: set[int] = set()
    for page in tif.pages:
        offset = int(getattr(page, "offset", -1))
        if offset in seen:
            raise InputError(
                f"TIFF page chain loops back to offset {offset} after {len(seen)} pages "
                "(corrupt file)"
            )
        seen.add(offset)
        if len(seen) > limit:
            raise InputError(f"TIFF chains more than {limit:,} pages; expected an image or a stack")
    return len(seen)


def _size_of(src: Path | io.BytesIO) -> int:
    return len(src.getbuffer()) if isinstance(src, io.BytesIO) else src.stat().st_size


#: the most a byte of compressed TIFF data can expand to (deflate's limit is 1032, LZW's a
#: few thousand, PackBits' 64), with a margin; other compressions are not bounded here
_MAX_RATIO = {5: 4096, 8: 1100, 32946: 1100, 32773: 130}


def check_tiff_data(pages: Any, file_size: int) -> None:
    """Refuse TIFF pages whose image data cannot hold the image their header announces.

    tifffile fills what is missing with zeros, so a truncated file would read as a black
    band. Checked: strips or tiles that run past the end of the file; uncompressed data
    shorter than the image; compressed data too short for the image even at the codec's
    largest possible compression ratio.
    """
    for page in pages:
        if page is None:
            continue
        key = getattr(page, "keyframe", None) or page
        offsets, counts = page.dataoffsets, page.databytecounts
        ends = [int(o) + int(c) for o, c in zip(offsets, counts, strict=False) if c]
        if ends and max(ends) > file_size:
            raise InputError(
                f"TIFF is truncated: its image data reach byte {max(ends):,} of a "
                f"{file_size:,}-byte file"
            )
        compression = int(key.compression)
        if compression != 1 and compression not in _MAX_RATIO:
            continue
        row = -(
            -int(key.imagewidth)
            * int(key.bitspersample)
            * (int(key.samplesperpixel) if int(key.planarconfig) == 1 else 1)
            // 8
        )
        planes = int(key.samplesperpixel) if int(key.planarconfig) == 2 else 1
        need = planes * int(key.imagelength) * row * max(1, int(getattr(key, "imagedepth", 1)))
        have = sum(int(c) for c in counts)
        if compression == 1 and not key.is_tiled and have < need:
            raise InputError(
                f"TIFF is truncated or damaged: it holds {have:,} of the {need:,} bytes of "
                "uncompressed image data its header announces"
            )
        if compression != 1 and have * _MAX_RATIO[compression] + 65536 < need:
            raise InputError(
                f"TIFF is truncated or damaged: {have:,} bytes of compressed data cannot hold "
                f"the {need:,} bytes of image its header announces"
            )


_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_png_data(data: bytes) -> None:
    """Refuse a PNG whose compressed image data end before the image does.

    Pillow stops quietly when the zlib stream of the IDAT chunks ends early and leaves the
    missing rows black; a damaged label would then be read as "no vessels there".
    """
    pos, ihdr, idat = 8, None, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) == 13:
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or ihdr[3] not in _PNG_CHANNELS:
        return  # Pillow reports these itself
    width, height, depth, colour, _, _, interlace = ihdr
    bits = _PNG_CHANNELS[colour] * depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    need = 0
    for x0, y0, dx, dy in passes:
        pw, ph = -(-max(width - x0, 0) // dx), -(-max(height - y0, 0) // dy)
        if pw and ph:
            need += ph * (1 + -(-pw * bits // 8))
    inflate = zlib.decompressobj()
    try:
        got = len(inflate.decompress(b"".join(idat), need + 1))
    except zlib.error as exc:
        raise InputError(f"PNG image data are damaged ({exc})") from None
    if got < need:
        raise InputError(
            f"PNG is truncated or damaged: its image data decode to {got:,} of the {need:,} "
            "bytes the header announces"
        )


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


# ----------------------------------------------------------------------------- writing


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
