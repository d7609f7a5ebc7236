"""Rendering of a synthetic OCT B-scan: layer reflectivities, vessels, speckle, noise.

Linear reflectivity x multiplicative speckle (gamma, ``speckle_looks``) + an exponential
noise floor, log-compressed to display intensities in [0, 1] over ``dynamic_range_db``;
vessels are tubes with bright walls, a speckled lumen and a shadow below them,
``exp(-2 mu L)`` with ``L`` the chord through the tube. float32 throughout.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from octvessel.oct.phantom_config import PhantomConfig

__all__ = ["LEVELS", "choroid_texture", "render_bscan"]

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
_WALL_UM = 6.0  # bright vessel wall thickness


def choroid_texture(rng: np.random.Generator, nb: int, na: int) -> np.ndarray:
    """Smooth random field (B-scans, 64 flattened depth rows, A-scans) in about [-1, 1]."""
    small = rng.normal(0, 1, (max(nb // 3, 2), 16, max(na // 6, 2))).astype(np.float32)
    small = ndimage.gaussian_filter(small, (0.8, 1.0, 0.8), mode="wrap")
    small /= np.abs(small).max() + 1e-6
    zoom = (nb / small.shape[0], 64 / small.shape[1], na / small.shape[2])
    return ndimage.zoom(small, zoom, order=1, grid_mode=True, mode="grid-wrap")[:nb, :64, :na]


def render_bscan(
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
