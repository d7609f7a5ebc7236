"""Geometry of a synthetic OCT phantom: layer interfaces and vessel maps on the native grid.

- :func:`layer_surfaces`: Bruch's membrane as a tilted bowl, the other interfaces stacked
  above it with thickness maps that depend on the distance to the fovea, the choroid
  below, and axial motion (a random walk over B-scans).
- :func:`vessel_maps`: a vessel tree (:func:`octvessel.sim.vessels.vessel_geometry`) grown
  on an isotropic en-face grid, sampled at each B-scan's position: coverage, the chord
  through each tube (for the shadow) and the diameter.
"""

from __future__ import annotations

import numpy as np

from octvessel.errors import UsageError
from octvessel.oct.phantom_config import PhantomConfig
from octvessel.sim.vessels import VesselTreeConfig, vessel_geometry

__all__ = ["layer_surfaces", "sample_rows", "vessel_maps"]

_EZ_UM = 10.0  # ellipsoid-zone band thickness


def layer_surfaces(
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


def vessel_maps(
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
        "coverage": sample_rows(g.coverage, rows),
        "chord_um": sample_rows(chord_iso, rows),
        "diameter_um": sample_rows(np.where(g.coverage > 0, 2 * g.radius * px_um, 0), rows),
        "centrelines": {**(g.centrelines or {}), "iso_shape": (h_iso, w)},
    }


def sample_rows(image: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``image`` at fractional ``rows`` (clamped at the edges)."""
    rows = np.clip(rows, 0, image.shape[0] - 1)
    i0 = np.floor(rows).astype(np.intp)
    i1 = np.minimum(i0 + 1, image.shape[0] - 1)
    w = (rows - i0)[:, None]
    return (image[i0] * (1 - w) + image[i1] * w).astype(np.float32)
