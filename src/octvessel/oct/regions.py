"""Where a B-scan holds no layered retina, so that no surface is invented there.

Two kinds of region, found per A-scan on the coarse grid of
:func:`octvessel.oct.surfaces.find_surfaces` (normalised, smoothed intensities):

- **cut off at the top** (``top``): the tissue reaches the top of the scan window, so the
  vitreous / ILM edge is not in the image (the retina left the window; in Heidelberg
  scans its mirror image folds back in). Test: the mean intensity between the first
  non-blank row and ``top_margin_um`` above the ILM is above ``top_level`` (the
  vitreous is dark: 0.02-0.3 on the shared scans; tissue 0.5-0.9), or there are fewer than
  ``top_margin_um`` of rows above the ILM at all. No surface is reported there.
- **no RPE** (``disc``): an optic-disc cup, or tissue without the outer retina. Test: the
  ILM..RPE distance the search found is under ``disc_retina_um`` (the thinnest retina of
  the shared Spectralis macula, at the foveola, is 204 um ILM..RPE; the disc cup of
  HeyexImport_valid.vol gives 76-190 um), or the RPE is no brighter than the darkest layer
  above it by ``disc_contrast`` (the RPE band against the ONL: 0.29-0.8 on the shared
  scans, p0.1 in vessel shadows). Only runs at least ``disc_min_um`` wide count (a vessel
  shadow is narrower). The ILM is kept there (the disc surface); OPL, EZ, RPE and BM are
  left out.

A mask is only applied when the A-scans it leaves keep at least ``keep_share`` of the
volume: a scan with no retina anywhere (noise, blank) keeps its surfaces, and the quality
check (:mod:`octvessel.oct.quality`) calls them unreliable instead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["no_retina_masks"]


def no_retina_masks(
    sm: np.ndarray,
    first: np.ndarray,
    ilm: np.ndarray,
    rpe: np.ndarray,
    cz: float,
    cx: float,
    *,
    top_level: float,
    top_margin_um: float,
    disc_retina_um: float,
    disc_contrast: float,
    disc_min_um: float,
    keep_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (B, Wc) masks ``(top, disc)`` on the coarse grid (module docstring).

    Args:
        sm: coarse normalised smoothed intensities (B, Dc, Wc).
        first: first non-blank coarse row per coarse A-scan (B, Wc).
        ilm, rpe: coarse surfaces (B, Wc), coarse samples.
        cz, cx: micrometres per coarse sample (depth) and per coarse A-scan.
    """
    nb, nd, nw = sm.shape
    margin = top_margin_um / cz
    hi = ilm - margin
    # mean intensity above the ILM: cumulative sums over the rows above the deepest ILM
    d_top = int(np.clip(np.ceil(np.nanmax(hi)) + 1, 1, nd)) if np.isfinite(hi).any() else 1
    cs = np.zeros((nb, d_top + 1, nw), np.float32)
    np.cumsum(sm[:, :d_top], axis=1, out=cs[:, 1:])
    a = np.clip(np.round(first).astype(np.intp), 0, d_top)
    b = np.clip(np.round(hi).astype(np.intp), 0, d_top)
    n = b - a
    total = (
        np.take_along_axis(cs, b[:, None], 1)[:, 0] - np.take_along_axis(cs, a[:, None], 1)[:, 0]
    )
    mean_above = np.where(n > 0, total / np.maximum(n, 1), np.inf)
    top = (mean_above > top_level) | (n < max(1.0, margin))
    top = _runs(top, max(1, int(round(100.0 / cx))))

    r = np.clip(np.round(rpe).astype(np.intp), 0, nd - 1)
    at_rpe = np.take_along_axis(sm, r[:, None], 1)[:, 0]
    # the darkest sample between ILM and RPE, searched in the rows that can hold one
    z0 = int(np.clip(np.floor(np.min(ilm)), 0, nd - 1))
    z1 = int(np.clip(np.ceil(np.max(rpe)) + 1, z0 + 1, nd))
    z = np.arange(z0, z1)[None, :, None]
    inside = (z > ilm[:, None] + 1) & (z < rpe[:, None] - 1)
    darkest = np.where(inside, sm[:, z0:z1], np.inf).min(axis=1)
    darkest = np.where(np.isfinite(darkest), darkest, at_rpe)
    thin = (rpe - ilm) * cz < disc_retina_um
    disc = (thin | (at_rpe - darkest < disc_contrast)) & ~top
    disc = _runs(disc, max(1, int(round(disc_min_um / cx))))
    keep = nb * nw * keep_share
    if (~top).sum() < keep:
        top[:] = False
    if (~(top | disc)).sum() < keep:
        disc[:] = False
    return top, disc


def _runs(mask: np.ndarray, width: int) -> np.ndarray:
    """Runs along each B-scan at least ``width`` A-scans wide, gaps under it closed."""
    s = np.ones((1, width), bool)
    closed = ndimage.binary_closing(np.pad(mask, ((0, 0), (width, width)), mode="edge"), s)
    opened = ndimage.binary_opening(closed, s)
    return opened[:, width:-width] if width > 0 else opened
