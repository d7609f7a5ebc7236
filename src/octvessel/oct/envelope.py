"""A smooth lower envelope of a surface: BM under drusen (:func:`lower_envelope`)."""

from __future__ import annotations

import numpy as np

__all__ = ["lower_envelope"]


def lower_envelope(
    h: np.ndarray,
    scale: float,
    tolerance: float = 2.0,
    sigmas: float = 2.5,
    iterations: int = 6,
) -> np.ndarray:
    """A smooth surface (B, W) through ``h`` that ignores local elevations (drusen).

    Per B-scan, a local quadratic fit (LOESS with a Gaussian window of ``scale`` A-scans)
    at every A-scan, fitted again with zero weight on the A-scans more than ``t`` samples
    above it (smaller depth: lifted by drusen) or ``4 t`` below it (outliers), so
    elevations drop out of the fit and the window bridges them; ``t`` is ``sigmas`` robust
    standard deviations of the residuals in that B-scan, at least ``tolerance`` and at
    most ``3 tolerance`` samples (a noisy edge is not mistaken for drusen). Local, so
    it follows any shape wider than the window (a macular bowl, the undulating BM of a
    circle scan around the disc). NaN in ``h`` (no surface there) carries no weight; an
    A-scan with too little support nearby stays NaN. Vectorised (moments as matrix
    products at every ~``scale / 4`` A-scans, a 3 x 3 solve each, linear in between).
    """
    nb, nw = h.shape
    s = max(float(scale), 1.0)
    # the fit is evaluated every ~s / 4 A-scans and interpolated (it is smooth on that
    # scale): the moments are then small matrix products, not long convolutions
    centres = np.unique(np.r_[np.arange(0, nw, max(1, int(s // 4))), nw - 1])
    u = (np.arange(nw)[:, None] - centres[None, :]) / s  # (W, C)
    g = np.where(np.abs(u) <= 3.0, np.exp(-0.5 * u**2), 0.0)
    kernels = [g * u**k for k in range(5)]
    y = np.nan_to_num(h.astype(np.float64), nan=0.0)
    valid = np.isfinite(h).astype(np.float64)
    w = valid.copy()
    pos = np.interp(np.arange(nw), centres, np.arange(centres.size))
    i0 = np.minimum(np.floor(pos).astype(np.intp), centres.size - 1)
    i1 = np.minimum(i0 + 1, centres.size - 1)
    frac = pos - i0
    fit = np.full((nb, nw), np.nan)
    for _ in range(iterations):
        m = [w @ kernels[k] for k in range(5)]  # (B, C) each
        t = [(w * y) @ kernels[k] for k in range(3)]
        a = np.stack([np.stack(m[i : i + 3], axis=-1) for i in range(3)], axis=-2)
        a += np.diag([1e-9, 1e-3, 1e-3]) * m[0][..., None, None] + np.eye(3) * 1e-12
        coef = np.linalg.solve(a, np.stack(t, axis=-1)[..., None])[..., 0, 0]
        c_fit = np.where(m[0] > 0.5, coef, np.nan)  # under ~half an A-scan of support: none
        fit = c_fit[:, i0] * (1 - frac) + c_fit[:, i1] * frac
        res = y - np.nan_to_num(fit)
        # the rejection threshold follows the noise of the edge (robust sigma of the
        # residuals in each B-scan), at least ``tolerance``, at most 3 ``tolerance``
        sig = 1.4826 * _row_median(np.abs(res), w > 0)
        tol = np.clip(sigmas * np.nan_to_num(sig, nan=0.0), tolerance, 3 * tolerance)
        w_new = valid * ((res >= -tol) & (res <= 4 * tol))
        enough = w_new.sum(axis=1, keepdims=True) >= max(6, nw // 10)
        w = np.where(enough, w_new, w)
    return fit.astype(np.float32)


def _row_median(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median of ``x`` over ``keep`` per row, (B, 1); 0 for a row with nothing kept.

    (A sort per row: np.nanmedian is many times slower on short rows.)
    """
    n = keep.sum(axis=1)
    srt = np.sort(np.where(keep, x, np.inf), axis=1)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[:, None], axis=1)
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[:, None], axis=1)
    return np.where(n[:, None] > 0, 0.5 * (lo + hi), 0.0)
