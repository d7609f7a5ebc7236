"""Shortest paths left to right through B-scans: the graph search of layer segmentation.

As in Chiu et al. (Opt. Express 18(18) 2010), a surface is the minimum-cost path through
a B-scan from its first to its last A-scan, moving one A-scan per step and at most
``max_jump`` samples up or down. Dynamic programming solves it exactly. The loop runs over
A-scans; each step is vectorised over depth and over all B-scans at once.

The search may be restricted to a band around a centre line (``centre`` (B, W) in
samples, band offsets ``-r..r``), which is how the fine passes run at full resolution in
a narrow band around the coarse surface.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BIG", "band_windows", "shortest_path", "subsample_peak"]

BIG = np.float32(1e6)  # cost of a forbidden node (finite, so an all-forbidden column still works)


def shortest_path(
    cost: np.ndarray,
    max_jump: int = 1,
    jump_cost: float = 0.0,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Minimum-cost left-to-right path through every B-scan.

    Args:
        cost: float32 (B, K, W): node costs; K = depth samples, or band offsets when
            ``centre`` is given (offset k is depth ``centre[b, w] - K // 2 + k``).
        max_jump: largest depth change (samples) between neighbouring A-scans.
        jump_cost: extra cost per sample of depth change (smoothness within the B-scan).
        centre: int (B, W) band centre per A-scan, or None for a full-depth search.

    Returns:
        int64 (B, W): the path's depth index per A-scan (band index + offset when banded).
    """
    nb, nk, nw = cost.shape
    half = nk // 2
    max_jump = int(max(0, min(max_jump, nk - 1, 63)))  # more is meaningless; int8 back-pointers
    jumps = np.arange(-max_jump, max_jump + 1)
    penalty = (np.abs(jumps) * jump_cost).astype(np.float32)
    acc = cost[:, :, 0].astype(np.float32, copy=True)
    back = np.zeros((nw, nb, nk), np.int8)
    # predecessor of (w, k) with jump s: index k - s + dc in the padded previous column
    base = np.arange(nk)[None, None, :] - jumps[None, :, None] + max_jump  # (1, S, K)
    pad = np.full((nb, nk + 2 * max_jump), np.inf, np.float32)
    zero = np.zeros((nb, 1, 1), np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(pad, nk, axis=1)  # (B, S, K) view
    for w in range(1, nw):
        pad[:, max_jump : max_jump + nk] = acc
        if centre is None:  # window i of the padded column is depth k + i - max_jump
            vals = windows[:, ::-1]
        else:
            dc = (centre[:, w] - centre[:, w - 1])[:, None, None] + zero
            idx = np.clip(base + dc, 0, nk + 2 * max_jump - 1)
            vals = np.take_along_axis(pad[:, None, :], idx, axis=2)
        # minimum over the jumps by elementwise passes (much faster than argmin over a
        # middle axis); ties keep the smaller jump index
        best = vals[:, 0] + penalty[0]
        arg = back[w]
        for i in range(1, len(jumps)):
            v = vals[:, i] + penalty[i]
            better = v < best
            np.copyto(best, v, where=better)
            arg[better] = i
        acc = best + cost[:, :, w]
    path = np.empty((nb, nw), np.int64)
    path[:, -1] = np.argmin(acc, axis=1)
    b = np.arange(nb)
    for w in range(nw - 1, 0, -1):
        s = jumps[back[w, b, path[:, w]]]
        dc = 0 if centre is None else centre[:, w] - centre[:, w - 1]
        path[:, w - 1] = np.clip(path[:, w] - s + dc, 0, nk - 1)
    if centre is not None:
        path = path + centre - half
    return path


def band_windows(
    data: np.ndarray, centre: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of ``data`` (B, D, W) at depths ``centre - radius .. centre + radius``.

    Returns:
        (window float32 (B, 2 radius + 1, W), depth index int (B, 2 radius + 1, W)),
        depths clipped to the volume.
    """
    nd = data.shape[1]
    off = np.arange(-radius, radius + 1)
    idx = np.clip(centre[:, None, :] + off[None, :, None], 0, nd - 1)
    return np.take_along_axis(data, idx, axis=1), idx


def subsample_peak(score: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Parabolic sub-sample position of the maximum of ``score`` (B, D, W) near ``path``.

    Returns float32 (B, W): ``path`` + an offset in [-0.5, 0.5].
    """
    nd = score.shape[1]
    p = np.clip(path, 1, nd - 2)
    g0 = np.take_along_axis(score, p[:, None], axis=1)[:, 0]
    gm = np.take_along_axis(score, (p - 1)[:, None], axis=1)[:, 0]
    gp = np.take_along_axis(score, (p + 1)[:, None], axis=1)[:, 0]
    denom = gm - 2 * g0 + gp
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(denom < 0, 0.5 * (gm - gp) / denom, 0.0)
    return (path + np.clip(delta, -0.5, 0.5)).astype(np.float32)
