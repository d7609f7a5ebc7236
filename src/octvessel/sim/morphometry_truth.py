"""The true morphometry of a phantom, from the centre lines its vessel tree grew along.

The phantom's tree (:func:`octvessel.sim.vessels.vessel_centrelines`) grows on a grid of
square pixels (``iso_shape``, side = the A-scan spacing) that covers the same field as
the volume; its centre lines are polylines with a radius at every point (one point per
pixel step). From them, on any grid over the same field (the native B-scan grid or an
isotropic one):

- ``length_mm``: the summed length of all polyline steps whose two points lie inside the
  image (a branch starts at its parent's centre line, as a skeleton's does); where two
  centre lines run together inside one vessel (trunks fanning out of the disc, the two
  children of a split before they part: closer than the larger radius, directions within
  25 degrees) the stretch is counted once, as the mask shows one vessel there;
- ``mean_diameter_um``: the length-weighted mean of 2 x radius over those steps;
- ``crossings``: points where two vessels that do not branch from each other touch (a
  binary mask cannot tell a crossing from two branch points), with ``crossing_reach_mm``
  (per crossing, the summed diameters of the two vessels plus 3 pixels): checks leave
  branch points that close to a crossing out;
- ``branch_points``: every point where three or more drawn segments meet (a split with
  both children drawn, a side branch that was drawn, the disc when >= 3 trunks leave it),
  inside the image, in (row, col) pixels of the target grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _to_grid(rc: np.ndarray, iso_shape: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Map (row, col) on the tree's grid to pixels of a grid of ``shape`` over the same field."""
    out = np.empty_like(rc, dtype=np.float64)
    for ax in (0, 1):
        out[:, ax] = (rc[:, ax] + 0.5) * shape[ax] / iso_shape[ax] - 0.5
    return out


def phantom_truth(
    centrelines: dict[str, Any],
    shape: tuple[int, int],
    field_mm: tuple[float, float],
) -> dict[str, Any]:
    """True ``length_mm``, ``mean_diameter_um`` and ``branch_points`` (module docstring).

    Args:
        centrelines: ``Phantom.centrelines`` (events, paths, iso_shape).
        shape: (rows, cols) of the target grid; ``field_mm``: (rows, cols) extent in mm.
    """
    iso_shape = tuple(centrelines["iso_shape"])
    events = centrelines.get("events", [])
    paths = centrelines.get("paths", [])
    iso_mm = (field_mm[0] / iso_shape[0], field_mm[1] / iso_shape[1])
    h, w = iso_shape
    total, weighted = 0.0, 0.0
    children = np.zeros(len(events), int)
    shared = _shared(paths)
    for k, (event, pts) in enumerate(paths):
        if len(pts) == 0:
            continue
        children[event] += 1
        origin = np.asarray(events[event][:2], float)[None]
        rc = np.concatenate([origin, pts[:, :2]])
        radius = np.concatenate([pts[:1, 2], pts[:, 2]])
        inside = (
            (rc[:, 0] >= -0.5) & (rc[:, 0] < h - 0.5) & (rc[:, 1] >= -0.5) & (rc[:, 1] < w - 0.5)
        )
        inside &= ~np.concatenate([[False], shared[k]])
        both = inside[1:] & inside[:-1]
        step = np.hypot(np.diff(rc[:, 0]) * iso_mm[0], np.diff(rc[:, 1]) * iso_mm[1])[both]
        diam_um = (radius[1:] + radius[:-1])[both] * iso_mm[1] * 1000.0  # 2 x mean radius
        total += float(step.sum())
        weighted += float((step * diam_um).sum())
    branch = []
    for i, (r, c, base) in enumerate(events):
        if base + children[i] >= 3 and -0.5 <= r < h - 0.5 and -0.5 <= c < w - 0.5:
            branch.append((r, c))
    bp = _to_grid(np.asarray(branch, float).reshape(-1, 2), iso_shape, shape)
    cross, reach = _crossings(events, paths, iso_shape)
    cross_px = _to_grid(cross, iso_shape, shape)
    return {
        "length_mm": total,
        "mean_diameter_um": weighted / total if total else float("nan"),
        "branch_points": bp,
        "crossings": cross_px,
        "crossing_reach_mm": reach * iso_mm[1],
        "grid_shape": tuple(shape),
        "spacing_mm": (field_mm[0] / shape[0], field_mm[1] / shape[1]),
        "definition": "octvessel.sim.morphometry_truth: polyline length inside the image, "
        "length-weighted mean of 2 x radius, points where >= 3 drawn segments meet",
    }


def _crossings(
    events: list, paths: list, iso_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(k, 2) tree-grid points where unrelated vessels touch, and (k,) reach in tree pixels."""
    from scipy.spatial import cKDTree

    pts, ids, rad = [], [], []
    for i, (_, p) in enumerate(paths):
        if len(p):
            pts.append(p[:, :2])
            rad.append(p[:, 2])
            ids.append(np.full(len(p), i))
    if not pts:
        return np.zeros((0, 2)), np.zeros(0)
    xy, pid, r = np.concatenate(pts), np.concatenate(ids), np.concatenate(rad)
    pairs = cKDTree(xy).query_pairs(1.0, output_type="ndarray")
    pairs = pairs[pid[pairs[:, 0]] != pid[pairs[:, 1]]]
    if pairs.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    mid = 0.5 * (xy[pairs[:, 0]] + xy[pairs[:, 1]])
    reach = 2 * (r[pairs[:, 0]] + r[pairs[:, 1]]) + 3.0
    ev = np.asarray([e[:2] for e in events], float).reshape(-1, 2)
    if len(ev):
        d, _ = cKDTree(ev).query(mid)
        keep = d > reach
        mid, reach = mid[keep], reach[keep]
    # one point per touching zone
    out, out_r = [], []
    taken = np.zeros(len(mid), bool)
    tree = cKDTree(mid) if len(mid) else None
    for i in np.argsort(-reach):
        if taken[i]:
            continue
        near = tree.query_ball_point(mid[i], reach[i])
        taken[near] = True
        out.append(mid[i])
        out_r.append(reach[i])
    return np.asarray(out, float).reshape(-1, 2), np.asarray(out_r, float)


def _shared(paths: list) -> list[np.ndarray]:
    """Per path, bool per point: runs inside an earlier path's vessel, along it."""
    from scipy.spatial import cKDTree

    out = [np.zeros(len(p), bool) for _, p in paths]
    pts, ids, idx, rad, dirs = [], [], [], [], []
    for i, (_, p) in enumerate(paths):
        if len(p) < 2:
            continue
        d = np.gradient(p[:, :2], axis=0)
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
        pts.append(p[:, :2])
        ids.append(np.full(len(p), i))
        idx.append(np.arange(len(p)))
        rad.append(p[:, 2])
        dirs.append(d)
    if not pts:
        return out
    xy, pid, pix = np.concatenate(pts), np.concatenate(ids), np.concatenate(idx)
    r, d = np.concatenate(rad), np.concatenate(dirs)
    pairs = cKDTree(xy).query_pairs(float(r.max()), output_type="ndarray")
    a, b = pairs[:, 0], pairs[:, 1]
    dist = np.linalg.norm(xy[a] - xy[b], axis=1)
    ok = (pid[a] != pid[b]) & (dist < np.maximum(r[a], r[b]))
    ok &= np.abs((d[a] * d[b]).sum(1)) > np.cos(np.radians(25))
    a, b = a[ok], b[ok]
    later = np.where(pid[a] > pid[b], a, b)
    for k in np.unique(later):
        out[pid[k]][pix[k]] = True
    return out


def write_phantom_truth(path: Any, phantom: Any, overwrite: bool = False) -> dict[str, Any]:
    """Write the phantom's true morphometry on its native grid as JSON (beside its volume)."""
    from octvessel.atomic import write_json

    t = phantom_truth(phantom.centrelines, phantom.vessels.shape, phantom.config.field_mm)
    info = {
        "what": "true morphometry of an octvessel phantom (octvessel.sim.morphometry_truth)",
        "seed": phantom.seed,
        "laterality": phantom.volume.laterality,
        "fovea_px": [float(v) for v in phantom.fovea],
        "grid_shape": list(t["grid_shape"]),
        "spacing_mm": list(t["spacing_mm"]),
        "length_mm": t["length_mm"],
        "mean_diameter_um": t["mean_diameter_um"],
        "branch_points_px": np.round(t["branch_points"], 2).tolist(),
        "crossings_px": np.round(t["crossings"], 2).tolist(),
        "crossing_reach_mm": np.round(t["crossing_reach_mm"], 4).tolist(),
        "definition": t["definition"],
    }
    write_json(path, info, overwrite)
    return info
