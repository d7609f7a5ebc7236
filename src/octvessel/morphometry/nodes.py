"""Where a branch point lies: the meeting point of its arms' centre lines.

A skeleton's junction pixel is where the medial axis forks, not where the vessel split:
for a Y-shaped split the two children share one outline until they part, and the fork
of the medial axis sits there, downstream of the split by about the parent's radius over
the sine of half the angle between the children (3-6 pixels for the phantom's splits).
The centre lines of the arms, away from the junction, point back to the split: each arm
is fitted with a straight line (principal direction of its centre-line points between
``SKIP`` and ``SKIP + SPAN`` local radii plus ``EXTRA`` pixels from the junction, in mm; the local
radius is the distance to background at the centroid), and the branch point
is the least-squares meeting point of those lines (the point with the smallest summed
squared distance to them). It is kept only when the lines meet well (the smaller
eigenvalue of the normal matrix at least ``MIN_SPREAD``: not all arms parallel) and the
point lies within ``MAX_SHIFT`` local radii of the junction's centroid (plus one pixel);
otherwise the centroid stays. The constants were tuned on phantom seeds 0-11
(docs/measure.md: fresh seeds score lower; a wider sweep did not carry over to them).
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
        if FIT and len(lines) == n_arms and len(lines) >= 3:
            start = c0 if x is None else x
            y = _fit_capsules(mask, sp, start, lines, radius)
            if y is not None and np.linalg.norm(y - c0) <= MAX_SHIFT * radius + pixel:
                x = y
        if x is not None:
            out[k] = x / sp
    return out


FIT = True
#: half-width of the search square around the start, in local radii plus a pixel
SEARCH = 2.0
#: the window compared: within WINDOW local radii plus 2 pixels of the start
WINDOW = 4.0
#: relative radius changes tried per arm
SCALES = np.linspace(0.8, 1.2, 9)
#: direction changes tried per arm (radians)
TURNS = np.linspace(-0.2, 0.2, 9)


def _coverage(xy: np.ndarray, p: np.ndarray, lines: list, sp: np.ndarray) -> np.ndarray:
    """Approximate pixel coverage (m, n) of the union of straight capsules from each of
    the points ``p`` (m, 2) along ``lines`` (mean, unit direction away, radius), at the
    pixel centres ``xy`` (n, 2), all in mm."""
    rel = xy[None] - p[:, None]
    best = np.full(rel.shape[:2], -np.inf)
    ext = np.ones(rel.shape[:2])
    for _, u, r in lines:
        t = np.clip(rel @ u, 0.0, None)
        perp = rel - t[..., None] * u
        dist = np.hypot(perp[..., 0], perp[..., 1])
        inside = r - dist
        inv = 1.0 / np.maximum(dist, 1e-12)
        e = np.abs(perp[..., 0]) * inv * sp[0] + np.abs(perp[..., 1]) * inv * sp[1]
        e = np.maximum(e, float(sp.min()))
        better = inside > best
        best = np.where(better, inside, best)
        ext = np.where(better, e, ext)
    return np.clip(0.5 + best / (SOFT * ext), 0.0, 1.0)


def _best(xy, target, cands, lines, sp):
    cost = np.abs(_coverage(xy, cands, lines, sp) - target[None]).sum(1)
    i = int(np.argmin(cost))
    return cands[i], float(cost[i])


def _fit_capsules(
    mask: np.ndarray, sp: np.ndarray, start: np.ndarray, lines: list, radius: float
) -> np.ndarray | None:
    """The point (mm) from which straight capsules along the arms best redraw the mask."""
    pixel = float(sp.max())
    win = WINDOW * radius + 2 * pixel
    half = SEARCH * radius + pixel
    lo = np.maximum(np.floor((start - win - half) / sp).astype(int), 0)
    hi = np.minimum(np.ceil((start + win + half) / sp).astype(int) + 1, mask.shape)
    if np.any(hi <= lo):
        return None
    rr, cc = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
    xy = np.stack([rr.ravel(), cc.ravel()], 1) * sp
    near = np.linalg.norm(xy - start, axis=1) <= win
    xy = xy[near]
    target = mask[rr.ravel()[near], cc.ravel()[near]].astype(float)
    fine = float(sp.min())
    g = np.arange(-half, half + fine / 2, fine)
    cands = start + np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    p, _ = _best(xy, target, cands, lines, sp)
    ang0 = np.array([np.arctan2(u[0], u[1]) for _, u, _ in lines])
    rad0 = np.array([r for _, _, r in lines])

    def unpack(v):
        q = p + v[:2] * fine
        ang = ang0 + v[2 : 2 + len(lines)] * 0.1
        rad = rad0 * (1 + v[2 + len(lines) :] * 0.1)
        return q, [
            (None, np.array([np.sin(a), np.cos(a)]), r) for a, r in zip(ang, rad, strict=True)
        ]

    def cost(v):
        q, ls = unpack(v)
        return float(np.abs(_coverage(xy, q[None], ls, sp)[0] - target).sum())

    n = 2 + 2 * len(lines)
    simplex = np.vstack([np.zeros(n), np.eye(n)])
    res = minimize(
        cost,
        np.zeros(n),
        method="Nelder-Mead",
        options={"xatol": 0.02, "fatol": 0.01, "maxfev": 4000, "initial_simplex": simplex},
    )
    res = minimize(
        cost,
        res.x,
        method="Nelder-Mead",
        options={"xatol": 0.02, "fatol": 0.01, "maxfev": 4000, "initial_simplex": res.x + simplex},
    )
    q, ls = unpack(res.x)
    if DEBUG:
        print(
            "fit",
            q / sp,
            res.fun,
            res.nfev,
            [(np.degrees(np.arctan2(u[0], u[1])), r / sp[0]) for _, u, r in ls],
        )
    return q


DEBUG = False
SOFT = 2.0
