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
    for k, cl in enumerate(clusters.tolist()):
        c0 = out[k] * sp
        r0, q0 = np.clip(np.round(out[k]).astype(int), 0, np.asarray(distance_mm.shape) - 1)
        radius = max(float(distance_mm[r0, q0]), pixel)
        lines = []
        for s, p in arms.get(cl, []):
            walk = st["walks"][s]
            if walk[0] != p:
                walk = walk[::-1]
            rr, cc = np.divmod(walk, w)
            pts = np.stack([rr, cc], 1) * sp
            d = np.linalg.norm(pts - c0, axis=1)
            sel = pts[(d >= SKIP * radius) & (d <= (SKIP + SPAN) * radius + EXTRA * pixel)]
            if len(sel) < MIN_POINTS:
                continue
            mean = sel.mean(0)
            _, _, vt = np.linalg.svd(sel - mean, full_matrices=False)
            lines.append((mean, vt[0]))
        if len(lines) < 2:
            continue
        a = np.zeros((2, 2))
        b = np.zeros(2)
        for mean, d in lines:
            proj = np.eye(2) - np.outer(d, d)
            a += proj
            b += proj @ mean
        if np.linalg.eigvalsh(a)[0] < MIN_SPREAD:
            continue
        x = np.linalg.solve(a, b)
        if np.linalg.norm(x - c0) <= MAX_SHIFT * radius + float(sp.max()):
            out[k] = x / sp
    return out
