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
layout that :func:`octvessel.data.load_dataset` reads back.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
    "octify_dataset",
    "octify_sample",
    "preview_dataset",
    "resample_matrix",
    "source_mm_per_px",
    "write_preview",
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


# ----------------------------------------------------------------------------- dataset


@dataclass
class _Plan:
    """Where the outputs go: split folders when the source splits are training/test."""

    folders: bool
    json_splits: dict[str, list[str]] = field(default_factory=dict)


def _sample_seed(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it is an octify output itself."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is a file; expected a folder for the octified dataset", out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise InputError("exists already; pass --overwrite (overwrite=True) to replace it", out)
    try:
        info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
        ours = info.get("generator", {}).get("what") == GENERATOR
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise InputError(
            "is not empty and not an octify output (no dataset.json from octvessel.sim.octify); "
            "--overwrite replaces only octify outputs: choose another folder",
            out,
        )


def octify_dataset(
    path: str | Path,
    out: str | Path,
    config: OctifyConfig | None = None,
    overwrite: bool = False,
    *,
    format: str = "auto",
    split: str | None = None,
    keep_splits: bool = True,
    observer: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Octify every labelled image of a dataset into a CAVRI-C-style dataset at ``out``.

    Layout (``load_dataset(out)`` reads it; ``octvessel train -d OUT`` trains on it)::

        [training/ | test/]images/<name>_c<k>_fundus_P1.bmp   8-bit gray, 385 x 141
        [training/ | test/]manual/<name>_c<k>_fundus_ref.bmp  label {0, 255}
        [training/ | test/]mask/<name>_c<k>_mask.bmp          FOV {0, 255}
        dataset.json       format, spacing, splits, generator (config, source), per-sample facts

    With ``keep_splits`` a source with training/test splits (DRIVE) keeps them as folders,
    other split names go into ``dataset.json``; without, the output is flat. The whole
    folder is written in a temporary sibling and moved into place at the end, so a crash
    leaves no half dataset; an existing non-empty ``out`` is refused unless ``overwrite``
    (and even then only an earlier octify output is replaced).

    Args:
        path: the labelled source dataset (any layout :func:`load_dataset` reads).
        out: the output folder.
        config: :class:`OctifyConfig` (defaults when None).
        overwrite: replace an earlier octify output at ``out``.
        format, split, observer: passed to :func:`octvessel.data.index_dataset`.
        keep_splits: carry the source splits into the output.
        progress: a tqdm bar over the source images (on stderr).

    Returns:
        The ``dataset.json`` content.

    Raises:
        InputError: unreadable source, an image without label (unlabelled STARE images
            are skipped, as ``load_dataset(require_labels=True)`` does), unknown pixel
            size, an existing output without ``overwrite``.
    """
    from tqdm import tqdm

    from octvessel.atomic import write_json
    from octvessel.data.datasets import index_dataset
    from octvessel.data.io import write_image, write_mask

    cfg = config or OctifyConfig()
    src, dst = Path(path), Path(out)
    _check_output(dst, overwrite)
    refs = index_dataset(src, format, split, observer=observer, variant=cfg.variant)
    unlabelled = [r for r in refs if r.label_path is None]
    if unlabelled and refs[0].format == "stare" and len(unlabelled) < len(refs):
        refs = [r for r in refs if r.label_path is not None]  # the full STARE set: 20 of 400
        unlabelled = []
    if unlabelled:
        r = unlabelled[0]
        more = f" ({len(unlabelled) - 1} more)" if len(unlabelled) > 1 else ""
        raise InputError(
            f"octify needs a vessel label for every image; none found (expected "
            f"{r.expected_label}){more}",
            r.image_path,
        )
    splits = {r.split for r in refs}
    plan = _Plan(folders=keep_splits and None not in splits and splits <= {"training", "test"})
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh_dir(dst.parent, f".{dst.name}.octify-")
    except OSError as exc:
        raise InputError(f"cannot write beside the output folder ({exc})", dst) from exc
    records = []
    try:
        for ref in tqdm(refs, desc="octify", unit="image", disable=not progress):
            sample = ref.load()
            rng = np.random.default_rng(_sample_seed(cfg.seed, sample.name))
            for s in octify_sample(sample, cfg, rng):
                base = tmp / s.split if plan.folders and s.split else tmp
                stem = f"{s.name}_fundus"
                pixels = np.rint(s.image[..., 0] * 255).astype(np.uint8)
                write_image(base / "images" / f"{stem}_{cfg.variant}.bmp", pixels)
                write_mask(base / "manual" / f"{stem}_ref.bmp", s.label)
                write_mask(base / "mask" / f"{s.name}_mask.bmp", s.fov)
                if keep_splits and not plan.folders and s.split is not None:
                    plan.json_splits.setdefault(s.split, []).append(s.name)
                records.append({"name": s.name, "split": s.split, **s.meta})
        info: dict[str, Any] = {"format": "cavri", "spacing": list(cfg.spacing)}
        if plan.json_splits:
            info["splits"] = plan.json_splits
        info["generator"] = {
            "what": GENERATOR,
            "note": "simulated OCT-en-face-like images from labelled fundus photographs; "
            "not OCT data",
            "source": str(src),
            "source_format": refs[0].format,
            "source_split": split,
            "config": cfg.to_dict(),
        }
        fractions = [r["label_fraction"] for r in records]
        info["stats"] = {
            "source_images": len(refs),
            "samples": len(records),
            "label_fraction_mean": round(float(np.mean(fractions)), 5),
            "label_fraction_source_mean": round(
                float(np.mean([r["label_fraction_source"] for r in records])), 5
            ),
        }
        info["samples"] = records
        write_json(tmp / "dataset.json", info)
        _move_into_place(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _move_into_place(tmp: Path, dst: Path) -> None:
    """Replace ``dst`` (absent, empty or an earlier octify output) by ``tmp``."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.octify-old-{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        if old is not None:
            os.replace(old, dst)
        raise InputError(f"could not move the finished dataset into place ({exc})", dst) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named folder in ``parent``, with the permissions the process's umask
    gives (``os.mkdir`` applies it; ``tempfile.mkdtemp`` would give 0o700, and reading the
    umask means setting it, which races with other threads)."""
    for _ in range(100):
        path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError("could not create a working folder here", parent)


# ----------------------------------------------------------------------------- preview


def write_preview(
    source: Sample,
    outputs: Sequence[Sample],
    path: str | Path,
    config: OctifyConfig | None = None,
    max_rows: int = 3,
    overwrite: bool = True,
) -> Path:
    """A PNG with one row per crop: source crop | octified image | its label.

    The octified image and label are drawn on their physical extent (mm), so a 7 x 7 mm
    crop looks square whatever the grid (141 x 385 pixels).
    """
    from matplotlib.figure import Figure

    from octvessel.atomic import atomic_path

    cfg = config or OctifyConfig()
    rows = list(outputs)[:max_rows]
    if not rows:
        raise UsageError("write_preview: no octified samples to show")
    gray = _gray(source.image, cfg.channel)
    fig = Figure(figsize=(9.0, 3.0 * len(rows)))
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for ax_row, s in zip(axes, rows, strict=True):
        r0, c0, ch, cw = s.meta["crop_box_px"]
        crop = gray[r0 : r0 + int(round(ch)), c0 : c0 + int(round(cw))]
        extent = (0.0, cfg.crop_mm, cfg.crop_mm, 0.0)
        lo, hi = np.percentile(crop, (1.0, 99.0))
        ax_row[0].imshow(crop, cmap="gray", extent=extent, vmin=lo, vmax=max(hi, lo + 1e-6))
        ax_row[0].set_title(
            f"{source.name}: source crop {crop.shape[1]}x{crop.shape[0]} px", fontsize=8
        )
        h, w = s.shape
        ax_row[1].imshow(
            s.image[..., 0], cmap="gray", extent=extent, vmin=0, vmax=1, aspect="equal"
        )
        ax_row[1].set_title(
            f"octified {w}x{h} px (shown {cfg.crop_mm:g}x{cfg.crop_mm:g} mm)", fontsize=8
        )
        ax_row[2].imshow(s.label, cmap="gray", extent=extent, interpolation="nearest")
        ax_row[2].set_title(f"label, {s.meta['label_fraction']:.1%} vessel", fontsize=8)
        for ax in ax_row:
            ax.set_xlabel("mm", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    p = Path(path)
    with atomic_path(p, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return p


def preview_dataset(
    path: str | Path,
    config: OctifyConfig,
    png: str | Path,
    *,
    format: str = "auto",
    split: str | None = None,
    index: int = 0,
) -> Path:
    """:func:`write_preview` of one source image of a dataset, octified as in the dataset."""
    from octvessel.data.datasets import index_dataset

    refs = index_dataset(path, format, split, variant=config.variant, require_labels=True)
    if not 0 <= index < len(refs):
        raise UsageError(f"index={index}: the dataset has {len(refs)} labelled images")
    sample = refs[index].load()
    rng = np.random.default_rng(_sample_seed(config.seed, sample.name))
    return write_preview(sample, octify_sample(sample, config, rng), png, config)
