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
extent taken along the edge's normal, so anisotropic grids are handled in mm). A grid of
candidate points (one fine pixel apart, ``SEARCH`` local radii plus a pixel around the
start) gives the start, Nelder-Mead the rest. This uses the whole outline near the split
(the children's outer walls leave the parent's walls at the split, well before the
medial axis forks), where the lines' meeting point extrapolates nearly parallel centre
lines back. The fitted point is kept when it lies within ``MAX_SHIFT`` local radii (plus a
pixel) of the centroid. Measured against the phantom in docs/measure.md.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

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
#: the model's edge is a ramp SOFT pixels wide (across the edge)
SOFT = 2.0
#: Nelder-Mead tolerance on the parameters (fine pixels, 0.1 rad, 10 % of the radius)
XATOL = 0.02


def _coverage(xy: tuple, p: np.ndarray, dirs: np.ndarray, radii: np.ndarray, sp: np.ndarray):
    """Approximate coverage (m, n) of pixels centred at ``xy`` ((n,) rows, (n,) cols, mm) by
    the union of straight capsules from each point ``p`` (m, 2) along ``dirs`` (a, 2, unit,
    away from the point) with ``radii`` (a,): a ramp SOFT pixels wide across the edge."""
    r0 = xy[0][None] - p[:, :1]
    r1 = xy[1][None] - p[:, 1:]
    best = np.full(r0.shape, -np.inf)
    floor = float(sp.min())
    for (u0, u1), r in zip(dirs, radii, strict=True):
        t = np.maximum(r0 * u0 + r1 * u1, 0.0)
        p0 = np.abs(r0 - t * u0)
        p1 = np.abs(r1 - t * u1)
        dist = np.sqrt(p0 * p0 + p1 * p1)
        ext = np.maximum((p0 * sp[0] + p1 * sp[1]) / np.maximum(dist, 1e-12), floor)
        np.maximum(best, (r - dist) / ext, out=best)
    return np.clip(0.5 + best / SOFT, 0.0, 1.0)


def _fit_capsules(
    mask: np.ndarray, sp: np.ndarray, start: np.ndarray, lines: list, radius: float
) -> np.ndarray | None:
    """The point (mm) from which straight capsules along the arms best redraw the mask."""
    pixel = float(sp.max())
    win = WINDOW * radius + 2 * pixel
    lo = np.maximum(np.floor((start - win) / sp).astype(int), 0)
    hi = np.minimum(np.ceil((start + win) / sp).astype(int) + 1, mask.shape)
    if np.any(hi <= lo):
        return None
    rr, cc = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
    rr, cc = rr.ravel(), cc.ravel()
    near = np.hypot(rr * sp[0] - start[0], cc * sp[1] - start[1]) <= win
    rr, cc = rr[near], cc[near]
    xy = (rr * sp[0], cc * sp[1])
    target = mask[rr, cc].astype(float)
    dirs0 = np.array([u for _, u, _ in lines])
    rad0 = np.array([r for _, _, r in lines])
    fine = float(sp.min())
    half = SEARCH * radius + pixel
    g = np.arange(-half, half + fine / 2, fine)
    cands = start + np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    cost = np.abs(_coverage(xy, cands, dirs0, rad0, sp) - target).sum(1)
    p = cands[int(np.argmin(cost))]
    ang0 = np.arctan2(dirs0[:, 0], dirs0[:, 1])
    a = len(lines)

    def unpack(v: np.ndarray) -> tuple:
        ang = ang0 + v[2 : 2 + a] * 0.1
        return (
            p + v[:2] * fine,
            np.stack([np.sin(ang), np.cos(ang)], 1),
            rad0 * (1 + v[2 + a :] * 0.1),
        )

    def misfit(v: np.ndarray) -> float:
        q, dirs, radii = unpack(v)
        return float(np.abs(_coverage(xy, q[None], dirs, radii, sp)[0] - target).sum())

    n = 2 + 2 * a
    v = np.zeros(n)
    for _ in range(2):  # restarted once: a simplex that shrank into a pixel-edge step
        opts = {
            "xatol": XATOL,
            "fatol": 0.01,
            "maxfev": 4000,
            "initial_simplex": v + np.vstack([np.zeros(n), np.eye(n)]),
        }
        v = minimize(misfit, v, method="Nelder-Mead", options=opts).x
    return unpack(v)[0]
