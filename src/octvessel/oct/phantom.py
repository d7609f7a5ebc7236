"""Synthetic OCT volumes of a macular raster scan with known layers and vessels.

The model, in physical units (mm, micrometres), one B-scan at a time:

- Layers: Bruch's membrane (BM) is a bowl (eye curvature) with a random tilt; the other
  interfaces are stacked above it with thickness maps that depend on the distance to the
  fovea (inner layers thin to zero in the foveal pit, the outer nuclear layer and outer
  segments thicken), and the choroid and sclera below. Thicknesses and relative
  reflectivities follow typical spectral-domain OCT of a healthy macula: bright RNFL, IPL,
  OPL, ellipsoid zone and RPE (the brightest band), dark INL and ONL, a textured choroid.
- Vessels: a branching, tapering tree (:func:`octvessel.sim.vessels.vessel_geometry`,
  Murray's-law widths) grown on an isotropic en-face grid from the optic disc at the nasal
  edge, bending around the foveal avascular zone. Each vessel is a tube in the inner
  retina just under the ILM: bright walls, a speckled lumen, and a shadow below it from
  the light blood absorbs on the way down and back, ``exp(-2 mu L)`` with ``L`` the chord
  through the tube, reaching through the outer retina, RPE and choroid.
- Acquisition: linear reflectivity x multiplicative speckle (gamma, ``speckle_looks``) +
  an exponential noise floor, log-compressed to display intensities in [0, 1] over
  ``dynamic_range_db``; depth roll-off, lateral vignetting, per-B-scan gain changes and
  small axial motion shifts (a random walk over B-scans).

Ground truth: every boundary as a height map (B-scans x A-scans, samples, the
voxel-centre convention of :mod:`octvessel.oct.volume`) and the vessel map on the native
en-face grid (one row per B-scan): a pixel is vessel when its B-scan line passes through a
vessel at that A-scan (coverage >= 0.5 after sampling the isotropic tree at the B-scan's
position).

The numbers are plausible, not fitted to any device; the phantom tests the pipeline and
gives a segmenter something OCT-like, it is not a model of any patient.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig
from octvessel.errors import UsageError
from octvessel.oct.volume import Volume
from octvessel.sim.vessels import VesselTreeConfig, vessel_geometry

__all__ = ["LEVELS", "Phantom", "PhantomConfig", "make_volume", "write_dataset"]

#: Display level (0 = noise-free black, 1 = the dynamic range's top) of each layer, top down.
LEVELS = {
    "vitreous": -1.0,  # no signal: only the noise floor shows
    "RNFL": 0.66,
    "GCL": 0.50,
    "IPL": 0.57,
    "INL": 0.40,
    "OPL": 0.55,
    "ONL": 0.33,
    "IS": 0.46,
    "EZ": 0.77,
    "OS": 0.50,
    "RPE": 0.86,
    "choroid": 0.62,
    "sclera": 0.34,
}
#: Boundaries (top down) and the layer that starts below each.
_STACK = (
    ("ILM", "RNFL"),
    ("RNFL", "GCL"),
    ("GCL", "IPL"),
    ("IPL", "INL"),
    ("INL", "OPL"),
    ("OPL", "ONL"),
    ("ELM", "IS"),
    ("EZ", "EZ"),
    ("_EZ_END", "OS"),
    ("_RPE_TOP", "RPE"),
    ("BM", "choroid"),
    ("CHO", "sclera"),
)
_EZ_UM = 10.0  # ellipsoid-zone band thickness
_RETINA_MM = 0.36  # thickest ILM..BM the layer model makes, with a margin
_MOTION_PX = 10.0  # bound on the axial motion shift (samples)
_WALL_UM = 6.0  # bright vessel wall thickness


@dataclass(frozen=True)
class PhantomConfig(JsonConfig):
    """Size, geometry and acquisition of a phantom (defaults: Avanti 3D Retina 7 x 7 mm).

    Attributes:
        bscans, depth, ascans: volume shape (B-scans, depth, A-scans).
        field_mm: (slow, fast) field of view in mm.
        axial_um: depth sample spacing in micrometres.
        bm_depth_mm: depth of Bruch's membrane under the fovea, mm below the image top;
            None places it at 36 % of the depth range, low enough for the retina to fit.
        curvature: bowl of the eye, mm of rise per mm^2 of squared distance from the fovea.
        tilt: largest slope of the random tilt (mm per mm).
        fovea: (row, col) of the fovea as fractions of the field, or None (near centre).
        laterality: "OD", "OS" or None (random); sets the side the vessels come from.
        speckle_looks: gamma shape of the speckle (1 = fully developed, larger = smoother).
        dynamic_range_db: display range; noise_floor: the noise floor's display level.
        gain_jitter_db: standard deviation of the per-B-scan gain.
        motion_px: standard deviation of the axial motion step between B-scans (samples).
        rolloff_db_per_mm: signal loss with depth; vignetting_db: loss at the field corners.
        root_radius_um, min_radius_um: radius of the trunks and of the thinnest vessels.
        vessel_fraction: en-face area fraction at which the tree stops growing.
        faz_radius_mm: radius of the foveal avascular zone.
        blood_attenuation_per_mm: attenuation coefficient of blood (shadow depth).
        choroid_texture: amplitude (display levels) of the choroid's vessel pattern.
        inner_texture: amplitude of the en-face reflectivity variation of RNFL, GCL, IPL.
    """

    bscans: int = 141
    depth: int = 640
    ascans: int = 385
    field_mm: tuple[float, float] = (7.0, 7.0)
    axial_um: float = 3.1
    bm_depth_mm: float | None = None
    curvature: float = 0.008
    tilt: float = 0.012
    fovea: tuple[float, float] | None = None
    laterality: str | None = None
    speckle_looks: float = 1.5
    dynamic_range_db: float = 45.0
    noise_floor: float = 0.12
    gain_jitter_db: float = 1.2
    motion_px: float = 0.8
    rolloff_db_per_mm: float = 4.0
    vignetting_db: float = 2.0
    root_radius_um: float = 62.0
    min_radius_um: float = 10.0
    vessel_fraction: float = 0.12
    faz_radius_mm: float = 0.25
    blood_attenuation_per_mm: float = 12.0
    choroid_texture: float = 0.16
    inner_texture: float = 0.05

    def __post_init__(self) -> None:
        for name, low in (("bscans", 2), ("depth", 64), ("ascans", 16)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise UsageError(f"{name}={v!r} is not valid; expected an integer >= {low}")
        object.__setattr__(self, "field_mm", tuple(float(v) for v in self.field_mm))
        if self.fovea is not None:
            object.__setattr__(self, "fovea", tuple(float(v) for v in self.fovea))
        positive = (
            "axial_um", "speckle_looks", "dynamic_range_db", "root_radius_um",
            "min_radius_um", "vessel_fraction", "faz_radius_mm",
        )  # fmt: skip
        for name in positive:
            if not float(getattr(self, name)) > 0:
                raise UsageError(f"{name}={getattr(self, name)!r} is not valid; expected > 0")
        if len(self.field_mm) != 2 or min(self.field_mm) <= 0:
            raise UsageError(f"field_mm={self.field_mm!r}: expected (slow, fast) > 0 mm")
        if self.bm_depth_mm is not None and not self.bm_depth_mm > 0:
            raise UsageError(f"bm_depth_mm={self.bm_depth_mm!r} is not valid; expected > 0 or None")
        if self.laterality not in (None, "OD", "OS"):
            raise UsageError(
                f"laterality={self.laterality!r} is not valid; expected one of: OD, OS, None"
            )
        if self.min_radius_um >= self.root_radius_um:
            raise UsageError("expected min_radius_um < root_radius_um")
        if not 0 < self.noise_floor < 0.5:
            raise UsageError(f"noise_floor={self.noise_floor!r}: expected a level in (0, 0.5)")

    @property
    def rise_mm(self) -> float:
        """Largest height change of BM over the field from curvature and tilt (mm)."""
        fy, fx = self.fovea or (0.5, 0.5)
        far = max(
            float(np.hypot((cy - fy) * self.field_mm[0], (cx - fx) * self.field_mm[1]))
            for cy in (0.0, 1.0)
            for cx in (0.0, 1.0)
        )
        far *= 1.0 if self.fovea else 1.15  # the random fovea moves a little
        return self.curvature * far**2 + self.tilt * far

    @property
    def bm_mm(self) -> float:
        """Depth of BM under the fovea (mm): ``bm_depth_mm`` or the automatic choice."""
        if self.bm_depth_mm is not None:
            return float(self.bm_depth_mm)
        depth_mm = self.depth * self.axial_um / 1000.0
        return max(0.36 * depth_mm, _RETINA_MM + self.rise_mm + 12 * self.axial_um / 1000.0)

    def check_fits(self) -> None:
        """Refuse a geometry whose retina cannot fit in the depth range (before any work)."""
        um = self.axial_um
        top = (self.bm_mm - _RETINA_MM - self.rise_mm) * 1000.0 / um - _MOTION_PX
        bottom = (self.bm_mm + self.rise_mm) * 1000.0 / um + _MOTION_PX
        if top < 0 or bottom > self.depth:
            need = int(np.ceil((_RETINA_MM + 2 * self.rise_mm) * 1000.0 / um + 2 * _MOTION_PX))
            raise UsageError(
                f"the retina does not fit in {self.depth} samples of {um:g} um with a "
                f"{self.field_mm[0]:g} x {self.field_mm[1]:g} mm field: it needs about {need} "
                "samples; raise the depth or axial_um, or narrow the field"
            )

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(slow, axial, fast) spacing in mm."""
        return (
            self.field_mm[0] / self.bscans,
            self.axial_um / 1000.0,
            self.field_mm[1] / self.ascans,
        )


@dataclass(eq=False)
class Phantom:
    """A phantom volume and its ground truth.

    Attributes:
        volume: the volume (float32 (B-scans, depth, A-scans) in [0, 1]); no boundaries, as
            from a device export without segmentation.
        boundaries: true height maps, name -> float32 (B-scans, A-scans) in samples:
            ILM, RNFL, GCL, IPL, INL, OPL, ELM, EZ, RPE (centre of the RPE band), BM, and CHO when the
            choroid ends inside the image.
        vessels: bool (B-scans, A-scans) en-face vessel ground truth (native grid).
        coverage: float32 (B-scans, A-scans), vessel coverage in [0, 1] before thresholding.
        diameter_um: float32 (B-scans, A-scans), vessel diameter (0 off vessels).
        fovea: (row, col) of the fovea on the native grid (pixels).
        config, seed: what made it.
        centrelines: the vessel tree's true centre lines on the isotropic grid it grew on
            (:func:`octvessel.sim.vessels.vessel_centrelines`, plus ``iso_shape``);
            :func:`octvessel.morphometry.phantom_truth` turns them into true morphometry.
    """

    volume: Volume
    boundaries: dict[str, np.ndarray]
    vessels: np.ndarray
    coverage: np.ndarray
    diameter_um: np.ndarray
    fovea: tuple[float, float]
    config: PhantomConfig
    seed: int
    centrelines: dict | None = None

    def with_truth(self) -> Volume:
        """The volume carrying the true boundaries (as a file with segmentation would)."""
        return self.volume.with_boundaries(self.boundaries)


def make_volume(config: PhantomConfig | None = None, seed: int = 0, **overrides: Any) -> Phantom:
    """Make one deterministic phantom (same config and seed -> identical arrays).

    Args:
        config: size and model parameters (default: 141 x 640 x 385, 7 x 7 mm).
        seed: random seed.
        **overrides: fields of :class:`PhantomConfig` to change, e.g. ``bscans=16``.

    Raises:
        UsageError: bad parameters, or a retina that does not fit in the depth range.
    """
    cfg = config or PhantomConfig()
    if overrides:
        cfg = PhantomConfig.from_dict({**cfg.to_dict(), **overrides})
    cfg.check_fits()
    rng = np.random.default_rng(seed)
    nb, nd, na = cfg.bscans, cfg.depth, cfg.ascans
    slow_mm, axial_mm, fast_mm = cfg.spacing
    laterality = cfg.laterality or ("OD" if rng.random() < 0.5 else "OS")
    fov = cfg.fovea or (0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03))

    # en-face coordinates (mm) of every (B-scan, A-scan), relative to the fovea
    y = (np.arange(nb) + 0.5) * slow_mm - fov[0] * cfg.field_mm[0]
    x = (np.arange(na) + 0.5) * fast_mm - fov[1] * cfg.field_mm[1]
    yy, xx = np.meshgrid(y, x, indexing="ij")
    nasal = xx if laterality == "OD" else -xx  # OD: disc to the right of the fovea
    surfaces = _surfaces(cfg, rng, yy, xx, nasal)

    geometry = _vessels(cfg, rng, seed, fov, laterality)
    top = surfaces["ILM"] + (5.0 / cfg.axial_um)
    data = np.empty((nb, nd, na), np.float32)
    gain_db = rng.normal(0, cfg.gain_jitter_db, nb)
    vignette_db = -cfg.vignetting_db * (xx**2 + yy**2) / (0.25 * sum(f**2 for f in cfg.field_mm))
    texture = cfg.choroid_texture * _choroid_texture(rng, nb, na)
    inner = ndimage.gaussian_filter(rng.normal(0, 1, (nb, na)), (1.5, 4.0), mode="reflect")
    inner = (cfg.inner_texture * inner / (np.abs(inner).max() + 1e-9)).astype(np.float32)
    z = np.arange(nd, dtype=np.float32)[:, None]
    rolloff_db = (-cfg.rolloff_db_per_mm * axial_mm * z).astype(np.float32)
    surf32 = {k: v.astype(np.float32) for k, v in surfaces.items()}
    top = top.astype(np.float32)
    for b in range(nb):
        extra_db = (rolloff_db + (vignette_db[b] + gain_db[b]).astype(np.float32)).astype(
            np.float32
        )
        data[b] = _bscan(
            cfg, rng, z, {k: v[b] for k, v in surf32.items()}, top[b],
            geometry["chord_um"][b], texture[b], inner[b], extra_db,
        )  # fmt: skip
    truth = {k: v.astype(np.float32) for k, v in surfaces.items() if not k.startswith("_")}
    if truth["CHO"].max() >= nd:
        del truth["CHO"]
    volume = Volume(
        data=data,
        spacing=cfg.spacing,
        laterality=laterality,
        meta={"format": "phantom", "spacing_source": "file", "seed": seed},
    )
    fovea_px = (fov[0] * nb - 0.5, fov[1] * na - 0.5)
    return Phantom(
        volume=volume,
        boundaries=truth,
        vessels=geometry["coverage"] >= 0.5,
        coverage=geometry["coverage"].astype(np.float32),
        diameter_um=geometry["diameter_um"].astype(np.float32),
        fovea=fovea_px,
        config=cfg,
        seed=seed,
        centrelines=geometry["centrelines"],
    )


# ------------------------------------------------------------------------------ layers


def _surfaces(
    cfg: PhantomConfig,
    rng: np.random.Generator,
    yy: np.ndarray,
    xx: np.ndarray,
    nasal: np.ndarray,
) -> dict[str, np.ndarray]:
    """Depth (samples) of every interface, (B-scans, A-scans), with motion included."""
    r = np.hypot(yy, xx)
    pit = np.exp(-((r / 0.42) ** 2))  # 1 at the foveola, 0 outside the pit
    slope = np.exp(-((r / 0.9) ** 2))
    toward_disc = np.clip(nasal / 3.0, -0.3, 1.0)
    thick = {  # micrometres, top down
        "RNFL": (14 + 22 * np.clip(toward_disc, 0, None) + 6 * np.clip(r - 1.0, 0, 2)) * (1 - pit),
        "GCL": (12 + 38 * np.exp(-(((r - 1.1) / 0.9) ** 2))) * (1 - pit),
        "IPL": (24 + 12 * np.exp(-(((r - 1.1) / 1.2) ** 2))) * (1 - pit),
        "INL": (26 + 10 * np.exp(-(((r - 1.1) / 1.2) ** 2))) * (1 - 0.95 * pit),
        "OPL": (24 + 6 * slope) * (1 - 0.75 * pit),
        "ONL": 58 + 45 * pit + 15 * slope,
        "IS": 22 + 6 * pit,
        "OS": 30 + 12 * pit,
        "RPE": 18 + 0 * r,
        "choroid": 270 - 25 * r + 30 * rng.normal(0, 0.3),
    }
    t = rng.uniform(0, 2 * np.pi)
    bowl = -cfg.curvature * r**2 + cfg.tilt * rng.uniform(0.3, 1.0) * (
        np.cos(t) * xx + np.sin(t) * yy
    )
    bm = (cfg.bm_mm + bowl) * 1000.0  # micrometres below the image top
    s: dict[str, np.ndarray] = {"BM": bm}
    s["_RPE_TOP"] = bm - thick["RPE"]
    s["RPE"] = bm - 0.5 * thick["RPE"]  # truth: the band's centre, as in the real labels
    s["_EZ_END"] = s["_RPE_TOP"] - (thick["OS"] - _EZ_UM)
    s["EZ"] = s["_RPE_TOP"] - thick["OS"]
    s["ELM"] = s["EZ"] - thick["IS"]
    s["OPL"] = s["ELM"] - thick["ONL"]
    s["INL"] = s["OPL"] - thick["OPL"]
    s["IPL"] = s["INL"] - thick["INL"]
    s["GCL"] = s["IPL"] - thick["IPL"]
    s["RNFL"] = s["GCL"] - thick["GCL"]
    s["ILM"] = s["RNFL"] - thick["RNFL"]
    s["CHO"] = bm + thick["choroid"]
    # axial motion: a random walk over B-scans, pulled back towards zero
    steps = rng.normal(0, cfg.motion_px, yy.shape[0])
    shift = np.zeros(yy.shape[0])
    for i in range(1, len(shift)):
        shift[i] = 0.9 * shift[i - 1] + steps[i]
    out = {k: v / cfg.axial_um + shift[:, None] for k, v in s.items()}
    if out["ILM"].min() < 0 or out["BM"].max() > cfg.depth:
        raise UsageError(
            f"the retina does not fit in {cfg.depth} samples: ILM at {out['ILM'].min():.0f}, "
            f"BM at {out['BM'].max():.0f}; raise the depth or axial_um, or narrow the field"
        )
    return out


def _choroid_texture(rng: np.random.Generator, nb: int, na: int) -> np.ndarray:
    """Smooth random field (B-scans, 64 flattened depth rows, A-scans) in about [-1, 1]."""
    small = rng.normal(0, 1, (max(nb // 3, 2), 16, max(na // 6, 2))).astype(np.float32)
    small = ndimage.gaussian_filter(small, (0.8, 1.0, 0.8), mode="wrap")
    small /= np.abs(small).max() + 1e-6
    zoom = (nb / small.shape[0], 64 / small.shape[1], na / small.shape[2])
    return ndimage.zoom(small, zoom, order=1, grid_mode=True, mode="grid-wrap")[:nb, :64, :na]


def _bscan(
    cfg: PhantomConfig,
    rng: np.random.Generator,
    z: np.ndarray,
    surf: dict[str, np.ndarray],
    vessel_top: np.ndarray,
    chord_um: np.ndarray,
    texture: np.ndarray,
    inner: np.ndarray,
    extra_db: np.ndarray,
) -> np.ndarray:
    """One B-scan (depth, A-scans) of display intensities in [0, 1] (float32 throughout)."""
    f32 = np.float32
    level = np.full((z.shape[0], chord_um.shape[0]), LEVELS["vitreous"], f32)
    previous = LEVELS["vitreous"]
    for name, layer in _STACK:
        below = LEVELS[layer]
        step = z - (surf[name] - f32(0.5))
        np.clip(step, 0.0, 1.0, out=step)
        level += f32(below - previous) * step
        previous = below
    # thin bright external limiting membrane; reflectivity varying across the inner retina
    level += f32(0.12) * np.exp(-(((z - surf["ELM"]) * f32(cfg.axial_um / 3.0)) ** 2))
    level += ((z >= surf["ILM"]) & (z < surf["IPL"])) * inner
    # choroid: darker with depth, vessel-like texture in coordinates that follow BM;
    # sclera: fading towards the noise floor
    thick = np.maximum(surf["CHO"] - surf["BM"], f32(1.0))
    rel = np.clip((z - surf["BM"]) / thick, 0.0, 1.0)
    rows = np.minimum((rel * 63).astype(np.intp), 63)
    tex = np.take_along_axis(texture, rows, axis=0)
    inside = (z >= surf["BM"]) & (z < surf["CHO"])
    level += inside * (f32(-0.16) * rel + tex)
    level -= f32(0.4) * np.clip((z - surf["CHO"]) / (f32(0.6) * thick), 0.0, 1.0)
    # vessels (only the A-scans they cross): lumen, bright walls, attenuation below
    px = cfg.axial_um
    cols = np.flatnonzero(chord_um > 0)
    atten = None
    if cols.size:
        chord = chord_um[cols] / f32(px)
        d = z - vessel_top[cols]
        in_vessel = (d >= 0) & (d < chord)
        w = f32(px / _WALL_UM)
        wall = np.exp(-((d * w) ** 2)) + np.exp(-(((d - chord) * w) ** 2))
        level[:, cols] = np.where(in_vessel, f32(0.60) + f32(0.22) * wall, level[:, cols])
        path_mm = np.clip(d, 0.0, chord) * f32(px / 1000.0)
        atten = np.exp(f32(-2.0 * cfg.blood_attenuation_per_mm) * path_mm)
    # linear reflectivity, acquisition effects, speckle, noise floor, log display
    dr = cfg.dynamic_range_db
    ln10 = f32(np.log(10.0) / 10.0)
    lin = np.exp((level - f32(1.0)) * f32(dr) * ln10 + extra_db * ln10)
    lin[level <= 0] = 0.0
    if atten is not None:
        lin[:, cols] *= atten
    k = cfg.speckle_looks
    lin *= rng.standard_gamma(k, lin.shape, dtype=f32)
    lin *= f32(1.0 / k)
    floor = f32(10.0 ** ((cfg.noise_floor - 1.0) * dr / 10.0))
    lin += floor * rng.standard_exponential(lin.shape, dtype=f32)
    out = np.log10(np.maximum(lin, floor * f32(1e-6)))
    out *= f32(10.0 / dr)
    out += f32(1.0)
    return np.clip(out, 0.0, 1.0, out=out)


# ----------------------------------------------------------------------------- vessels


def _vessels(
    cfg: PhantomConfig,
    rng: np.random.Generator,
    seed: int,
    fovea: tuple[float, float],
    laterality: str,
) -> dict[str, np.ndarray]:
    """Vessel coverage, chord length and diameter on the native (B-scans, A-scans) grid."""
    slow_mm, _, fast_mm = cfg.spacing
    h_iso = max(8, round(cfg.field_mm[0] / fast_mm))
    w = cfg.ascans
    px_um = fast_mm * 1000.0
    disc_col = 0.995 if laterality == "OD" else 0.005
    tree = VesselTreeConfig(
        height=h_iso,
        width=w,
        trunks=int(rng.integers(4, 7)),
        root_radius=cfg.root_radius_um / px_um,
        min_radius=cfg.min_radius_um / px_um,
        disc=(float(np.clip(fovea[0] - 0.05 + rng.normal(0, 0.04), 0.1, 0.9)), disc_col),
        max_fraction=cfg.vessel_fraction,
        avoid=(fovea[0], fovea[1], cfg.faz_radius_mm * 1000.0 / px_um / min(h_iso, w)),
    )
    g = vessel_geometry(tree, seed=int(rng.integers(0, 2**31 - 1)))
    on = g.radius > 0
    half = np.sqrt(
        np.clip(g.radius**2 - g.distance**2, 0.0, None), where=on, out=np.zeros_like(g.radius)
    )
    chord_iso = 2.0 * half * px_um
    # B-scan i samples the isotropic grid at row (i + 0.5) * h_iso / B - 0.5
    rows = (np.arange(cfg.bscans) + 0.5) * h_iso / cfg.bscans - 0.5
    return {
        "coverage": _sample_rows(g.coverage, rows),
        "chord_um": _sample_rows(chord_iso, rows),
        "diameter_um": _sample_rows(np.where(g.coverage > 0, 2 * g.radius * px_um, 0), rows),
        "centrelines": {**(g.centrelines or {}), "iso_shape": (h_iso, w)},
    }


def _sample_rows(image: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``image`` at fractional ``rows`` (clamped at the edges)."""
    rows = np.clip(rows, 0, image.shape[0] - 1)
    i0 = np.floor(rows).astype(np.intp)
    i1 = np.minimum(i0 + 1, image.shape[0] - 1)
    w = (rows - i0)[:, None]
    return (image[i0] * (1 - w) + image[i1] * w).astype(np.float32)


# ----------------------------------------------------------------------------- dataset


def write_dataset(
    out: str | Path,
    n: int = 4,
    seed: int = 0,
    config: PhantomConfig | None = None,
    *,
    prefix: str = "phantom",
    volumes: bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Write ``n`` phantoms as a CAVRI-C-style labelled dataset (and their volumes).

    Layout (``load_dataset(out, variant="P1"|"P2"|"P3")`` reads it)::

        images/<name>_fundus_P1.bmp, _P2.bmp, _P3.bmp   8-bit en-face, native grid
        manual/<name>_fundus_ref.bmp                     vessel ground truth {0, 255}
        mask/<name>_mask.bmp                             field of view (all of it)
        volumes/<name>.npz                               uint8 volume, spacing, true
                                                         boundaries, vessels (optional)
        dataset.json                                     format, spacing, generator, stats

    The en-face images are made as ``octvessel reconstruct --boundaries detect`` makes them
    from a volume without segmentation (the detected, not the true, boundaries), so they
    carry the detector's errors as real reconstructions would; dataset.json records those
    errors and the vessel contrast of each variant.

    Raises:
        UsageError: bad ``n`` or ``prefix``.
        InputError: an output exists and ``overwrite`` is False (checked before any work).
    """
    from octvessel.atomic import check_writable, write_json
    from octvessel.oct.files import write_dataset_sample

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n={n!r} is not valid; expected a positive integer")
    if not prefix or not prefix.replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"prefix={prefix!r}: expected letters, digits, '_' or '-'")
    cfg = config or PhantomConfig()
    cfg.check_fits()
    root = Path(out)
    width = max(3, len(str(n - 1)))
    names = [f"{prefix}_{i:0{width}d}" for i in range(n)]
    targets = [root / "dataset.json"]
    for name in names:
        targets += [root / "images" / f"{name}_fundus_{v}.bmp" for v in ("P1", "P2", "P3")]
        targets += [root / "manual" / f"{name}_fundus_ref.bmp", root / "mask" / f"{name}_mask.bmp"]
        if volumes:
            targets.append(root / "volumes" / f"{name}.npz")
    for t in targets:
        check_writable(t, overwrite)
    samples = []
    for i, name in enumerate(names):
        if progress:
            progress(i, n, name)
        sample_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        ph = make_volume(cfg, seed=sample_seed)
        samples.append(write_dataset_sample(root, name, ph, volumes=volumes, overwrite=overwrite))
    slow, _, fast = cfg.spacing
    info = {
        "format": "cavri",
        "spacing": [slow, fast],
        "generator": {
            "what": "octvessel.oct.phantom",
            "seed": seed,
            "n": n,
            "config": json.loads(json.dumps(cfg.to_dict())),
        },
        "samples": samples,
    }
    write_json(root / "dataset.json", info, overwrite)
    if progress:
        progress(n, n, "done")
    return info
