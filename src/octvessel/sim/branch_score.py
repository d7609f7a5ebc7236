"""Scoring detected branch points against a phantom's true ones.

One to one within a tolerance (pixels of the target grid), by the Hungarian assignment on
distances. The truth's zones (crossings, contacts, hubs, border-cut junctions:
:func:`octvessel.sim.morphometry_truth.phantom_truth`, where a binary mask cannot show the
tree's topology) are not scored on either side: a true point inside one is left out, and
so is a detection inside one or matched to such a point.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

#: the issue's tolerance: a detection within 3 target pixels of a true point matches it
TOLERANCE_PX = 3.0


def in_zones(points: np.ndarray, zones: np.ndarray, reach_rc: np.ndarray) -> np.ndarray:
    """bool (n,): which (row, col) ``points`` lie inside an elliptical zone
    (centre ``zones[k]``, half-axes ``reach_rc[k]`` in pixels)."""
    points = np.asarray(points, float).reshape(-1, 2)
    if len(zones) == 0 or len(points) == 0:
        return np.zeros(len(points), bool)
    d = np.hypot((points[:, None, 0] - zones[None, :, 0]) / reach_rc[None, :, 0],
                 (points[:, None, 1] - zones[None, :, 1]) / reach_rc[None, :, 1])  # fmt: skip
    return (d <= 1).any(1)


def match_branch_points(
    found: np.ndarray,
    truth: np.ndarray,
    zones: np.ndarray,
    reach_rc: np.ndarray,
    tol: float = TOLERANCE_PX,
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of ``found`` (k, 2) against
    ``truth`` (m, 2), both (row, col) pixels; zones (z, 2) with half-axes ``reach_rc``."""
    found = np.asarray(found, float).reshape(-1, 2)
    truth = np.asarray(truth, float).reshape(-1, 2)
    m = found[~in_zones(found, zones, reach_rc)]
    dont_care = in_zones(truth, zones, reach_rc)
    scored = int((~dont_care).sum())
    if len(m) == 0 or len(truth) == 0:
        return 0, len(m), scored
    d = np.hypot(m[:, None, 0] - truth[None, :, 0], m[:, None, 1] - truth[None, :, 1])
    cost = np.where(d <= tol, d, 1e6)
    i, j = linear_sum_assignment(cost)
    ok = cost[i, j] <= tol
    tp = int((ok & ~dont_care[j]).sum())
    ignored = int((ok & dont_care[j]).sum())
    return tp, len(m) - tp - ignored, scored - tp
