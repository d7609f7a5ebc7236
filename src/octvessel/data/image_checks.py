"""Checks that run before an image is decoded: pixel limits, TIFF page chains, truncated data.

A hostile or damaged header must not make a reader allocate gigabytes, loop forever or
return a half-black image: each check here raises one :class:`InputError` line instead.
Used by :mod:`octvessel.data.io` and the OCT volume readers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tifffile
from PIL import Image

from octvessel.errors import InputError, UsageError

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
