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
- ``crossings`` (with ``crossing_reach_mm``, per zone: the summed diameters of the two
  vessels plus 3 tree pixels, or the run below plus a diameter and 3 pixels): the zones
  where a binary mask on the target grid cannot show the tree's topology, which checks
  leave out on both sides (a true point in a zone, and a detection in one or matched to
  such a point, are not scored): (a) *contacts*: the walls of two vessels come closer than
  one target pixel (its larger side, in tree pixels; 2.7 on the 50 um B-scan grid), that
  is crossings and vessels that touch in passing, except where a child starts inside its
  parent or its sibling (the run of touching points each path starts with); (b) *hubs*:
  events with 4 or more arms (the disc) and events whose arms touch along a first run
  longer than 2 diameters plus 3 pixels (children that run together: the mask cannot say
  where they split), and events closer to another one than the larger diameter plus one
  target pixel (a side branch a pixel before a split: one junction of 4 arms); (c)
  junctions with an arm cut by the image border;
- ``branch_points``: events (a split with both children drawn, a side branch, the disc)
  with exactly 3 visible arms: the parent before the event, the parent after it (side
  branch), each drawn child; an arm is visible when it runs, inside the image, farther
  from the event than 3 x the radius there plus one target pixel, and counted "cut" when
  the border (shrunk by the arm's radius: a skeleton stops about a radius short of where
  the image cuts a vessel) ends it first. Arms shorter than that end inside their parent
  vessel's outline or as a stub that ``measure`` prunes as a spur: no mask shows them.
  An arm runs on through the events at its end (a parent that splits a few pixels after
  a side branch goes on as the split's children; the mask shows one vessel going on).
  In (row, col) pixels of the target grid.

Before issue 18's second pass the crossings were only points where two centre lines
came within 1 tree pixel (vessels whose walls touch were missed), the disc counted as one
branch point, and every event inside the image counted however short its arms.
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


def _target_px(iso_shape: tuple[int, int], shape: tuple[int, int]) -> float:
    """One target pixel (its larger side) in tree pixels, at least 1."""
    return max(iso_shape[0] / shape[0], iso_shape[1] / shape[1], 1.0)


def _index_on(path: np.ndarray, event: tuple) -> int:
    """Index of the point of ``path`` (n, 3) that is ``event``'s (row, col)."""
    return int(np.flatnonzero((path[:, 0] == event[0]) & (path[:, 1] == event[1]))[0])


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
    shared = _shared(paths)
    for k, (event, pts) in enumerate(paths):
        if len(pts) == 0:
            continue
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
    cross, reach, longest = _contacts(events, paths, iso_shape, tuple(shape))
    branch, hubs, hub_reach = [], [], []
    r_max = max((float(p[:, 2].max()) for _, p in paths if len(p)), default=0.0)
    arms, cut, radius_at = _visible_arms(events, paths, iso_shape, tuple(shape))
    margin = _target_px(iso_shape, shape)
    seen = [i for i in range(len(events)) if arms[i] + cut[i] >= 3]
    ev_rc = np.asarray([events[i][:2] for i in seen], float).reshape(-1, 2)
    ev_r = np.asarray([radius_at.get(i, r_max) for i in seen], float)
    gap = np.hypot(*(ev_rc[:, None] - ev_rc[None]).transpose(2, 0, 1))
    np.fill_diagonal(gap, np.inf)
    # two events within one diameter (plus a target pixel) of each other: one junction
    merged = (gap < 2 * np.maximum(ev_r[:, None], ev_r[None]) + margin).any(1)
    for n, i in enumerate(seen):
        r, c, _ = events[i]
        r_here = ev_r[n]
        if arms[i] + cut[i] >= 4 or cut[i] or longest.get(i, 0.0) > 4 * r_here + 3.0 or merged[n]:
            hubs.append((r, c))
            hub_reach.append(longest.get(i, 0.0) + 2 * r_here + 3.0)
        else:
            branch.append((r, c))
    bp = _to_grid(np.asarray(branch, float).reshape(-1, 2), iso_shape, shape)
    cross = np.concatenate([cross, np.asarray(hubs, float).reshape(-1, 2)])
    reach = np.concatenate([reach, np.asarray(hub_reach, float)])
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
        "length-weighted mean of 2 x radius, events with 3 visible arms; zones not scored",
    }


def _visible_arms(
    events: list, paths: list, iso_shape: tuple[int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Per event, how many arms a mask on ``shape`` shows, how many the image border cuts
    short (module docstring), and the largest radius of its arms there (tree pixels).

    The arms are the parent's centre line before the event (and after it, for a side
    branch) and each drawn child; an arm counts when it runs, from the event and without
    leaving the image, farther than 3 x the largest radius there plus one target pixel;
    an arm that leaves the image before that is cut (its junction may or may not show).
    An arm goes on through the events at its end (:func:`_arm_runs`): a parent that ends
    in a split a few pixels after a side branch goes on as the split's children.
    """
    h, w = iso_shape
    margin = _target_px(iso_shape, shape)
    parent = _event_parents(events, paths)
    runs = _ArmRuns(events, paths, parent)
    arms_of: dict[int, list[list[np.ndarray]]] = {i: [] for i in range(len(events))}
    for i, (e, p) in enumerate(paths):
        if len(p):
            arms_of[e].append(runs.forward(i, 0))
    for k, i in parent.items():
        p = paths[i][1]
        at = _index_on(p, events[k])
        arms_of[k].append(runs.backward(i, at))
        if events[k][2] == 2:
            arms_of[k].append(runs.forward(i, at))
    out = np.zeros(len(events), int)
    cut = np.zeros(len(events), int)
    radius_at: dict[int, float] = {}
    for k, (r, c, _) in enumerate(events):
        if not (-0.5 <= r < h - 0.5 and -0.5 <= c < w - 0.5) or not arms_of[k]:
            continue
        radius_at[k] = max(float(alt[0][0, 2]) for alt in arms_of[k])
        need = 3 * radius_at[k] + margin
        for alternatives in arms_of[k]:
            seen, short = False, False
            for a in alternatives:
                m = a[:, 2]  # a skeleton stops about a radius short of where the image cuts
                inside = (a[:, 0] >= m - 0.5) & (a[:, 0] < h - 0.5 - m)
                inside &= (a[:, 1] >= m - 0.5) & (a[:, 1] < w - 0.5 - m)
                stop = int(np.argmin(inside)) if not inside.all() else len(a)
                reach = np.hypot(a[:stop, 0] - r, a[:stop, 1] - c)
                seen |= bool(reach.size and reach.max() > need)
                short |= stop < len(a)
            if seen:
                out[k] += 1
            elif short:
                cut[k] += 1
    return out, cut, radius_at


class _ArmRuns:
    """The ways an arm runs on from an event along the tree (tree pixels, (n, 3)).

    ``forward(i, at)``: path ``i`` from point ``at`` on, and where the path ends in a split
    on into each of its children; ``backward(i, at)``: path ``i`` from ``at`` back to its
    first point and its start event, and on up the path that event lies on. Up to
    ``DEPTH`` events deep; each is a list of alternatives (one array per way).
    """

    DEPTH = 3

    def __init__(self, events: list, paths: list, parent: dict[int, int]) -> None:
        self.events, self.paths, self.parent = events, paths, parent
        self.children: dict[int, list[int]] = {}
        for i, (e, p) in enumerate(paths):
            if len(p):
                self.children.setdefault(e, []).append(i)
        # path -> the split event that ends it
        self.ends_in = {i: k for k, i in parent.items() if events[k][2] == 1}

    def forward(self, i: int, at: int, depth: int = 0) -> list[np.ndarray]:
        p = self.paths[i][1][at:]
        k = self.ends_in.get(i)
        if k is None or depth >= self.DEPTH or not self.children.get(k):
            return [p]
        return [np.concatenate([p, q]) for j in self.children[k]
                for q in self.forward(j, 0, depth + 1)]  # fmt: skip

    def backward(self, i: int, at: int, depth: int = 0) -> list[np.ndarray]:
        p = self.paths[i][1]
        e = self.paths[i][0]
        origin = np.c_[np.asarray(self.events[e], float)[None, :2], p[:1, 2:]]
        run = np.concatenate([p[: at + 1][::-1], origin])
        j = self.parent.get(e)
        if j is None or depth >= self.DEPTH:
            return [run]
        at_j = _index_on(self.paths[j][1], self.events[e])
        return [np.concatenate([run, b]) for b in self.backward(j, at_j, depth + 1)]


def _event_parents(events: list, paths: list) -> dict[int, int]:
    """Event index -> the path it lies on (a split ends its parent there, a side branch
    leaves a point of it); the disc has none."""
    where = {}
    for i, (_, p) in enumerate(paths):
        for q in p[:, :2]:
            where.setdefault((float(q[0]), float(q[1])), i)
    out = {}
    for k, (r, c, _) in enumerate(events):
        i = where.get((float(r), float(c)))
        if i is not None:
            out[k] = i
    return out


def _contacts(
    events: list, paths: list, iso_shape: tuple[int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Where a binary mask on ``shape`` cannot show the tree's topology (module docstring).

    Returns (k, 2) tree-grid points and (k,) reach (tree pixels) of the zones where the
    walls of two vessels come closer than one target pixel, away from the branch the two
    share; and, per event where the first runs of its sibling arms touch, the length of
    the longest such run (tree pixels), for the events with 4 or more arms.
    """
    from scipy.spatial import cKDTree

    margin = _target_px(iso_shape, shape)
    pts, ids, idx, rad = [], [], [], []
    for i, (_, p) in enumerate(paths):
        if len(p):
            pts.append(p[:, :2])
            rad.append(p[:, 2])
            ids.append(np.full(len(p), i))
            idx.append(np.arange(len(p)))
    if not pts:
        return np.zeros((0, 2)), np.zeros(0), {}
    xy, pid, pix, r = (np.concatenate(v) for v in (pts, ids, idx, rad))
    pairs = cKDTree(xy).query_pairs(2 * float(r.max()) + margin, output_type="ndarray")
    pairs = pairs.reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]
    dist = np.linalg.norm(xy[a] - xy[b], axis=1)
    touch = (pid[a] != pid[b]) & (dist < r[a] + r[b] + margin)
    a, b = a[touch], b[touch]
    parent = _event_parents(events, paths)
    ev_of = [e for e, _ in paths]
    n = len(paths)
    # per related (path, other): how many points the path starts with that touch the other
    run = np.zeros(n * n, np.int64)
    for x, y in ((a, b), (b, a)):
        keys = np.unique(pid[x] * n + pid[y])
        for key in keys.tolist():
            px, py = divmod(key, n)
            if not (ev_of[px] == ev_of[py] or parent.get(ev_of[px]) == py):
                continue
            hit = np.zeros(len(paths[px][1]) + 1, bool)
            hit[pix[x][(pid[x] == px) & (pid[y] == py)]] = True
            first = 0 if hit[0] else 1
            run[key] = first + int(np.argmin(hit[first:])) if hit[first] else 0
    own = (pix[a] < run[pid[a] * n + pid[b]]) | (pix[b] < run[pid[b] * n + pid[a]])
    longest: dict[int, float] = {}
    for key in np.flatnonzero(run).tolist():
        i, j = divmod(key, n)
        longest[ev_of[i]] = max(longest.get(ev_of[i], 0.0), float(run[key]))
    a, b = a[~own], b[~own]
    if a.size == 0:
        return np.zeros((0, 2)), np.zeros(0), longest
    mid = 0.5 * (xy[a] + xy[b])
    reach = 2 * (r[a] + r[b]) + 3.0
    # one point per touching zone
    out, out_r = [], []
    taken = np.zeros(len(mid), bool)
    tree = cKDTree(mid)
    for i in np.argsort(-reach):
        if taken[i]:
            continue
        taken[tree.query_ball_point(mid[i], reach[i])] = True
        out.append(mid[i])
        out_r.append(reach[i])
    return np.asarray(out, float).reshape(-1, 2), np.asarray(out_r, float), longest


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


def isotropic_mask(centrelines: dict[str, Any]) -> np.ndarray:
    """bool ``iso_shape`` vessel mask of the tree on the square grid it grew on.

    The tree's coverage is the max-composite of anti-aliased discs stamped at every
    centre-line point (:func:`octvessel.sim.vessels._stamp`), so stamping the recorded
    points again gives the same coverage; the mask is coverage >= 0.5, as on the native
    grid.
    """
    from octvessel.sim.vessels import _stamp

    canvas = np.zeros(tuple(centrelines["iso_shape"]), np.float32)
    for _, p in centrelines.get("paths", []):
        for r, c, radius in p:
            _stamp(canvas, float(r), float(c), float(radius))
    return canvas >= 0.5
