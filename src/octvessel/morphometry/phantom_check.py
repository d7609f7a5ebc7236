"""``measure``'s branch points on a phantom's true vessel mask, scored against its truth.

Shared by the test of the branch-point target and ``benchmarks/branch_points.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from octvessel.morphometry.measure import measure
from octvessel.sim.branch_score import TOLERANCE_PX, match_branch_points
from octvessel.sim.morphometry_truth import isotropic_mask, phantom_truth

#: the grids a phantom's true mask is measured on
GRIDS = ("native", "isotropic")


def branch_point_counts(
    phantom: Any, grid: str = "native", tol: float | list[float] = TOLERANCE_PX
) -> Any:
    """(tp, fp, fn) of the branch points ``measure`` finds on ``phantom``'s true vessel
    mask on its ``"native"`` B-scan grid or the ``"isotropic"`` grid its tree grew on
    (:func:`octvessel.sim.morphometry_truth.isotropic_mask`), matched within ``tol``
    pixels of that grid (:func:`octvessel.sim.branch_score.match_branch_points`); with a
    list of tolerances, a list of those triples from one measure."""
    if grid not in GRIDS:
        raise ValueError(f"grid {grid!r}: expected one of {', '.join(GRIDS)}")
    cfg = phantom.config
    if grid == "native":
        mask, sp = phantom.vessels, (cfg.spacing[0], cfg.spacing[2])
    else:
        mask = isotropic_mask(phantom.centrelines)
        sp = (cfg.field_mm[0] / mask.shape[0], cfg.spacing[2])
    truth = phantom_truth(phantom.centrelines, mask.shape, cfg.field_mm)
    reach = truth["crossing_reach_mm"][:, None] / np.asarray(sp)[None]
    found = measure(mask, sp).branch_points  # input-grid pixels
    tols = tol if isinstance(tol, list) else [tol]
    out = [
        match_branch_points(found, truth["branch_points"], truth["crossings"], reach, tol=t)
        for t in tols
    ]
    return out if isinstance(tol, list) else out[0]
