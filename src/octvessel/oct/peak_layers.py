"""The earlier layer detector: ILM, RPE (its inner side) and BM from gradient peaks.

Kept for comparison in benchmarks/reconstruct.py; :func:`octvessel.oct.layers.detect_boundaries`
(graph search) replaced it. On the real Spectralis volume its "RPE" sits on the ellipsoid
zone (median error 8.9 px).

Method of the peak detector (vectorised numpy/scipy):

1. Coarse grid: average blocks of ``axial_bin`` samples x ``lateral_bin`` A-scans and
   smooth with a Gaussian (``sigma_um`` in depth, one coarse A-scan and half a B-scan
   across), so speckle averages out and neighbouring A-scans and B-scans share evidence.
2. ILM: per A-scan, the first depth where the axial gradient (dark to bright) exceeds
   ``ilm_fraction`` of that A-scan's strongest rise and six times the noise of the
   gradient in the top tenth of the image (the vitreous), moved to the local gradient
   maximum. "First strong rise" rather than "strongest rise" keeps the ILM in the foveal
   pit, where the ellipsoid-zone edge below is stronger than the vitreous edge.
3. RPE band: thin bright bands are enhanced by a difference of Gaussians (the coarse grid
   minus its ``line_um`` smoothing, which flattens thick bright layers: a thick RNFL
   near the disc, the choroid); the RPE band is the deepest local maximum between
   ``min_retina_um`` and ``max_retina_um`` below the ILM that reaches ``band_fraction`` of
   the strongest one -- the RPE rather than the ellipsoid zone above it.
4. Continuity: a median over 3 B-scans x ``median_ascans`` coarse A-scans of each surface;
   A-scans farther than ``outlier_um`` from it are searched again near the median surface.
5. Refinement at full resolution: in a window around the coarse surface the profiles are
   smoothed along depth (``refine_sigma_um``) and along A-scans within each B-scan (so
   axial motion between B-scans does not blur them), and each boundary is the extremum
   of the axial gradient, located to a fraction of a sample by a parabola: the ILM at
   the strongest rise within ``window_um``, the RPE (outer segments to RPE) at the
   strongest rise up to ``rpe_search_um`` above the band's peak, BM (RPE to choroid) at
   the strongest fall up to ``rpe_search_um`` below it.
6. A final median along A-scans (``final_median``) and ordering ILM <= RPE < BM.

Depths are in samples with the voxel-centre convention of :mod:`octvessel.oct.volume`.
The method expects a retina with vitreous above it (macular or peripapillary scans); it
is not meant for the optic-disc cup, where there is no RPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig
from octvessel.errors import InputError, UsageError
from octvessel.oct.volume import MIN_DEPTH, Volume

__all__ = ["PeakConfig", "detect_boundaries_peak"]


@dataclass(frozen=True)
class PeakConfig(JsonConfig):
    """Parameters of :func:`detect_boundaries_peak` (lengths in micrometres unless named px).

    Attributes:
        axial_bin, lateral_bin: block size of the coarse grid (samples, A-scans).
        sigma_um: axial Gaussian smoothing of the coarse grid.
        ilm_fraction: share of an A-scan's strongest rise that marks the ILM.
        min_retina_um, max_retina_um: where the RPE band is searched below the ILM.
        refine_sigma_um: axial smoothing of the full-resolution refinement windows.
        band_fraction: a band counts as bright when it reaches this share of the brightest.
        line_um: scale of the wide Gaussian subtracted to enhance thin bright bands.
        median_ascans: width (coarse A-scans) of the continuity median.
        outlier_um: distance from the median surface beyond which an A-scan is redone.
        window_um: half-width of the full-resolution refinement window.
        rpe_search_um: how far above / below the band peak the RPE and BM edges may lie.
        final_median: width (A-scans) of the last median along each B-scan (1 = off).
    """

    axial_bin: int = 2
    lateral_bin: int = 4
    sigma_um: float = 9.0
    ilm_fraction: float = 0.35
    min_retina_um: float = 60.0
    max_retina_um: float = 700.0
    refine_sigma_um: float = 4.0
    band_fraction: float = 0.6
    line_um: float = 30.0
    median_ascans: int = 7
    outlier_um: float = 25.0
    window_um: float = 16.0
    rpe_search_um: float = 30.0
    final_median: int = 5

    def __post_init__(self) -> None:
        for name in ("axial_bin", "lateral_bin", "median_ascans", "final_median"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UsageError(f"{name}={v!r} is not valid; expected a positive integer")
        for name in (
            "sigma_um",
            "refine_sigma_um",
            "line_um",
            "outlier_um",
            "window_um",
            "rpe_search_um",
        ):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name}={getattr(self, name)!r} is not valid; expected > 0")
        if not 0 < self.ilm_fraction < 1 or not 0 < self.band_fraction <= 1:
            raise UsageError("ilm_fraction and band_fraction must lie in (0, 1)")
        if not 0 <= self.min_retina_um < self.max_retina_um:
            raise UsageError("expected 0 <= min_retina_um < max_retina_um")


def detect_boundaries_peak(
    volume: Volume, config: PeakConfig | None = None
) -> dict[str, np.ndarray]:
    """The earlier detector: ILM, RPE (inner side) and BM from gradient peaks.

    Args:
        volume: a :class:`~octvessel.oct.volume.Volume` (float32, B-scans x depth x
            A-scans, brighter = more reflective; the log-compressed display scale of OCT
            devices).
        config: detection parameters.

    Returns:
        ``{"ILM": h, "RPE": h, "BM": h}``, each float32 (B-scans, A-scans), depth in
        samples, finite, ILM <= RPE < BM.

    Raises:
        InputError: a volume too small to hold a retina (fewer than 32 depth samples or
            fewer than 4 A-scans).
    """
    cfg = config or PeakConfig()
    data, spacing, path = volume.data, volume.spacing, volume.path
    nb, nd, na = data.shape
    if nd < MIN_DEPTH or na < 4:
        raise InputError(
            f"volume too small for layer detection: {nb} x {nd} x {na} (B-scans x depth x "
            f"A-scans); expected at least {MIN_DEPTH} depth samples and 4 A-scans",
            path,
        )
    um = spacing[1] * 1000.0  # micrometres per depth sample
    fd = max(1, min(cfg.axial_bin, nd // MIN_DEPTH))
    fa = max(1, min(cfg.lateral_bin, na // 8))
    coarse = _bin(data, fd, fa)
    cum = um * fd  # micrometres per coarse sample
    smooth = ndimage.gaussian_filter(
        coarse, (0.5 if nb > 1 else 0, cfg.sigma_um / cum, 1.0), mode="nearest", truncate=3.0
    )
    grad = np.diff(smooth, axis=1)  # position j + 0.5 in coarse samples
    ilm_c = _ilm_coarse(grad, cfg)
    # thin bright bands (RPE, ellipsoid zone) stand out in a difference of Gaussians;
    # thick bright layers (a thick RNFL near the disc, the choroid) do not
    lines = smooth - _box3(smooth, cfg.line_um / cum)
    peak_c = _band_peak(lines, ilm_c, cfg, cum)
    med = max(1, cfg.median_ascans)
    ilm_c = _continuity(ilm_c, grad, med, cfg.outlier_um / cum, "rise")
    peak_c = _continuity(peak_c, lines, med, cfg.outlier_um / cum, "max")

    # back to full resolution: coarse u -> full u * fd + (fd - 1) / 2; columns likewise
    ilm = _upsample(ilm_c * fd + (fd - 1) / 2.0, fa, na)
    peak = _upsample(peak_c * fd + (fd - 1) / 2.0, fa, na)
    w = max(2, int(round(cfg.window_um / um)))
    s = max(2, int(round(cfg.rpe_search_um / um)))
    sig = max(0.7, cfg.refine_sigma_um / um)
    ilm = _refine(data, ilm, -w, w, "rise", sig)
    rpe = _refine(data, peak, -s, 0, "rise", sig)
    bm = _refine(data, peak, 0, s, "fall", sig)

    out = {}
    for name, h in (("ILM", ilm), ("RPE", rpe), ("BM", bm)):
        if cfg.final_median > 1 and na >= cfg.final_median:
            h = ndimage.median_filter(h, size=(1, cfg.final_median), mode="nearest")
        out[name] = np.clip(h, 0.0, float(nd)).astype(np.float32)
    out["RPE"] = np.maximum(out["RPE"], out["ILM"])
    out["BM"] = np.clip(np.maximum(out["BM"], out["RPE"] + 1.0), 0.0, float(nd))
    return out


# ----------------------------------------------------------------------------- coarse


def _box3(x: np.ndarray, sigma: float) -> np.ndarray:
    """Three box filters along depth: a Gaussian of about ``sigma`` at O(1) cost per sample."""
    size = max(1, int(round(np.sqrt(4.0 * sigma**2 + 1.0))))
    for _ in range(3):
        x = ndimage.uniform_filter1d(x, size, axis=1, mode="nearest")
    return x


def _bin(data: np.ndarray, fd: int, fa: int) -> np.ndarray:
    """Block means (B, D // fd, ceil(A / fa)); the last partial A-scan block is kept."""
    nb, nd, na = data.shape
    d = (nd // fd) * fd
    x = data[:, 0:d:fd].astype(np.float32, copy=True)
    for k in range(1, fd):  # strided adds are much faster than a mean over a reshape
        x += data[:, k:d:fd]
    if fa > 1:
        full = (na // fa) * fa
        blocks = x[:, :, 0:full:fa].copy()
        for k in range(1, fa):
            blocks += x[:, :, k:full:fa]
        blocks /= fa
        if full < na:
            rest = x[:, :, full:].mean(axis=2, keepdims=True)
            blocks = np.concatenate([blocks, rest], axis=2)
        x = blocks
    x /= fd
    return np.ascontiguousarray(x, dtype=np.float32)


def _ilm_coarse(grad: np.ndarray, cfg: PeakConfig) -> np.ndarray:
    """First strong rise per coarse A-scan, at its local gradient maximum (coarse units)."""
    nd = grad.shape[1]
    top = grad[:, : max(4, nd // 10)]
    noise = 1.4826 * np.median(np.abs(top - np.median(top)))  # robust sigma in the vitreous
    strongest = grad.max(axis=1, keepdims=True)
    thresh = np.maximum(cfg.ilm_fraction * strongest, 6.0 * noise)
    above = grad >= thresh
    above[:, :2] = False  # edge effects of the smoothing at the image top
    first = np.argmax(above, axis=1)  # 0 where nothing passes: handled by the median later
    # climb to the local maximum within the next few samples
    k = np.arange(4)
    idx = np.clip(first[:, None, :] + k[None, :, None], 0, nd - 1)
    vals = np.take_along_axis(grad, idx, axis=1)
    step = np.argmax(vals, axis=1)
    j = np.clip(first + step, 0, nd - 1)
    return j.astype(np.float32) + 0.5


def _band_peak(band: np.ndarray, ilm: np.ndarray, cfg: PeakConfig, cum: float) -> np.ndarray:
    """Deepest bright local maximum of ``band`` between ILM + min and ILM + max retina."""
    nb, nd, na = band.shape
    z = np.arange(nd, dtype=np.float32)[None, :, None]
    lo = ilm[:, None, :] + cfg.min_retina_um / cum
    hi = ilm[:, None, :] + cfg.max_retina_um / cum
    inside = (z >= lo) & (z <= hi)
    masked = np.where(inside, band, -np.inf)
    best = masked.max(axis=1, keepdims=True)
    bright = masked >= cfg.band_fraction * best
    local = np.zeros_like(inside)
    local[:, 1:-1] = (band[:, 1:-1] >= band[:, :-2]) & (band[:, 1:-1] >= band[:, 2:])
    cand = bright & local & inside
    # deepest candidate; where none, the brightest sample
    rev = cand[:, ::-1]
    has = rev.any(axis=1)
    deepest = nd - 1 - np.argmax(rev, axis=1)
    fallback = np.argmax(masked, axis=1)
    return np.where(has, deepest, fallback).astype(np.float32)


def _continuity(
    h: np.ndarray, score: np.ndarray, width: int, tolerance: float, kind: str
) -> np.ndarray:
    """Replace A-scans far from the 2-D median surface by a search near that median."""
    nb = h.shape[0]
    size = (3 if nb >= 3 else 1, width)
    med = ndimage.median_filter(h, size=size, mode="nearest")
    bad = np.abs(h - med) > tolerance
    if not bad.any():
        return h
    nd = score.shape[1]
    r = int(np.ceil(tolerance))
    offsets = np.arange(-r, r + 1)
    centre = np.round(med - (0.5 if kind == "rise" else 0.0)).astype(np.intp)
    idx = np.clip(centre[:, None, :] + offsets[None, :, None], 0, nd - 1)
    vals = np.take_along_axis(score, idx, axis=1)
    pick = np.take_along_axis(idx, np.argmax(vals, axis=1)[:, None, :], axis=1)[:, 0]
    redo = pick.astype(np.float32) + (0.5 if kind == "rise" else 0.0)
    return np.where(bad, redo, h).astype(np.float32)


def _upsample(h: np.ndarray, fa: int, na: int) -> np.ndarray:
    """Coarse columns (centres at k * fa + (fa - 1) / 2) -> every A-scan, linearly."""
    if fa == 1:
        return h.astype(np.float32)
    nc = h.shape[1]
    centres = np.arange(nc) * fa + (fa - 1) / 2.0
    centres[-1] = min(centres[-1], (na - 1 + (nc - 1) * fa) / 2.0)  # partial last block
    pos = np.interp(np.arange(na), centres, np.arange(nc))
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, nc - 1)
    w = (pos - i0).astype(np.float32)
    return (h[:, i0] * (1 - w) + h[:, i1] * w).astype(np.float32)


# ------------------------------------------------------------------------- refinement


def _refine(
    data: np.ndarray, centre: np.ndarray, lo: int, hi: int, kind: str, sigma: float
) -> np.ndarray:
    """Strongest rise / fall of the axial gradient within [centre + lo, centre + hi].

    The window holds samples ``c + lo - pad .. c + hi + pad`` around ``c = round(centre)``;
    the profiles are smoothed along depth and along A-scans (within each B-scan), and the
    gradient's extremum is located with parabolic interpolation.
    """
    nb, nd, na = data.shape
    pad = int(np.ceil(2 * sigma)) + 1
    offsets = np.arange(lo - pad, hi + pad + 1)
    c = np.round(centre).astype(np.intp)
    idx = np.clip(c[:, None, :] + offsets[None, :, None], 0, nd - 1)
    win = np.take_along_axis(data, idx, axis=1)
    win = ndimage.gaussian_filter1d(win, sigma, axis=1, mode="nearest")
    win = ndimage.gaussian_filter1d(win, 1.0, axis=2, mode="nearest")
    g = np.diff(win, axis=1)  # g[k] between offsets[k] and offsets[k + 1]
    if kind == "fall":
        g = -g
    # only gradient positions whose midpoint lies within [lo, hi]
    mids = offsets[:-1] + 0.5
    valid = (mids >= lo - 0.5) & (mids <= hi + 0.5)
    g_valid = np.where(valid[None, :, None], g, -np.inf)
    k = np.argmax(g_valid, axis=1)
    km = np.clip(k - 1, 0, g.shape[1] - 1)
    kp = np.clip(k + 1, 0, g.shape[1] - 1)
    g0 = np.take_along_axis(g, k[:, None], axis=1)[:, 0]
    gm = np.take_along_axis(g, km[:, None], axis=1)[:, 0]
    gp = np.take_along_axis(g, kp[:, None], axis=1)[:, 0]
    denom = gm - 2 * g0 + gp
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(denom < 0, 0.5 * (gm - gp) / denom, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    return (c + offsets[0] + k + 0.5 + delta).astype(np.float32)
