"""Branch-point F1 of ``octvessel.morphometry.measure`` against the phantom's truth.

For each phantom seed (well-sampled vessels: min radius 30 um, as the test uses) the true
vessel mask on its native B-scan grid (141 x 385 over 7 x 7 mm) and on the isotropic grid
the tree grew on (385 x 385) is measured, and its branch points are matched one to one
within ``--tol`` (3; several, comma-separated, from one measure) target pixels to the truth (:mod:`octvessel.sim.branch_score`; the truth's
zones left out). Prints per-seed (tp, fp, fn) and the pooled F1 per grid.

    python benchmarks/branch_points.py [--seeds 40-59] [--tol 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from octvessel.morphometry.phantom_check import GRIDS, branch_point_counts
from octvessel.oct.phantom import make_volume

WELL_SAMPLED = {"min_radius_um": 30.0, "vessel_fraction": 0.08}


def seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="40-59", help="inclusive range, e.g. 40-59")
    ap.add_argument(
        "--tol", default="3", help="match tolerance, target pixels; several: 3,4 (one measure)"
    )
    args = ap.parse_args()
    tols = [float(t) for t in args.tol.split(",")]
    totals = {(grid, tol): np.zeros(3, int) for tol in tols for grid in GRIDS}
    t0 = time.perf_counter()
    for seed in seed_range(args.seeds):
        ph = make_volume(seed=seed, depth=400, **WELL_SAMPLED)
        row = [f"seed {seed:3d}"]
        for grid in GRIDS:
            for tol, counts in zip(tols, branch_point_counts(ph, grid, tol=tols), strict=True):
                totals[grid, tol] += counts
                row.append(f"{grid} {tol:g} px tp/fp/fn {counts[0]}/{counts[1]}/{counts[2]}")
        print("  ".join(row), flush=True)
    for (grid, tol), (tp, fp, fn) in totals.items():
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        print(f"{grid:9s} {tol:g} px pooled tp {tp} fp {fp} fn {fn}: F1 {f1:.3f}")
    print(f"seeds {args.seeds}, tolerance {args.tol} px, in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
