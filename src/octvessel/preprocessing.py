"""Image preprocessing that travels with a model's weights (saved in its ``config.json``).

Turns a :class:`~octvessel.data.Sample` image (float32 H x W x C in [0, 1]) into the network
input (float32 C' x H x W), so that training and inference cannot drift apart.

The steps run in this order, each optional except the first:

1. ``color``: RGB, gray (BT.601 luma) or the green channel;
2. ``normalize="minmax"``: stretch each image to [0, 1];
3. ``clahe``: contrast-limited adaptive histogram equalisation on 8 bits, a numpy port of
   OpenCV's ``createCLAHE(clipLimit, tileGridSize).apply`` (see :func:`clahe`);
4. ``gamma``: ``x ** (1 / gamma)``, the retina-unet convention (gamma 1.2 brightens);
5. ``normalize="standardize"``: zero mean and unit standard deviation per image.

The retina-unet / BCDU-Net pipeline is ``Preprocessing("gray", normalize="minmax",
clahe=True, gamma=1.2)``: their ``rgb2gray`` -> ``dataset_normalized`` (a dataset-wide
standardisation followed by a per-image min-max stretch to 0..255, which together are
exactly a per-image min-max stretch) -> ``clahe_equalized`` (OpenCV, clip 2.0, 8 x 8 tiles,
on the image cast to ``uint8``) -> ``adjust_gamma(1.2)`` (an 8-bit lookup table) -> / 255.
FR-UNet's ``normalization`` is likewise a dataset standardisation followed by a per-image
min-max stretch, i.e. ``Preprocessing("gray", normalize="minmax")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from octvessel.config import JsonConfig
from octvessel.data.io import LUMA_WEIGHTS
from octvessel.errors import UsageError

COLOR_MODES = ("rgb", "gray", "green")
NORMALIZE_MODES = ("none", "minmax", "standardize")
#: ITU-R BT.601 luma weights, as Pillow's "L" conversion uses
LUMA = np.array(LUMA_WEIGHTS, dtype=np.float32)
#: tolerance of the float -> 8-bit cast: 8-bit images stored as float32 k/255 map back to k
_U8_EPS = 1e-3


@dataclass(frozen=True)
class Preprocessing(JsonConfig):
    """How an image becomes network input.

    Attributes:
        color: ``rgb`` (3 channels; gray images are repeated), ``gray`` (BT.601 luma, 1
            channel) or ``green`` (the green channel, 1 channel; the vessels' best contrast
            in colour fundus photographs).
        normalize: ``none``; ``minmax`` (each image stretched to [0, 1] before CLAHE and
            gamma, as retina-unet, BCDU-Net and FR-UNet do); ``standardize`` (zero mean,
            unit standard deviation per image, applied last; the values leave [0, 1]).
        clahe: contrast-limited adaptive histogram equalisation of each channel, on the
            image quantised to 8 bits (truncation, as the references' ``uint8`` cast).
        clahe_clip: CLAHE clip limit in OpenCV's units (2.0 in retina-unet / BCDU-Net).
        clahe_tiles: CLAHE tile grid, ``clahe_tiles`` x ``clahe_tiles`` (8 in the references).
        gamma: the output is ``x ** (1 / gamma)``; 1.0 leaves the image alone, 1.2 is the
            references' value. After CLAHE it is applied as their 8-bit lookup table
            (``floor(255 * (k / 255) ** (1 / gamma))``), otherwise in floating point.
    """

    color: str = "rgb"
    normalize: str = "none"
    clahe: bool = False
    clahe_clip: float = 2.0
    clahe_tiles: int = 8
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.color not in COLOR_MODES:
            raise UsageError(f"color={self.color!r}: expected one of {', '.join(COLOR_MODES)}")
        if self.normalize not in NORMALIZE_MODES:
            raise UsageError(
                f"normalize={self.normalize!r}: expected one of {', '.join(NORMALIZE_MODES)}"
            )
        if not isinstance(self.clahe, bool):
            raise UsageError(f"clahe={self.clahe!r}: expected true or false")
        if (
            not isinstance(self.clahe_clip, (int, float))
            or isinstance(self.clahe_clip, bool)
            or not math.isfinite(self.clahe_clip)
            or self.clahe_clip <= 0
        ):
            raise UsageError(f"clahe_clip={self.clahe_clip!r}: expected a positive number")
        if (
            not isinstance(self.clahe_tiles, int)
            or isinstance(self.clahe_tiles, bool)
            or not 1 <= self.clahe_tiles <= 64
        ):
            raise UsageError(f"clahe_tiles={self.clahe_tiles!r}: expected an integer in 1..64")
        if (
            not isinstance(self.gamma, (int, float))
            or isinstance(self.gamma, bool)
            or not math.isfinite(self.gamma)
            or self.gamma <= 0
        ):
            raise UsageError(f"gamma={self.gamma!r}: expected a positive number (1.0 = off)")

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """image: H x W x C (C = 1, 3 or 4) float in [0, 1] -> float32 C' x H x W."""
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise UsageError(
                f"expected an H x W x C image with 1, 3 or 4 channels, got shape {image.shape}"
            )
        image = np.asarray(image[..., :3], dtype=np.float32)
        c = image.shape[2]
        if self.color == "rgb":
            out = np.repeat(image, 3, axis=2) if c == 1 else image
        elif c == 1:
            out = image
        elif self.color == "gray":
            out = (image @ LUMA)[..., None]
        else:  # green
            out = image[..., 1:2]
        out = out.transpose(2, 0, 1)
        if self.normalize == "minmax":
            out = minmax(out)
        if self.clahe:
            tiles = (self.clahe_tiles, self.clahe_tiles)
            eq = np.stack([clahe(to_uint8(ch), self.clahe_clip, tiles) for ch in out])
            if self.gamma != 1.0:
                eq = gamma_lut(self.gamma)[eq]
            out = eq.astype(np.float32) / np.float32(255)
        elif self.gamma != 1.0:
            out = np.power(np.clip(out, 0.0, None), np.float32(1.0 / self.gamma))
        if self.normalize == "standardize":
            out = standardize(out)
        return np.ascontiguousarray(out, dtype=np.float32)


def minmax(x: np.ndarray) -> np.ndarray:
    """Stretch ``x`` (any shape) to [0, 1] over all its values; a constant image becomes 0."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros_like(x)
    return ((x - lo) / np.float32(hi - lo)).astype(np.float32)


def standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation over all of ``x``; a constant image becomes 0."""
    x = np.asarray(x, dtype=np.float32)
    mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    if std == 0.0:
        return np.zeros_like(x)
    return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 by truncation of ``255 x`` (numpy's ``astype(uint8)`` on 0..255).

    A tolerance of 1e-3 grey levels makes 8-bit images stored as float32 (k / 255) come back
    as exactly k.
    """
    scaled = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0
    return np.floor(scaled + _U8_EPS).astype(np.uint8)


def gamma_lut(gamma: float) -> np.ndarray:
    """retina-unet's ``adjust_gamma`` table: uint8[256], ``floor(255 * (k / 255) ** (1 / gamma))``."""
    k = np.arange(256, dtype=np.float64)
    return (((k / 255.0) ** (1.0 / gamma)) * 255.0).astype(np.uint8)


def clahe(
    image: np.ndarray, clip_limit: float = 2.0, tiles: tuple[int, int] = (8, 8)
) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of an 8-bit gray image, as OpenCV does.

    A numpy port of OpenCV's ``cv2.createCLAHE(clipLimit, tileGridSize).apply`` for
    ``uint8`` images (``modules/imgproc/src/clahe.cpp``): the image is padded (bottom and
    right, reflect-101) to a multiple of the tile grid unless it already is one; per tile a
    256-bin histogram is clipped at ``max(int(clip_limit * tile_area / 256), 1)``, the clipped
    count is spread evenly with the remainder given to every ``256 // remainder``-th bin; the
    cumulative histogram times ``255 / tile_area`` (float32, rounded half to even) is the
    tile's lookup table; each pixel of the unpadded image is bilinearly interpolated between
    the tables of the four nearest tile centres (float32, clamped at the borders) and rounded.

    Args:
        image: H x W uint8.
        clip_limit: OpenCV's ``clipLimit`` (> 0; 40 is OpenCV's default, 2.0 retina-unet's).
        tiles: OpenCV's ``tileGridSize`` as (tiles down, tiles across).

    Returns:
        H x W uint8.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 2 or img.size == 0:
        raise UsageError(
            f"clahe: expected a non-empty H x W uint8 image, got {img.dtype} of shape {img.shape}"
        )
    ny, nx = int(tiles[0]), int(tiles[1])
    if ny < 1 or nx < 1:
        raise UsageError(f"clahe: tiles={tiles!r}: expected two positive integers")
    if not clip_limit > 0:
        raise UsageError(f"clahe: clip_limit={clip_limit!r}: expected a positive number")
    h, w = img.shape
    src = img
    if h % ny or w % nx:
        # OpenCV pads both axes whenever either is not a multiple: a full tile when it is one
        src = np.pad(img, ((0, ny - h % ny), (0, nx - w % nx)), mode="reflect")
    th, tw = src.shape[0] // ny, src.shape[1] // nx
    area = th * tw

    blocks = src[: ny * th, : nx * tw].reshape(ny, th, nx, tw).transpose(0, 2, 1, 3)
    flat = blocks.reshape(ny * nx, area).astype(np.int64)
    flat += 256 * np.arange(ny * nx, dtype=np.int64)[:, None]
    hist = np.bincount(flat.ravel(), minlength=256 * ny * nx).reshape(ny * nx, 256)

    limit = max(int(clip_limit * area / 256), 1)
    clipped = np.maximum(hist - limit, 0).sum(axis=1)
    hist = np.minimum(hist, limit) + (clipped // 256)[:, None]
    residual = clipped % 256
    step = np.maximum(256 // np.maximum(residual, 1), 1)
    bins = np.arange(256)
    hist += (bins[None] % step[:, None] == 0) & (bins[None] // step[:, None] < residual[:, None])

    scale = np.float32(255) / np.float32(area)
    cdf = np.cumsum(hist, axis=1).astype(np.float32)
    lut = np.clip(np.rint(cdf * scale), 0, 255).astype(np.float32).reshape(ny, nx, 256)

    def axis_weights(n: int, size: int, tiles_n: int) -> tuple[np.ndarray, ...]:
        pos = np.arange(n, dtype=np.float32) * (np.float32(1.0) / np.float32(size))
        pos = pos - np.float32(0.5)
        t1 = np.floor(pos).astype(np.int64)
        frac = (pos - t1.astype(np.float32)).astype(np.float32)
        return (
            np.maximum(t1, 0),
            np.minimum(t1 + 1, tiles_n - 1),
            frac,
            (np.float32(1.0) - frac).astype(np.float32),
        )

    ty1, ty2, ya, ya1 = axis_weights(h, th, ny)
    tx1, tx2, xa, xa1 = axis_weights(w, tw, nx)
    v = img.astype(np.int64)
    r1, r2 = ty1[:, None], ty2[:, None]
    c1, c2 = tx1[None, :], tx2[None, :]
    top = lut[r1, c1, v] * xa1[None] + lut[r1, c2, v] * xa[None]
    bottom = lut[r2, c1, v] * xa1[None] + lut[r2, c2, v] * xa[None]
    res = top * ya1[:, None] + bottom * ya[:, None]
    return np.clip(np.rint(res), 0, 255).astype(np.uint8)
