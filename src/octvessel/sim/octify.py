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
4. OCT-like degradations (each off at strength 0): small per-B-scan horizontal shifts
   (eye motion; applied to label and FOV too), Gaussian blur (physical sigma), vignetting,
   per-B-scan brightness stripes, multiplicative speckle, additive noise; then a
   percentile stretch to [0, 1] inside the FOV.
5. Optionally (``square``) the 385 x 385 resample the OCT paper's authors also used:
   rows linearly interpolated 141 -> 385 for the image and the label/FOV fractions.

Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the
output; :func:`octify_dataset` seeds each source image from (seed, image name), so a
subset (one split) gets the same crops as the whole dataset. It writes the CAVRI-C-style
layout that :func:`octvessel.data.load_dataset` reads back
(:mod:`octvessel.sim.octify_dataset`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig, check_bool, check_int
from octvessel.data.io import LUMA_WEIGHTS
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError, check_choice

__all__ = [
    "CHANNELS",
    "FIELD_DEG",
    "OctifyConfig",
    "crop_positions",
    "octify_sample",
    "resample_matrix",
    "source_mm_per_px",
]

CHANNELS = ("luminance", "green")
#: Camera field angle (full FOV diameter, degrees) per dataset layout; sources:
#: DRIVE  -- Canon CR5 non-mydriatic 3CCD, 45 deg (Staal et al., IEEE TMI 23(4) 2004);
#: STARE  -- TopCon TRV-50, 35 deg (Hoover et al., IEEE TMI 19(3) 2000);
#: CHASE_DB1 -- Nidek NM-200-D, 30 deg (Owen et al., IOVS 50(5) 2009; Fraz et al. 2012);
#: HRF    -- Canon CR-1, 45 deg (Budai et al., Int. J. Biomed. Imaging 2013).
FIELD_DEG = {"drive": 45.0, "stare": 35.0, "chase": 30.0, "hrf": 45.0}
#: Retina per degree of field angle for an emmetropic eye (~17 mm from the nodal point to
#: the retina: 17 mm x pi / 180 = 0.297; 0.29 is the usual rounded figure, Drasdo & Fowler,
#: Br. J. Ophthalmol. 58, 1974). Axial length changes it by roughly +-8 % in practice.
MM_PER_DEGREE = 0.29
GENERATOR = "octvessel.sim.octify"
_LUMA = np.array(LUMA_WEIGHTS)


def _number(name: str, value: Any, lo: float, hi: float = math.inf, *, lo_open: bool = False):
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > lo if lo_open else value >= lo)
        and value <= hi
    )
    if not ok:
        bound = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else "")
        raise UsageError(f"{name}={value!r}: expected a number {bound}")


@dataclass(frozen=True)
class OctifyConfig(JsonConfig):
    """How fundus photographs become OCT-en-face-like samples (all lengths in mm or pixels).

    Attributes:
        channel: ``green`` (the fundus channel with the best vessel contrast, closest to the
            strong vessel shadows of OCT en-face images) or ``luminance`` (BT.601); a gray
            source is used as it is.
        crop_mm: side of the square patch of retina each output shows (7.0: Avanti 3D Retina).
        mm_per_px: source pixel size; None: the dataset's spacing, else ``field_deg`` /
            the ``FIELD_DEG`` table over the measured FOV diameter.
        field_deg: camera field angle used instead of the ``FIELD_DEG`` table (any format).
        mm_per_degree: retina per degree of field angle (0.29).
        width, height: output grid, A-scans x B-scans (385 x 141).
        square: resample the output to ``width`` x ``width`` (385 x 385), as the authors did.
        crops: crops per image; 0 = a half-overlapping grid over the FOV.
        min_fov_fraction: least fraction of a crop that must lie inside the FOV.
        row_shift_px: std of the per-B-scan horizontal shift (output pixels; eye motion).
        blur_mm: sigma of the Gaussian optical blur, in mm of retina.
        vignetting: relative brightness lost in the crop's corners.
        stripes: std of the per-B-scan log-gain (brightness stripes).
        speckle: coefficient of variation of the multiplicative gamma speckle.
        noise: std of the additive Gaussian noise after the [0, 1] stretch.
        variant: the CAVRI-C variant name the images are written under (P1, P2 or P3).
        seed: random seed of :func:`octify_dataset`.
    """

    channel: str = "green"
    crop_mm: float = 7.0
    mm_per_px: float | None = None
    field_deg: float | None = None
    mm_per_degree: float = MM_PER_DEGREE
    width: int = 385
    height: int = 141
    square: bool = False
    crops: int = 0
    min_fov_fraction: float = 0.9
    row_shift_px: float = 0.7
    blur_mm: float = 0.01
    vignetting: float = 0.2
    stripes: float = 0.05
    speckle: float = 0.08
    noise: float = 0.01
    variant: str = "P1"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("channel", self.channel, CHANNELS)
        _number("crop_mm", self.crop_mm, 0.0, lo_open=True)
        if self.mm_per_px is not None:
            _number("mm_per_px", self.mm_per_px, 0.0, lo_open=True)
        if self.field_deg is not None:
            _number("field_deg", self.field_deg, 0.0, 180.0, lo_open=True)
        _number("mm_per_degree", self.mm_per_degree, 0.0, lo_open=True)
        for name in ("width", "height", "crops", "seed"):
            check_int(name, getattr(self, name), minimum=0 if name in ("crops", "seed") else 8)
        check_bool("square", self.square)
        _number("min_fov_fraction", self.min_fov_fraction, 0.0, 1.0, lo_open=True)
        for name in ("row_shift_px", "blur_mm", "stripes", "noise"):
            _number(name, getattr(self, name), 0.0)
        _number("vignetting", self.vignetting, 0.0, 1.0 - 1e-6)
        _number("speckle", self.speckle, 0.0, 2.0)
        check_choice("variant", self.variant, ("P1", "P2", "P3"))

    @property
    def out_shape(self) -> tuple[int, int]:
        """(rows, columns) of every output sample."""
        return (self.width if self.square else self.height), self.width

    @property
    def spacing(self) -> tuple[float, float]:
        """(row, col) mm per output pixel."""
        rows, cols = self.out_shape
        return self.crop_mm / rows, self.crop_mm / cols

    def without_degradations(self) -> OctifyConfig:
        """The same geometry with every degradation at strength 0."""
        return replace(
            self, row_shift_px=0.0, blur_mm=0.0, vignetting=0.0, stripes=0.0, speckle=0.0, noise=0.0
        )


# ---------------------------------------------------------------------------- geometry


def resample_matrix(start: float, length: float, n_out: int, n_in: int) -> np.ndarray:
    """Weights (n_out x n_in, float64, rows summing to 1) resampling a 1-D signal.

    Output pixel ``i`` covers the source interval ``[start + i s, start + (i + 1) s)`` with
    ``s = length / n_out`` (source pixel ``j`` covers ``[j, j + 1)``). Where ``s >= 1`` the
    weight is the exact overlap (area averaging); where ``s < 1`` it is linear
    interpolation at the interval's centre, clamped at the edges.
    """
    if n_out < 1 or n_in < 1 or length <= 0:
        raise UsageError(f"resample_matrix: bad sizes n_out={n_out}, n_in={n_in}, length={length}")
    step = length / n_out
    out = np.zeros((n_out, n_in))
    i = np.arange(n_out)
    if step >= 1.0:
        lo = start + i * step
        hi = lo + step
        j = np.arange(n_in)
        out = np.clip(
            np.minimum(hi[:, None], j[None, :] + 1.0) - np.maximum(lo[:, None], j[None, :]), 0, None
        )
    else:
        centre = start + (i + 0.5) * step - 0.5  # in source pixel-centre coordinates
        centre = np.clip(centre, 0.0, n_in - 1.0)
        j0 = np.floor(centre).astype(int)
        j1 = np.minimum(j0 + 1, n_in - 1)
        frac = centre - j0
        np.add.at(out, (i, j0), 1.0 - frac)
        np.add.at(out, (i, j1), frac)
    total = out.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise UsageError(f"resample_matrix: interval [{start}, {start + length}) leaves the signal")
    return out / total


def _window(start: float, length: float, n: int) -> tuple[int, int]:
    """Source indices [a, b) that a resampling of [start, start + length) can touch."""
    return max(0, math.floor(start) - 1), min(n, math.ceil(start + length) + 1)


def _fov_width_px(fov: np.ndarray) -> int:
    """Diameter of the FOV in pixels: its widest row (top/bottom clipping does not matter)."""
    return int(fov.sum(axis=1).max()) if fov.any() else 0


def source_mm_per_px(sample: Sample, config: OctifyConfig) -> tuple[float, float, str]:
    """(row_mm, col_mm, how) for a source image; ``how`` says where the number came from.

    Raises:
        InputError: the pixel size is unknown (no ``mm_per_px``, no spacing, a format with
            no field angle and no ``field_deg``) or the FOV is empty.
    """
    if config.mm_per_px is not None:
        return config.mm_per_px, config.mm_per_px, "mm_per_px option"
    if config.field_deg is None and sample.spacing is not None:
        return float(sample.spacing[0]), float(sample.spacing[1]), "dataset spacing"
    fmt = sample.meta.get("format")
    deg = config.field_deg if config.field_deg is not None else FIELD_DEG.get(fmt)
    if deg is None:
        raise InputError(
            f"pixel size unknown for a {fmt or 'generic'} image: pass mm_per_px (--mm-per-px) or "
            f'the camera\'s field angle (--field-deg), or put "spacing" in dataset.json; known '
            f"field angles: {', '.join(f'{k} {v:g} deg' for k, v in FIELD_DEG.items())}",
            sample.path,
        )
    width = _fov_width_px(sample.fov)
    if width < 8:
        raise InputError(
            f"field of view is {width} px wide; cannot derive the pixel size", sample.path
        )
    mm = deg * config.mm_per_degree / width
    return mm, mm, f"{deg:g} deg x {config.mm_per_degree:g} mm/deg over a {width} px FOV"


def crop_positions(
    fov: np.ndarray,
    size: tuple[int, int],
    config: OctifyConfig,
    rng: np.random.Generator,
    where: Path | str | None = None,
) -> list[tuple[int, int, float]]:
    """Top-left corners (row, col) of the crops, each with its fraction inside the FOV.

    ``size`` is the crop in whole source pixels (rows, cols). ``config.crops == 0``: a
    grid over the FOV's bounding box, steps of half a crop; otherwise ``crops`` positions
    drawn uniformly (without replacement while possible) from every admissible corner.
    Only corners whose crop lies at least ``min_fov_fraction`` inside the FOV are kept.

    Raises:
        InputError: the crop is larger than the image, or no crop is inside the FOV enough.
    """
    h, w = fov.shape
    ch, cw = size
    if ch > h or cw > w:
        raise InputError(
            f"a {config.crop_mm:g} mm crop is {cw}x{ch} px (WxH) at this pixel size, larger than "
            f"the {w}x{h} image; lower crop_mm or check mm_per_px",
            where,
        )
    sat = np.zeros((h + 1, w + 1))
    sat[1:, 1:] = fov.astype(np.float64).cumsum(0).cumsum(1)
    inside = (sat[ch:, cw:] - sat[:-ch, cw:] - sat[ch:, :-cw] + sat[:-ch, :-cw]) / (ch * cw)
    ok = inside >= config.min_fov_fraction - 1e-12  # (h - ch + 1) x (w - cw + 1)
    if not ok.any():
        raise InputError(
            f"no {config.crop_mm:g} mm crop ({cw}x{ch} px) lies {config.min_fov_fraction:.0%} "
            f"inside the field of view (best {inside.max():.0%}); lower min_fov_fraction or crop_mm",
            where,
        )
    if config.crops == 0:
        rows = np.flatnonzero(fov.any(axis=1))
        cols = np.flatnonzero(fov.any(axis=0))
        grid = [
            _grid_1d(int(a[0]), int(a[-1]) + 1, c, n - c + 1)
            for a, c, n in ((rows, ch, h), (cols, cw, w))
        ]
        corners = [(r, c) for r in grid[0] for c in grid[1] if ok[r, c]]
        if not corners:  # the grid missed the admissible zone: take its best corner
            r, c = np.unravel_index(int(np.argmax(inside)), inside.shape)
            corners = [(int(r), int(c))]
    else:
        flat = np.flatnonzero(ok)
        pick = rng.choice(flat.size, size=config.crops, replace=config.crops > flat.size)
        corners = [tuple(int(v) for v in np.unravel_index(flat[k], ok.shape)) for k in pick]
    return [(r, c, float(inside[r, c])) for r, c in corners]


def _grid_1d(lo: int, hi: int, size: int, n_pos: int) -> list[int]:
    """Corners from ``lo`` to ``hi - size`` in steps of at most half a crop (clamped)."""
    last = hi - size
    if last <= lo:
        centre = (lo + hi - size) // 2
        return [min(max(centre, 0), n_pos - 1)]
    n = math.ceil((last - lo) / (size / 2)) + 1
    return sorted({min(max(int(round(v)), 0), n_pos - 1) for v in np.linspace(lo, last, n)})


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


def _degrade(
    image: np.ndarray,
    fov: np.ndarray,
    spacing: tuple[float, float],
    config: OctifyConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blur, vignetting, stripes, speckle on an H x W float image; stretched to [0, 1]."""
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
    if config.stripes > 0:
        out = out * np.exp(config.stripes * rng.standard_normal(h))[:, None]
    if config.speckle > 0:
        k = 1.0 / config.speckle**2
        out = out * rng.gamma(k, 1.0 / k, size=out.shape)
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
        (ra, rb), (ca, cb) = _window(r0, ch, h), _window(c0, cw, w)
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
