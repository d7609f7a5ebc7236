"""Where ``measure``'s branch points lie relative to the phantom's true ones.

For each scored true branch point (zones left out, as in ``benchmarks/branch_points.py``)
the nearest detection outside the zones is found, and its offset is split into the
component along the parent vessel's direction at the event (positive: downstream, target
pixels) and across it. Prints, per grid and event kind (split: the parent ends there;
side branch: it goes on), the percentiles of the along offset, the spread across, and
each point whose nearest detection is 3-10 px away (seed, kind, along, across, position).

    python benchmarks/branch_offsets.py [--seeds 0-39]
"""

from __future__ import annotations

import argparse

import numpy as np

from octvessel.morphometry.measure import measure
from octvessel.morphometry.phantom_check import GRIDS
from octvessel.oct.phantom import make_volume
from octvessel.sim.branch_score import in_zones
from octvessel.sim.morphometry_truth import isotropic_mask, phantom_truth

WELL_SAMPLED = {"min_radius_um": 30.0, "vessel_fraction": 0.08}
KINDS = {1: "split", 2: "side branch"}


def parent_directions(centrelines: dict, shape: tuple[int, int]) -> tuple[np.ndarray, list]:
    """(e, 2) events in target pixels, and per event (kind, unit parent direction in
    target pixels, or None for the disc)."""
    iso = np.asarray(centrelines["iso_shape"], float)
    scale = np.asarray(shape, float) / iso
    ev = np.asarray([e[:2] for e in centrelines["events"]], float).reshape(-1, 2)
    info = []
    for r, c, kind in centrelines["events"]:
        u = None
        for _, pts in centrelines["paths"]:
            hit = np.flatnonzero((pts[:, 0] == r) & (pts[:, 1] == c)) if len(pts) else []
            if len(hit):
                i = int(hit[0])
                end = min(i + 3, len(pts) - 1) if kind == 2 else i
                v = (pts[end, :2] - pts[max(i - 3, 0), :2]) * scale
                u = v / (np.linalg.norm(v) + 1e-12)
                break
        info.append((kind, u))
    return (ev + 0.5) * scale - 0.5, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-39", help="inclusive range, e.g. 0-39")
    lo, _, hi = ap.parse_args().seeds.partition("-")
    rows = []
    for seed in range(int(lo), int(hi or lo) + 1):
        ph = make_volume(seed=seed, depth=400, **WELL_SAMPLED)
        cfg = ph.config
        for grid in GRIDS:
            if grid == "native":
                mask, sp = ph.vessels, (cfg.spacing[0], cfg.spacing[2])
            else:
                mask = isotropic_mask(ph.centrelines)
                sp = (cfg.field_mm[0] / mask.shape[0], cfg.spacing[2])
            truth = phantom_truth(ph.centrelines, mask.shape, cfg.field_mm)
            reach = truth["crossing_reach_mm"][:, None] / np.asarray(sp)[None]
            found = measure(mask, sp).branch_points
            found = found[~in_zones(found, truth["crossings"], reach)]
            ev, info = parent_directions(ph.centrelines, mask.shape)
            scored = ~in_zones(truth["branch_points"], truth["crossings"], reach)
            for p in truth["branch_points"][scored]:
                kind, u = info[int(np.argmin(np.hypot(*(ev - p).T)))]
                if u is None or len(found) == 0:
                    continue
                off = found[np.argmin(np.hypot(*(found - p).T))] - p
                along, across = float(off @ u), float(off @ np.array([-u[1], u[0]]))
                rows.append((seed, grid, kind, np.hypot(*off), along, across, *p))
    for grid in GRIDS:
        for kind, name in KINDS.items():
            sel = [r for r in rows if r[1] == grid and r[2] == kind and r[3] < 10]
            if not sel:
                continue
            a = np.array([r[4] for r in sel])
            x = np.array([r[5] for r in sel])
            q = np.round(np.percentile(a, [10, 25, 50, 75, 90]), 1).tolist()
            print(f"{grid:9s} {name:11s} n {len(sel):3d}  along p10/25/50/75/90 {q}  "
                  f"sd along {a.std():.2f} across {x.std():.2f}")  # fmt: skip
    for s, grid, kind, dist, along, across, r, c in rows:
        if 3 < dist < 10:
            print(f"seed {s:3d} {grid:9s} {KINDS.get(kind, kind):11s} {dist:4.1f} px: along "
                  f"{along:+.1f} across {across:+.1f} at ({r:.1f}, {c:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
