"""Random crops with the reference IterNet augmentation, identical for image, label and FOV.

The reference (Li et al.'s Keras generator) uses: brightness, contrast and saturation
+-0.2 (p 0.5 each), rotation +-180 degrees (p 0.5), horizontal and vertical flips (p 0.5),
and rarely shear, shift +-10 % and zoom 0.8-1.2 (p 0.05 each); labels are re-binarised at
0.5. Here every geometric change is folded into one affine map that is sampled only on
the output crop, so augmenting a 128x128 crop costs the same whatever the image size.
Everything random comes from the ``rng`` passed in, so a crop is a pure function of
(image, rng state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig
from octvessel.data.io import LUMA_WEIGHTS
from octvessel.errors import UsageError

AUGMENT_MODES = ("reference", "flips", "none")


@dataclass(frozen=True)
class AugmentConfig(JsonConfig):
    """Probabilities and ranges of each augmentation (defaults: the IterNet reference)."""

    color_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    rotate_p: float = 0.5
    rotate_deg: float = 180.0
    flip_p: float = 0.5
    shear_p: float = 0.05
    shear_deg: float = 10.0
    shift_p: float = 0.05
    shift: float = 0.1
    zoom_p: float = 0.05
    zoom: tuple[float, float] = (0.8, 1.2)
    #: physical-scale augmentation: with probability ``scale_p`` the crop is zoomed by one
    #: factor on both axes, log-uniform in ``scale_range`` (off by default; training's
    #: ``scale_jitter`` j sets p 1 and a range of 1/(1+j) .. 1+j), so that a model tolerates
    #: a residual error in an input's estimated pixel size (docs/scale.md)
    scale_p: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)

    @classmethod
    def preset(cls, mode: str) -> AugmentConfig:
        """``reference`` (all of the above), ``flips`` (flips and 90-degree turns only), ``none``."""
        if mode not in AUGMENT_MODES:
            raise UsageError(f"augment={mode!r}: expected one of {', '.join(AUGMENT_MODES)}")
        if mode == "reference":
            return cls()
        zero = dict(color_p=0.0, rotate_p=0.0, shear_p=0.0, shift_p=0.0, zoom_p=0.0)
        return cls(**zero, flip_p=0.5 if mode == "flips" else 0.0)


def _affine(
    cfg: AugmentConfig, rng: np.random.Generator, crop: int
) -> tuple[np.ndarray, np.ndarray]:
    """A 2x2 matrix (output -> input offsets, row/col order) and a shift in pixels."""
    m = np.eye(2)
    if rng.random() < cfg.rotate_p:
        a = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
        m = m @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if rng.random() < cfg.shear_p:
        s = np.tan(np.deg2rad(rng.uniform(-cfg.shear_deg, cfg.shear_deg)))
        m = m @ np.array([[1.0, 0.0], [s, 1.0]])
    if rng.random() < cfg.zoom_p:
        m = m @ np.diag(1.0 / rng.uniform(*cfg.zoom, size=2))
    if rng.random() < cfg.flip_p:
        m = m @ np.diag([1.0, -1.0])
    if rng.random() < cfg.flip_p:
        m = m @ np.diag([-1.0, 1.0])
    shift = np.zeros(2)
    if rng.random() < cfg.shift_p:
        shift = rng.uniform(-cfg.shift, cfg.shift, size=2) * crop
    if cfg.scale_p > 0 and rng.random() < cfg.scale_p:  # no draw when off: crops unchanged
        lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
        m = m / np.exp(rng.uniform(lo, hi))
    return m, shift


def _jitter(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and (3 channels only) saturation jitter of C x h x w in [0, 1]."""
    if cfg.color_p <= 0:
        return x
    if rng.random() < cfg.color_p:
        x = x * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if rng.random() < cfg.color_p:
        x = (x - x.mean()) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + x.mean()
    if x.shape[0] == 3 and rng.random() < cfg.color_p:
        r, g, b = LUMA_WEIGHTS
        gray = (r * x[0] + g * x[1] + b * x[2])[None]
        x = (x - gray) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + gray
    return np.clip(x, 0.0, 1.0)


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    fov: np.ndarray,
    crop: int,
    rng: np.random.Generator,
    cfg: AugmentConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented ``crop`` x ``crop`` crop.

    Args:
        image: float32 C x H x W (network input, already preprocessed).
        label: bool H x W vessel label.
        fov: bool H x W field of view.
        crop: output side in pixels (may exceed the image: the image is mirrored).
        rng: the only source of randomness.
        cfg: augmentation (default: none).

    Returns:
        (float32 C x crop x crop, bool crop x crop label re-binarised at 0.5, bool crop x crop FOV).
    """
    cfg = cfg or AugmentConfig.preset("none")
    h, w = label.shape
    center = np.array([rng.uniform(0, h), rng.uniform(0, w)]) if h > 1 and w > 1 else np.zeros(2)
    m, shift = _affine(cfg, rng, crop)
    half = (crop - 1) / 2.0
    offset = center + shift - m @ np.array([half, half])
    plain = np.allclose(m, np.eye(2)) and not shift.any()

    def sample(a: np.ndarray, order: int) -> np.ndarray:
        if plain and h >= crop and w >= crop:  # an integer window: a copy, no interpolation
            r0 = int(np.clip(round(offset[0]), 0, h - crop))
            c0 = int(np.clip(round(offset[1]), 0, w - crop))
            return a[r0 : r0 + crop, c0 : c0 + crop].astype(np.float32)
        return ndimage.affine_transform(
            a.astype(np.float32),
            m,
            offset=offset,
            output_shape=(crop, crop),
            order=order,
            mode="mirror",
        )

    x = np.stack([sample(c, 1) for c in image])
    y = sample(label, 1) >= 0.5
    f = sample(fov, 0) >= 0.5
    x = _jitter(x, cfg, rng)
    return np.ascontiguousarray(x, dtype=np.float32), y, f
