"""Native-grid branch points: the skeleton on the native pixels against one on square pixels.

An experiment, not what ``measure`` does: each phantom's true native vessel mask (141 x 385,
50 x 18 um pixels) is measured as it is, and resampled to square pixels of the finer spacing
(:func:`octvessel.morphometry.features.to_square_pixels`) with the branch points mapped back
to native rows; both are matched to the truth within ``--tol`` native pixels (the test's
scoring). Prints the pooled tp / fp / fn and F1 of each.

    python benchmarks/branch_points_square.py [--seeds 20-59] [--tol 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from branch_points import WELL_SAMPLED, seed_range

from octvessel.morphometry import measure
from octvessel.morphometry.features import to_square_pixels
from octvessel.oct.phantom import make_volume
from octvessel.sim.branch_score import match_branch_points
from octvessel.sim.morphometry_truth import phantom_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="20-59", help="inclusive range, e.g. 20-59")
    ap.add_argument("--tol", type=float, default=3.0, help="match tolerance, native pixels")
    args = ap.parse_args()
    totals = {"native pixels": np.zeros(3, int), "square pixels": np.zeros(3, int)}
    for seed in seed_range(args.seeds):
        ph = make_volume(seed=seed, depth=400, **WELL_SAMPLED)
        cfg = ph.config
        mask, sp = ph.vessels, (cfg.spacing[0], cfg.spacing[2])
        truth = phantom_truth(ph.centrelines, mask.shape, cfg.field_mm)
        reach = truth["crossing_reach_mm"][:, None] / np.asarray(sp)[None]
        square = to_square_pixels(mask, sp)
        fine = min(sp)
        found = np.asarray(measure(square, (fine, fine)).graph.branch_points, float)
        found = found.reshape(-1, 2).copy()
        # to_square_pixels: output row j samples input row (j + 0.5) * n_in / n_out - 0.5
        found[:, 0] = (found[:, 0] + 0.5) * mask.shape[0] / square.shape[0] - 0.5
        found[:, 1] = (found[:, 1] + 0.5) * mask.shape[1] / square.shape[1] - 0.5
        for name, points in (
            ("native pixels", measure(mask, sp).graph.branch_points),
            ("square pixels", found),
        ):
            totals[name] += match_branch_points(
                points, truth["branch_points"], truth["crossings"], reach, tol=args.tol
            )
    for name, (tp, fp, fn) in totals.items():
        print(
            f"skeleton on {name}: tp {tp} fp {fp} fn {fn}, F1 {2 * tp / max(2 * tp + fp + fn, 1):.3f}"
        )
    print(f"seeds {args.seeds}, tolerance {args.tol:g} native px")


if __name__ == "__main__":
    main()
