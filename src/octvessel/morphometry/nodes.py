"""Where a branch point lies: the point from which its arms, drawn as straight vessels,
redraw the mask best.

A skeleton's junction pixel is where the medial axis forks, not where the vessel split:
for a Y-shaped split the two children share one outline until they part, and the fork
of the medial axis sits there, downstream of the split by about the parent's radius over
the sine of half the angle between the children (3-6 pixels for the phantom's splits).

Step 1, the arms' lines: each arm is fitted with a straight line (principal direction of
its centre-line points between ``SKIP`` and ``SKIP + SPAN`` local radii plus ``EXTRA``
pixels from the junction, in mm; the local radius is the distance to background at the
centroid), with a radius (median distance to background on those points less a quarter
of the pixel's extent across the arm). Their least-squares meeting point (smallest summed
squared distance to the lines) is the start when the lines meet well (smaller eigenvalue
of the normal matrix at least ``MIN_SPREAD``) and it lies within ``MAX_SHIFT`` local radii
(plus a pixel) of the centroid; otherwise the centroid is.

Step 2, the capsule fit (:func:`_fit_capsules`; clusters of 3 or more arms, every arm with
a line): the true split is where the parent's centre line ends and the children's start
(``octvessel.sim.morphometry_truth``; a side branch starts on its parent's centre line), so
the junction is modelled as straight capsules (a vessel of constant radius with a round
end), one per arm, all starting at one point p, and p (with each arm's direction and
radius, started from step 1) is the one whose drawing matches the mask best within
``WINDOW`` local radii plus 2 pixels: summed absolute difference between the mask and
the model's pixel coverage (a ramp ``SOFT`` pixels wide across the edge, the pixel's
extent taken along the edge's normal, so anisotropic grids are handled in mm). Candidate
points on grids ``SEARCH`` local radii plus a pixel around the start, and a coordinate
search over each arm's direction and radius, find it (:func:`_fit_capsules`). This uses the whole outline near the split
(the children's outer walls leave the parent's walls at the split, well before the
medial axis forks), where the lines' meeting point extrapolates nearly parallel centre
lines back. The fitted point is kept when it lies within ``MAX_SHIFT`` local radii (plus a
pixel) of the centroid. Measured against the phantom in docs/measure.md.
"""

from __future__ import annotations

import numpy as np

#: arm points nearer to the junction than SKIP local radii are left out (the medial
#: axis bends towards the junction there)
SKIP = 1.0
#: arm points used for the line: from SKIP to SKIP + SPAN local radii
SPAN = 2.0
#: and EXTRA pixels (the larger side) more, so that coarse grids give enough points
EXTRA = 1.0
#: smallest eigenvalue of sum(I - d d^T) over the arms: sin^2 of the angle between two arms
MIN_SPREAD = 0.05
#: the meeting point may move at most this many local radii (plus one pixel)
MAX_SHIFT = 3.0
#: arms with fewer points than this in the window are not used
MIN_POINTS = 3


def place_branch_points(
    st: dict, clusters: np.ndarray, distance_mm: np.ndarray, spacing: tuple[float, float]
) -> np.ndarray:
    """(k, 2) (row, col) of the branch clusters ``clusters`` (labels) of a skeleton.

    ``st`` is :func:`octvessel.morphometry.graph._structure`'s record (centroids,
    attachments, segment walks); ``distance_mm`` the distance to background (mm).
    """
    centroids = st["centroids"]
    out = np.asarray(centroids[clusters - 1], float).reshape(-1, 2)
    if out.size == 0:
        return out
    sp = np.asarray(spacing, float)
    pixel = float(sp.max())
    w = distance_mm.shape[1]
    arms: dict[int, list[tuple[int, int]]] = {}
    for s, c, p in zip(st["att_seg"].tolist(), st["att_cl"].tolist(), st["att_pix"].tolist(),
                       strict=True):  # fmt: skip
        arms.setdefault(c, []).append((s, p))
    mask = distance_mm > 0
    for k, cl in enumerate(clusters.tolist()):
        c0 = out[k] * sp
        r0, q0 = np.clip(np.round(out[k]).astype(int), 0, np.asarray(distance_mm.shape) - 1)
        radius = max(float(distance_mm[r0, q0]), pixel)
        lines = []
        n_arms = 0
        for s, p in arms.get(cl, []):
            n_arms += 1
            walk = st["walks"][s]
            if walk[0] != p:
                walk = walk[::-1]
            rr, cc = np.divmod(walk, w)
            pts = np.stack([rr, cc], 1) * sp
            d = np.linalg.norm(pts - c0, axis=1)
            keep = (d >= SKIP * radius) & (d <= (SKIP + SPAN) * radius + EXTRA * pixel)
            sel = pts[keep]
            if len(sel) < MIN_POINTS:
                continue
            mean = sel.mean(0)
            _, _, vt = np.linalg.svd(sel - mean, full_matrices=False)
            u = vt[0] if (mean - c0) @ vt[0] >= 0 else -vt[0]
            e = abs(u[1]) * sp[0] + abs(u[0]) * sp[1]  # pixel extent across the arm
            r_arm = float(np.median(distance_mm[rr[keep], cc[keep]])) - e / 4
            lines.append((mean, u, max(r_arm, e / 2)))
        if len(lines) < 2:
            continue
        a = np.zeros((2, 2))
        b = np.zeros(2)
        for mean, d, _ in lines:
            proj = np.eye(2) - np.outer(d, d)
            a += proj
            b += proj @ mean
        x = None
        if np.linalg.eigvalsh(a)[0] >= MIN_SPREAD:
            x = np.linalg.solve(a, b)
            if np.linalg.norm(x - c0) > MAX_SHIFT * radius + pixel:
                x = None
        if len(lines) == n_arms and len(lines) >= 3:
            start = c0 if x is None else x
            y = _fit_capsules(mask, sp, start, lines, radius)
            if y is not None and np.linalg.norm(y - c0) <= MAX_SHIFT * radius + pixel:
                x = y
        if x is not None:
            out[k] = x / sp
    return out


#: half-width of the search square around the start, in local radii plus a pixel
SEARCH = 2.0
#: the window compared: within WINDOW local radii plus 2 pixels of the start
WINDOW = 4.0
#: a window of more pixels than this (a blob, not a vessel split: an untrained net's mask)
#: is not fitted and the start is kept; memory grows with window x candidates
MAX_WINDOW_PX = 20000
#: the model's edge is a ramp SOFT pixels wide (across the edge)
SOFT = 2.0
#: spacing of the first grid of candidate points, fine pixels
COARSE = 2.0
#: rounds of (each arm's direction and radius, then the point)
ROUNDS = 2
#: each arm's direction is tried turned by these angles (rad) ...
TURNS = (-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2)
#: ... and its radius scaled by these factors
SCALES = (0.85, 1.0, 1.15)

_RING = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"), -1).reshape(-1, 2)


def _capsule_scores(
    xy: tuple, p: np.ndarray, dirs: np.ndarray, radii: np.ndarray, sp: np.ndarray
) -> np.ndarray:
    """(m, k, n) signed edge distance, in pixels across the edge (> 0 inside), of pixels
    centred at ``xy`` ((n,) rows, (n,) cols, mm) to k straight capsules (a vessel of radius
    ``radii`` (k,) mm with a round end) starting at each point ``p`` (m, 2) along ``dirs``
    (k, 2, unit, away from the point). The pixel's extent is taken along the edge's normal,
    so an anisotropic grid is handled in mm."""
    p = p.astype(xy[0].dtype)
    r0 = (xy[0][None] - p[:, :1])[:, None]  # (m, 1, n)
    r1 = (xy[1][None] - p[:, 1:])[:, None]
    u0 = dirs[None, :, :1]
    u1 = dirs[None, :, 1:]
    t = np.maximum(r0 * u0 + r1 * u1, 0.0)
    p0 = np.abs(r0 - t * u0)
    p1 = np.abs(r1 - t * u1)
    dist = np.sqrt(p0 * p0 + p1 * p1)
    s0, s1 = np.float32(sp[0]), np.float32(sp[1])
    ext = np.maximum((p0 * s0 + p1 * s1) / np.maximum(dist, np.float32(1e-12)), min(s0, s1))
    return (radii.astype(np.float32)[None, :, None] - dist) / ext


def _misfit(score: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Summed |mask - coverage| over the last axis; coverage is a ramp SOFT pixels wide."""
    return np.abs(np.clip(0.5 + score / SOFT, 0.0, 1.0) - target).sum(-1)


def _fit_capsules(
    mask: np.ndarray, sp: np.ndarray, start: np.ndarray, lines: list, radius: float
) -> np.ndarray | None:
    """The point (mm) from which straight capsules along the arms best redraw the mask.

    ``lines``: (mean, direction, radius) per arm, from step 1. A grid of candidate points
    (``COARSE`` fine pixels apart) and three finer 3 x 3 rings give the point for the
    arms as measured; then, ``ROUNDS`` times, each arm in turn takes the best of its
    direction turned by ``TURNS`` and its radius scaled by ``SCALES`` (the other arms kept),
    and the point is searched again in rings of 2, 1, 1/2 and 1/4 fine pixels. Every
    step evaluates its candidates at once (no iterative optimiser: about 3 ms per junction).
    """
    pixel = float(sp.max())
    win = WINDOW * radius + 2 * pixel
    lo = np.maximum(np.floor((start - win) / sp).astype(int), 0)
    hi = np.minimum(np.ceil((start + win) / sp).astype(int) + 1, mask.shape)
    if np.any(hi <= lo):
        return None
    if np.prod(hi - lo) > MAX_WINDOW_PX:
        return None
    rr, cc = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
    rr, cc = rr.ravel(), cc.ravel()
    near = np.hypot(rr * sp[0] - start[0], cc * sp[1] - start[1]) <= win
    rr, cc = rr[near], cc[near]
    # float32 coordinates relative to the start: half the memory traffic, ample precision
    xy = ((rr * sp[0] - start[0]).astype(np.float32), (cc * sp[1] - start[1]).astype(np.float32))
    target = mask[rr, cc].astype(np.float32)
    ang = np.array([np.arctan2(u[0], u[1]) for _, u, _ in lines])
    rad = np.array([r for _, _, r in lines])
    fine = float(sp.min())

    def dirs_of(a: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(a), np.cos(a)], 1).astype(np.float32)

    def best_point(cands: np.ndarray) -> np.ndarray:
        dirs = dirs_of(ang)
        score = _capsule_scores(xy, cands, dirs[:1], rad[:1], sp)[:, 0]
        for j in range(1, len(ang)):  # arm by arm: (m, n) at a time
            np.maximum(
                score,
                _capsule_scores(xy, cands, dirs[j : j + 1], rad[j : j + 1], sp)[:, 0],
                out=score,
            )
        return cands[int(np.argmin(_misfit(score, target)))]

    half = SEARCH * radius + pixel
    g = np.arange(-half, half + COARSE * fine / 2, COARSE * fine)
    p = best_point(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2))
    for step in (fine, fine / 2, fine / 4):
        p = best_point(p + _RING * step)
    turns, scales = (a.ravel() for a in np.meshgrid(TURNS, SCALES, indexing="ij"))
    for _ in range(ROUNDS):
        for j in range(len(ang)):
            others = np.arange(len(ang)) != j
            base = _capsule_scores(xy, p[None], dirs_of(ang[others]), rad[others], sp)
            tried = _capsule_scores(xy, p[None], dirs_of(ang[j] + turns), rad[j] * scales, sp)
            k = int(np.argmin(_misfit(np.maximum(tried[0], base[0].max(0)), target)))
            ang[j] += turns[k]
            rad[j] *= scales[k]
        for step in (2 * fine, fine, fine / 2, fine / 4):
            p = best_point(p + _RING * step)
    return start + p
