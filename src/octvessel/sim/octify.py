"""OCT-like training data simulated from labelled fundus photographs ("octify").

No OCT en-face reconstructions with vessel labels are available to this project, so
:func:`octify_sample` turns a labelled fundus photograph into images that look like the
en-face reconstructions of a 7 x 7 mm macular OCT raster (Optovue Avanti "3D Retina":
385 A-scans wide x 141 B-scans high), with the label and field of view carried through the
same geometry. It is a simulation: the vessels are real, the OCT appearance is modelled.

Per source image:

1. One channel: green (default) or BT.601 luminance.
2. Square crops of ``crop_mm`` (7 mm) of retina. The pixel size of the source comes from
   ``mm_per_px``, else the dataset's ``spacing`` (``dataset.json``), else the camera's
   field angle (``FIELD_DEG``: DRIVE and HRF 45 deg, STARE 35 deg, CHASE_DB1 30 deg) x
   ``mm_per_degree`` (0.29 mm of retina per degree) over the measured FOV diameter in
   pixels (the widest row of the FOV mask; robust to FOVs clipped at top and bottom).
   Crops lie at least ``min_fov_fraction`` inside the FOV; ``crops=0`` places them on a
   half-overlapping grid over the FOV, ``crops=N`` draws N positions at random.
3. Anisotropic resampling of the crop to ``height`` x ``width`` (141 x 385): exact area
   averaging wherever an output pixel is larger than a source pixel (the slow axis:
   7 mm / 141 = 0.050 mm per B-scan), linear interpolation where it is smaller.
   Label and FOV go through the same matrices as fractions in [0, 1] and are
   re-binarised at >= 0.5.
4. OCT-like degradations (each off at strength 0), set to the measured statistics of a
   real Spectralis reconstruction (docs/oct-model.md): small per-B-scan horizontal
   shifts (eye motion; applied to label and FOV too), Gaussian blur (physical sigma),
   vignetting, the dark side edges of real scans, a dark fovea, weak per-B-scan
   brightness stripes that drift over neighbouring B-scans, a few single dark or bright
   B-scans, multiplicative speckle
   correlated along the A-scans; then a percentile stretch to [0, 1] inside the FOV and
   weak additive noise.
5. Optionally (``square``) the 385 x 385 resample the OCT paper's authors also used:
   rows linearly interpolated 141 -> 385 for the image and the label/FOV fractions.

Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the
output; :func:`octify_dataset` seeds each source image from (seed, image name), so a
subset (one split) gets the same crops as the whole dataset. It writes the CAVRI-C-style
layout that :func:`octvessel.data.load_dataset` reads back
(:mod:`octvessel.sim.octify_dataset`).

The configuration is in :mod:`octvessel.sim.octify_config`, the pixel-size, crop and
resampling geometry in :mod:`octvessel.sim.octify_geometry` (both re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from octvessel.data.io import LUMA_WEIGHTS
from octvessel.data.sample import Sample
from octvessel.errors import InputError
from octvessel.sim.octify_config import CHANNELS, FIELD_DEG, MM_PER_DEGREE, OctifyConfig
from octvessel.sim.octify_geometry import (
    crop_positions,
    resample_matrix,
    source_mm_per_px,
    source_window,
)

__all__ = [
    "CHANNELS",
    "FIELD_DEG",
    "MM_PER_DEGREE",
    "OctifyConfig",
    "crop_positions",
    "octify_sample",
    "side_falloff",
    "resample_matrix",
    "source_mm_per_px",
]


GENERATOR = "octvessel.sim.octify"
_LUMA = np.array(LUMA_WEIGHTS)


def _gray(image: np.ndarray, channel: str) -> np.ndarray:
    """H x W x C float in [0, 1] -> H x W float64 (luminance or green; gray stays gray)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return np.asarray(image.reshape(image.shape[:2]), dtype=np.float64)
    rgb = np.asarray(image[..., :3], dtype=np.float64)
    return rgb[..., 1].copy() if channel == "green" else rgb @ _LUMA


def _shift_rows(arrays: Sequence[np.ndarray], shifts: np.ndarray) -> list[np.ndarray]:
    """Shift row r of each H x W array right by ``shifts[r]`` pixels (linear, edge-clamped)."""
    h, w = arrays[0].shape
    x = np.arange(w)[None, :] - shifts[:, None]
    x = np.clip(x, 0.0, w - 1.0)
    x0 = np.floor(x).astype(int)
    x1 = np.minimum(x0 + 1, w - 1)
    f = x - x0
    rows = np.arange(h)[:, None]
    return [a[rows, x0] * (1 - f) + a[rows, x1] * f for a in arrays]


def _row_shifts(h: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """Eye-motion shifts per B-scan: a zero-mean random walk scaled to ``std`` pixels."""
    walk = np.cumsum(rng.standard_normal(h))
    walk -= walk.mean()
    sd = walk.std()
    return walk * (std / sd) if sd > 0 and std > 0 else np.zeros(h)


def _stripes(h: int, std: float, corr: float, rng: np.random.Generator) -> np.ndarray:
    """Per-B-scan log-gains: an AR(1) series of lag-1 correlation ``corr`` and std ``std``."""
    e = rng.standard_normal(h)
    out = np.empty(h)
    out[0] = e[0]
    k = np.sqrt(1.0 - corr**2)
    for i in range(1, h):  # h is a few hundred B-scans
        out[i] = corr * out[i - 1] + k * e[i]
    return std * out


def side_falloff(n: int, px_mm: float, rng: np.random.Generator) -> np.ndarray:
    """The dark side edges of real scans: (n,) float64 in [0, 1], largest at the first and
    last A-scan (each side drawn in [0.5, 1]), falling to 0 with a raised cosine over a
    width drawn in [0.05, 0.17] mm per side (``px_mm``: mm per A-scan)."""
    out = np.zeros(n)
    x_mm = (np.arange(n) + 0.5) * px_mm
    for dist in (x_mm, x_mm[::-1]):
        width, depth = rng.uniform(0.05, 0.17), rng.uniform(0.5, 1.0)
        t = np.clip(dist / width, 0.0, 1.0)
        out = np.maximum(out, depth * 0.5 * (1.0 + np.cos(np.pi * t)))
    return out


def edge_rim(h: int, w: int, chance: float, rng: np.random.Generator) -> np.ndarray:
    """The noisy outermost A-scans of real reconstructions: multiplicative gains (h, w),
    1 except, on each side with probability ``chance``, in its outer 1-3 columns, where each
    pixel draws its own log-gain of sd 1.2, 0.72, 0.43 from the edge inwards (real
    Spectralis P1-P3, first A-scan: 5-95 % range 0-251 of 255 around a median of 60,
    row-to-row correlation 0.34; the stretch's clip saturates the extremes as it does there).
    """
    gains = np.ones((h, w))
    for side in (0, 1):
        if rng.random() >= chance:
            continue
        for j in range(int(rng.integers(1, 4))):
            col = j if side == 0 else w - 1 - j
            gains[:, col] = np.exp(1.2 * 0.6**j * rng.standard_normal(h))
    return gains


def _fovea(
    shape: tuple[int, int], spacing: tuple[float, float], depth: float, rng: np.random.Generator
) -> np.ndarray:
    """Gains (h, w): a Gaussian foveal darkening (1 - d exp(-r^2 / 2 s^2)), r in mm."""
    h, w = shape
    cy, cx = rng.uniform(0.3, 0.7, 2)
    sigma = rng.uniform(0.3, 0.6)
    d = depth * rng.uniform(0.5, 1.0)
    y = ((np.arange(h) + 0.5) / h - cy) * h * spacing[0]
    x = ((np.arange(w) + 0.5) / w - cx) * w * spacing[1]
    r2 = y[:, None] ** 2 + x[None, :] ** 2
    return 1.0 - d * np.exp(-r2 / (2 * sigma**2))


def _motion_lines(h: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Per-B-scan log-gains (h,): a Poisson(``mean``) number of 1-2-row jumps, sd 0.3."""
    out = np.zeros(h)
    for _ in range(rng.poisson(mean)):
        r, n = int(rng.integers(0, h)), int(rng.integers(1, 3))
        out[r : r + n] += np.clip(rng.normal(0.0, 0.3), -0.7, 0.5)
    return out


def _speckle(
    shape: tuple[int, int], cv: float, corr_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Multiplicative gamma speckle of mean 1 and coefficient of variation ``cv``, correlated
    over ``corr_px`` (Gaussian sigma) along the A-scans."""
    k = 1.0 / cv**2
    field = rng.gamma(k, 1.0 / k, size=shape)
    if corr_px > 0:
        field = ndimage.gaussian_filter1d(field - 1.0, corr_px, axis=1, mode="reflect")
        sd = field.std()
        field = 1.0 + field * (cv / sd) if sd > 0 else np.ones(shape)
        field = np.maximum(field, 0.0)
    return field


def _degrade(
    image: np.ndarray,
    fov: np.ndarray,
    spacing: tuple[float, float],
    config: OctifyConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blur, vignetting, dark side edges, foveal dip, stripes, speckle, noisy edge columns
    on an H x W float image (``spacing``: mm per row, column); stretched to [0, 1], then
    additive noise."""
    h, w = image.shape
    out = image
    if config.blur_mm > 0:
        out = ndimage.gaussian_filter(
            out, (config.blur_mm / spacing[0], config.blur_mm / spacing[1]), mode="nearest"
        )
    if config.vignetting > 0:
        cy, cx = rng.uniform(-0.1, 0.1, 2)
        yy = np.linspace(-1, 1, h)[:, None] - cy
        xx = np.linspace(-1, 1, w)[None, :] - cx
        out = out * (1.0 - config.vignetting * np.clip((yy**2 + xx**2) / 2.0, 0, 1))
    if config.edge_falloff > 0:
        out = out * (1.0 - config.edge_falloff * side_falloff(w, spacing[1], rng))[None, :]
    if config.fovea_dip > 0 and rng.random() < 0.8:
        out = out * _fovea((h, w), spacing, config.fovea_dip, rng)
    if config.stripes > 0:
        out = out * np.exp(_stripes(h, config.stripes, config.stripe_corr, rng))[:, None]
    if config.motion_lines > 0:
        out = out * np.exp(_motion_lines(h, config.motion_lines, rng))[:, None]
    if config.speckle > 0:
        out = out * _speckle(out.shape, config.speckle, config.speckle_corr_px, rng)
    if config.edge_rim > 0:
        out = out * edge_rim(h, w, config.edge_rim, rng)
    inside = out[fov] if fov.any() else out.ravel()
    lo, hi = np.percentile(inside, (1.0, 99.0))
    out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
    if config.noise > 0:
        out = out + config.noise * rng.standard_normal(out.shape)
    return np.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------------------ sample


def octify_sample(sample: Sample, config: OctifyConfig, rng: np.random.Generator) -> list[Sample]:
    """OCT-en-face-like crops of one labelled fundus image.

    Args:
        sample: image float32 H x W x C in [0, 1], label bool H x W (required), fov bool H x W.
        config: geometry and degradations.
        rng: the source of every random choice (crop corners, degradations).

    Returns:
        One :class:`Sample` per crop, named ``<name>_c<k>``: image float32 rows x cols x 1
        in [0, 1] (``config.out_shape``, 141 x 385 by default), label and fov bool, spacing
        ``config.spacing`` (mm), split and path of the source; ``meta`` holds the crop box
        (source pixels), the source mm per pixel and the label fractions before and after.

    Raises:
        InputError: no label, unknown pixel size, or no crop fits inside the FOV.
    """
    if sample.label is None:
        raise InputError(
            "octify needs a vessel label for every image; this one has none", sample.path
        )
    row_mm, col_mm, how = source_mm_per_px(sample, config)
    ch_f, cw_f = config.crop_mm / row_mm, config.crop_mm / col_mm
    size = (max(1, int(round(ch_f))), max(1, int(round(cw_f))))
    corners = crop_positions(sample.fov, size, config, rng, sample.path)
    gray = _gray(sample.image, config.channel)
    label = sample.label.astype(np.float64)
    fov = sample.fov.astype(np.float64)
    h, w = gray.shape
    nat_h, out_w = config.height, config.width
    spacing_nat = (config.crop_mm / nat_h, config.crop_mm / out_w)
    outputs = []
    for k, (r0, c0, inside) in enumerate(corners):
        ch, cw = min(ch_f, h - r0), min(cw_f, w - c0)  # rounding may leave < 1 px to spare
        (ra, rb), (ca, cb) = source_window(r0, ch, h), source_window(c0, cw, w)
        rows = resample_matrix(r0 - ra, ch, nat_h, rb - ra)
        cols = resample_matrix(c0 - ca, cw, out_w, cb - ca).T
        maps = [rows @ a[ra:rb, ca:cb] @ cols for a in (gray, label, fov)]
        if config.row_shift_px > 0:
            maps = _shift_rows(maps, _row_shifts(nat_h, config.row_shift_px, rng))
        img, lab, fv = maps
        fov_nat = fv >= 0.5
        img = _degrade(img, fov_nat, spacing_nat, config, rng)
        if config.square:
            up = resample_matrix(0.0, nat_h, out_w, nat_h)
            img, lab, fv = (up @ a for a in (img, lab, fv))
        src_lab = sample.label[r0 : r0 + size[0], c0 : c0 + size[1]]
        src_fov = sample.fov[r0 : r0 + size[0], c0 : c0 + size[1]]
        out_lab, out_fov = lab >= 0.5, fv >= 0.5
        outputs.append(
            Sample(
                image=np.clip(img, 0.0, 1.0).astype(np.float32)[..., None],
                label=out_lab,
                fov=out_fov,
                name=f"{sample.name}_c{k}",
                path=sample.path,
                spacing=config.spacing,
                split=sample.split,
                fov_source="file",
                meta={
                    "format": "cavri",
                    "variant": config.variant,
                    "source": sample.name,
                    "crop_box_px": [int(r0), int(c0), round(ch, 3), round(cw, 3)],
                    "source_mm_per_px": [round(row_mm, 6), round(col_mm, 6)],
                    "mm_per_px_from": how,
                    "fov_fraction": round(inside, 4),
                    "label_fraction_source": round(float(src_lab[src_fov].mean()), 5)
                    if src_fov.any()
                    else 0.0,
                    "label_fraction": round(float(out_lab[out_fov].mean()), 5)
                    if out_fov.any()
                    else 0.0,
                },
            )
        )
    return outputs
