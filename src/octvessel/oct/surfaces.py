"""Layer surfaces ILM, OPL, EZ, RPE and BM by graph search, coarse to fine.

Surfaces (depth in samples, the voxel-centre convention of :mod:`octvessel.oct.volume`;
defined with pictures in docs/oct.md):

- ``ILM``: vitreous / retina, the first strong dark-to-bright edge.
- ``OPL``: outer plexiform / outer nuclear layer, the bright-to-dark edge above the ONL.
- ``EZ``: the dark-to-bright edge into the ellipsoid zone (inner side of the IS/OS band).
- ``RPE``: the centre (intensity ridge) of the RPE band, following drusen -- the
  convention of the expert-corrected labels of the shared Spectralis volume, whose RPE
  pixel sits on the band's brightest sample.
- ``BM``: Bruch's membrane, the bright-to-dark edge under the RPE band, made smooth under
  drusen: a lower envelope of that edge (drusen lift the RPE, not BM).

Where there is no layered retina the surfaces are NaN (step 5).

Method (Chiu et al., Opt. Express 2010, adapted):

1. Coarse grid (``coarse_um`` x ``coarse_lateral_um`` blocks), Gaussian smoothing, and
   oriented axial gradients normalised to [0, 1]: ``rise`` (dark to bright) and ``fall``.
2. Per B-scan shortest paths (:func:`octvessel.oct.graph_search.shortest_path`) on the
   coarse grid, in this order, each bounded by the surfaces already found: the RPE band
   (a thin bright band, with a strong fall below it), ILM (rise, at least ``min_retina_um`` above the
   RPE), BM (fall below the RPE), EZ (rise above the RPE), OPL (fall between ILM and EZ).
3. Across B-scans: a median of the stacked height maps over ``median_bscans`` B-scans x
   ``median_columns`` coarse A-scans, then each surface is searched again on the full grid
   in a narrow band (``band_um``) around it, with the same ordering constraints, and
   located to a fraction of a sample.
4. BM smoothing under drusen (:func:`~octvessel.oct.envelope.lower_envelope`, a local
   robust fit), and a final ordering ILM < OPL < EZ < RPE < BM.
5. Regions without a layered retina (:mod:`octvessel.oct.regions`: the tissue cut off at
   the top of the window, no RPE as in an optic-disc cup) are left out: NaN (all five
   surfaces, or all but the ILM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig
from octvessel.errors import UsageError
from octvessel.oct.envelope import lower_envelope
from octvessel.oct.graph_search import BIG, band_windows, shortest_path, subsample_peak
from octvessel.oct.regions import no_retina_masks

__all__ = ["SURFACES", "SurfaceConfig", "find_surfaces", "lower_envelope"]

SURFACES = ("ILM", "OPL", "EZ", "RPE", "BM")


@dataclass(frozen=True)
class SurfaceConfig(JsonConfig):
    """Parameters of :func:`find_surfaces` (micrometres unless named otherwise).

    Attributes:
        coarse_um, coarse_lateral_um: coarse grid block (depth, along the B-scan).
        max_slope: steepest surface (depth um per lateral um) the path may follow.
        jump_cost: path cost per sample of depth change (smoothness within a B-scan).
        min_retina_um: least ILM..RPE distance (keeps the ILM off the EZ in the fovea).
        max_retina_um: largest ILM..RPE distance.
        ez_range_um: EZ edge to RPE ridge distance (least, largest).
        ilm_ez_um: least ILM..EZ distance.
        vitreous_level: normalised intensity above which a sample is no longer vitreous.
        bm_range_um: where the BM edge is searched below the RPE (near, far).
        onl_um: least OPL..EZ distance (the outer nuclear layer and inner segments).
        median_bscans, median_columns: the cross-B-scan median (B-scans, coarse A-scans).
        band_um: half-width of the fine search band around the coarse surface.
        fine_jump: most samples the fine path may move per A-scan relative to the coarse
            surface it refines.
        bm_near_um: below this distance under the RPE a fall counts fully for BM; deeper
            ones are weighted down as bm_near_um / distance (the choroid's falls).
        rpe_near_um: likewise for the RPE band below the EZ edge.
        bm_max_um: largest RPE..BM distance (drusen higher than this are cut).
        bm_smooth_um: Gaussian window (sigma, along the B-scan) of the local fit that
            makes BM smooth under drusen (:func:`lower_envelope`).
        bm_tolerance_um: least elevation above that fit counted as a druse.
        bm_sigmas: the elevation threshold in robust standard deviations of the edge.
        rpe_line_um: scale of the thin-band filter of the coarse RPE search.
        regions: leave surfaces out (NaN) where there is no layered retina
            (:mod:`octvessel.oct.regions`: the retina cut off at the top of the window,
            no RPE as in an optic-disc cup); top_level, top_margin_um, disc_retina_um,
            disc_contrast and disc_min_um are its thresholds.
    """

    coarse_um: float = 8.0
    coarse_lateral_um: float = 45.0
    max_slope: float = 0.8
    jump_cost: float = 0.05
    min_retina_um: float = 60.0
    max_retina_um: float = 800.0
    ez_range_um: tuple[float, float] = (30.0, 70.0)
    ilm_ez_um: float = 40.0
    vitreous_level: float = 0.5
    bm_range_um: tuple[float, float] = (4.0, 60.0)
    onl_um: float = 50.0
    median_bscans: int = 3
    median_columns: int = 5
    band_um: float = 30.0
    fine_jump: int = 2
    bm_smooth_um: float = 600.0
    bm_tolerance_um: float = 8.0
    bm_sigmas: float = 2.5
    rpe_line_um: float = 30.0
    regions: bool = True
    top_level: float = 0.4
    top_margin_um: float = 10.0
    disc_retina_um: float = 150.0
    disc_contrast: float = 0.15
    disc_min_um: float = 500.0
    bm_near_um: float = 30.0
    rpe_near_um: float = 45.0
    bm_max_um: float = 150.0

    def __post_init__(self) -> None:
        for name in ("coarse_um", "coarse_lateral_um", "max_slope", "band_um", "bm_smooth_um",
                     "bm_tolerance_um", "rpe_line_um"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise UsageError(f"{name}={getattr(self, name)!r} is not valid; expected > 0")
        for name in ("median_bscans", "median_columns"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UsageError(f"{name}={v!r} is not valid; expected a positive integer")


def find_surfaces(
    data: np.ndarray, spacing: tuple[float, float, float], config: SurfaceConfig | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Find ILM, OPL, EZ, RPE and BM in every A-scan.

    Args:
        data: float32 (B, D, W), brighter = more reflective (log display scale).
        spacing: (slow, axial, fast) mm.
        config: parameters.

    Returns:
        (surfaces, scores): surfaces name -> float32 (B, W) depth in samples, ordered
        ILM < OPL < EZ < RPE < BM; scores name -> float32 (B, W) in [0, 1], the
        normalised edge / band strength at the surface (used for confidence); NaN / 0
        where there is no layered retina (step 5).
    """
    cfg = config or SurfaceConfig()
    nb, nd, nw = data.shape
    um_z, um_x = spacing[1] * 1000.0, spacing[2] * 1000.0
    fd = max(1, min(int(round(cfg.coarse_um / um_z)), nd // 32))
    fa = max(1, min(int(round(cfg.coarse_lateral_um / um_x)), nw // 8))
    lv0, lv1 = _levels(data)
    coarse = (_block_mean(data, fd, fa) - lv0) / (lv1 - lv0)
    cz = um_z * fd  # um per coarse sample
    sm = ndimage.gaussian_filter(coarse, (0, 1.0, 0.7), mode="nearest", truncate=2.5)
    rise, fall = _edges(sm)
    jump_c = max(1, int(np.ceil(cfg.max_slope * um_x * fa / cz)))
    zc = np.arange(sm.shape[1], dtype=np.float32)[None, :, None]

    def path(cost: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> np.ndarray:
        c = cost.copy()
        if lo is not None and hi is not None:
            hi = np.maximum(hi, lo + 1.0)  # never an empty column: the path would wander
        if lo is not None:
            c[zc < lo[:, None, :]] = BIG
        if hi is not None:
            c[zc > hi[:, None, :]] = BIG
        # search only the depths some column allows (the bounds make most of it BIG)
        z0 = 0 if lo is None else int(max(0, np.floor(lo.min())))
        z1 = c.shape[1] if hi is None else int(min(c.shape[1], np.ceil(hi.max()) + 1))
        z1 = max(z1, z0 + 1)
        p = shortest_path(c[:, z0:z1], jump_c, cfg.jump_cost).astype(np.float32) + z0
        return _median(p, cfg)

    # RPE band: a thin bright band (a thick bright RNFL near the disc flattens out in
    # this difference of Gaussians), with a strong fall within ~30 um below it
    line = cfg.rpe_line_um / cz
    wide = ndimage.gaussian_filter1d(sm, line, axis=1, mode="nearest", truncate=2.5)
    thin = np.clip(sm - wide, 0, None)
    below = ndimage.maximum_filter1d(fall, max(2, int(round(30 / cz))), axis=1, origin=-1)
    band = _unit(thin) * below
    # ILM: a rise with only dark vitreous above it (the running maximum of the
    # intensity above is low), so neither the EZ in the fovea nor a bright RNFL wins
    above = np.maximum.accumulate(sm, axis=1)
    vitreous = np.clip(1.0 - above / cfg.vitreous_level, 0.0, 1.0)
    ilm_cost = rise * vitreous
    # the step from blank padding at the top of the B-scan into the vitreous is no edge
    lead = _first_signal(data)
    first = (lead[:, (fa - 1) // 2 :: fa][:, : sm.shape[2]] // fd).astype(np.float32)
    ilm_cost[zc <= first[:, None, :] + 2] = 0.0
    ilm_c = path(-ilm_cost, None, None)
    # the RPE complex, bright with a fall below and some retina above; may pass under drusen
    outer = path(-band, ilm_c + cfg.min_retina_um / cz, None)
    # EZ: the strong rise from the dark ONL, lifted with the RPE over drusen
    ez_c = path(-rise, ilm_c + cfg.ilm_ez_um / cz, outer - cfg.ez_range_um[0] / cz)
    near_ez = _near_weight(zc - ez_c[:, None, :], cfg.rpe_near_um / cz)
    rpe_c = path(
        -_unit(sm) * near_ez, ez_c + cfg.ez_range_um[0] / cz, ez_c + cfg.ez_range_um[1] / cz
    )
    near = _near_weight(zc - rpe_c[:, None, :], cfg.bm_near_um / cz)
    bm_c = path(-fall * near, rpe_c + cfg.bm_range_um[0] / cz, rpe_c + cfg.bm_range_um[1] / cz)
    # OPL/ONL: a fall with the thick dark ONL below it (the INL below IPL is thinner)
    n_below = max(2, int(round(cfg.onl_um / cz)))
    below_mean = ndimage.uniform_filter1d(
        sm, n_below, axis=1, origin=-(n_below // 2), mode="nearest"
    )
    onl = np.clip(1.0 - below_mean / cfg.vitreous_level, 0.0, 1.0)
    opl_c = path(-(fall * onl), ilm_c + 2, ez_c - cfg.onl_um / cz)

    # fine pass on the full grid, narrow band around each coarse surface
    up = {
        k: _upsample(v * fd + (fd - 1) / 2.0, fa, nw)
        for k, v in (("ILM", ilm_c), ("OPL", opl_c), ("EZ", ez_c), ("RPE", rpe_c), ("BM", bm_c))
    }
    r = max(2, int(round(cfg.band_um / um_z)))
    jump_f = cfg.fine_jump
    out: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    for name, kind in (("ILM", "rise"), ("EZ", "rise"), ("RPE", "ridge"), ("BM", "fall"),
                       ("OPL", "fall")):  # fmt: skip
        centre = np.round(up[name]).astype(np.int64)
        score, idx = _fine_score(data, centre, r, kind, lv0, lv1)
        cost = -score
        if name == "RPE":  # the first bright band under the EZ (a druse's top, not its base)
            cost = cost * _near_weight(idx - out["EZ"][:, None, :], cfg.rpe_near_um / um_z)
        if name == "BM":  # the first strong fall under the RPE, not the choroid's
            cost = cost * _near_weight(idx - out["RPE"][:, None, :], cfg.bm_near_um / um_z)
        lo, hi = _fine_bounds(name, out, cfg, um_z)
        if lo is not None and hi is not None:
            hi = np.maximum(hi, lo + 1.0)
        if lo is not None:
            cost = np.where(idx < lo[:, None, :], BIG, cost)
        if hi is not None:
            cost = np.where(idx > hi[:, None, :], BIG, cost)
        # in band coordinates (flattened by the coarse surface, as Chiu et al. flatten
        # to the RPE): the path follows the coarse shape and may deviate by fine_jump
        # samples more per A-scan
        k = shortest_path(cost.astype(np.float32), jump_f, cfg.jump_cost)
        k = np.clip(k, 0, 2 * r)
        shift = 0.0 if kind == "ridge" else 0.5  # edges sit between samples j and j + 1
        out[name] = (subsample_peak(score, k) + (centre - r) + shift).astype(np.float32)
        scores[name] = np.take_along_axis(score, k[:, None], axis=1)[:, 0]
    bm = lower_envelope(  # at most bm_max_um under the RPE
        out["BM"], cfg.bm_smooth_um / um_x, cfg.bm_tolerance_um / um_z, cfg.bm_sigmas
    )
    bm = np.minimum(bm, out["RPE"] + cfg.bm_max_um / um_z)
    out["BM"] = np.where(np.isfinite(bm), np.maximum(bm, out["RPE"] + 1.0), out["BM"])
    out = _ordered(out, nd)
    if cfg.regions:  # no surface where there is no layered retina (oct/regions.py)
        top, disc = no_retina_masks(
            sm, first, ilm_c, rpe_c, cz, um_x * fa,
            top_level=cfg.top_level, top_margin_um=cfg.top_margin_um,
            disc_retina_um=cfg.disc_retina_um, disc_contrast=cfg.disc_contrast,
            disc_min_um=cfg.disc_min_um, keep_share=0.1,
        )  # fmt: skip
        cols = np.minimum(np.arange(nw) // fa, top.shape[1] - 1)
        top, disc = top[:, cols], disc[:, cols]
        # an ILM at the top of the window is the window's edge, not the retina's
        top |= out["ILM"] < lead + cfg.top_margin_um / um_z
        for name in SURFACES:
            out[name][top | (disc & (name != "ILM"))] = np.nan
            scores[name][top | (disc & (name != "ILM"))] = 0.0
    return out, scores


# ------------------------------------------------------------------------------ helpers


def _first_signal(data: np.ndarray) -> np.ndarray:
    """Per A-scan, the first sample below the leading run of blank samples (B, W) float32.

    Some exports pad the top of a B-scan with samples at exactly the minimum value; the
    step from that padding into the noise of the vitreous is no tissue edge. Only the top
    64 samples are searched (padding is a few rows); a blank A-scan gives the depth.
    """
    nd = data.shape[1]
    low = data.min()
    k = min(nd, 64)
    signal = data[:, :k] > low
    lead = np.where(signal.any(axis=1), np.argmax(signal, axis=1), k)
    lead = np.where(data.max(axis=1) <= low, nd, lead)
    return lead.astype(np.float32)


def _near_weight(distance: np.ndarray, scale: float) -> np.ndarray:
    """1 up to ``scale`` below the RPE, then falling as ``scale / distance`` (float32)."""
    return (scale / np.maximum(distance, scale)).astype(np.float32)


def _levels(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per B-scan 1st and 99.5th percentiles, float32 (B, 1, 1) each (hi > lo)."""
    flat = data[:, ::2, ::4].reshape(data.shape[0], -1)
    lo, hi = np.percentile(flat, [1, 99.5], axis=1).astype(np.float32)[:, :, None, None]
    return lo, np.maximum(hi, lo + np.float32(1e-6))


def _unit(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] after scaling by the 99.5th percentile of each B-scan."""
    hi = np.percentile(x[:, ::2, ::2].reshape(x.shape[0], -1), 99.5, axis=1)[:, None, None]
    return np.clip(x / np.maximum(hi, 1e-6), 0.0, 1.0).astype(np.float32)


def _edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Oriented axial gradients in [0, 1]: (rise, fall); g[j] between samples j and j + 1."""
    g = np.empty_like(x)
    g[:, :-1] = x[:, 1:] - x[:, :-1]
    g[:, -1] = 0.0
    return _unit(np.clip(g, 0, None)), _unit(np.clip(-g, 0, None))


def _block_mean(x: np.ndarray, fd: int, fa: int) -> np.ndarray:
    """Block means (B, D // fd, W // fa) (partial blocks at the end are dropped)."""
    nb, nd, nw = x.shape
    d, w = (nd // fd) * fd, (nw // fa) * fa
    out = x[:, 0:d:fd, 0:w].astype(np.float32, copy=True)
    for k in range(1, fd):  # strided adds are much faster than a mean over a reshape
        out += x[:, k:d:fd, 0:w]
    cols = out[:, :, 0:w:fa].copy()
    for k in range(1, fa):
        cols += out[:, :, k:w:fa]
    cols *= np.float32(1.0 / (fd * fa))
    return cols


def _upsample(h: np.ndarray, fa: int, nw: int) -> np.ndarray:
    """Coarse columns (centres k fa + (fa - 1) / 2) -> every A-scan, linearly."""
    centres = np.arange(h.shape[1]) * fa + (fa - 1) / 2.0
    pos = np.interp(np.arange(nw), centres, np.arange(h.shape[1]))
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, h.shape[1] - 1)
    w = (pos - i0).astype(np.float32)
    return (h[:, i0] * (1 - w) + h[:, i1] * w).astype(np.float32)


def _median(h: np.ndarray, cfg: SurfaceConfig) -> np.ndarray:
    size = (min(cfg.median_bscans, h.shape[0]), min(cfg.median_columns, h.shape[1]))
    return ndimage.median_filter(h, size=size, mode="nearest")


def _fine_score(
    x: np.ndarray, centre: np.ndarray, r: int, kind: str, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score (B, 2r + 1, W) in [0, 1] in a band around ``centre`` and its depth indices.

    The band (with a margin) is smoothed along depth and along the B-scan, then scored:
    ``ridge`` = intensity, ``rise`` / ``fall`` = the oriented gradient between sample j
    and j + 1.
    """
    m = 3
    win, idx = band_windows(x, centre, r + m)
    win = (win - lo) / (hi - lo)
    sz = 1.0
    win = ndimage.gaussian_filter(win, (0, sz, 1.5), mode="nearest", truncate=2.5)
    if kind == "ridge":
        score = win[:, m:-m]
    else:
        g = win[:, m + 1 : -m + 1] - win[:, m:-m]
        score = g if kind == "rise" else -g
    score = np.clip(score, 0, None)
    return _unit(score), idx[:, m:-m]


def _fine_bounds(
    name: str,
    done: dict[str, np.ndarray],
    cfg: SurfaceConfig,
    um_z: float,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Depth bounds of the fine search from the surfaces already found (samples)."""
    rpe, ez, ilm = done.get("RPE"), done.get("EZ"), done.get("ILM")
    if name == "ILM":
        return None, None
    if name == "EZ" and ilm is not None:
        return ilm + cfg.ilm_ez_um / um_z, None
    if name == "RPE" and ez is not None:
        return ez + cfg.ez_range_um[0] / um_z, ez + cfg.ez_range_um[1] / um_z
    if name == "BM" and rpe is not None:
        return rpe + cfg.bm_range_um[0] / um_z, rpe + cfg.bm_range_um[1] / um_z
    if name == "OPL" and "ILM" in done and "EZ" in done:
        return done["ILM"] + 2, done["EZ"] - cfg.onl_um / um_z
    return None, None


def _ordered(s: dict[str, np.ndarray], nd: int) -> dict[str, np.ndarray]:
    out = {}
    prev = None
    for name in SURFACES:
        h = np.clip(s[name], 0.0, float(nd))
        if prev is not None:
            h = np.maximum(h, prev + 0.5)
        out[name] = np.clip(h, 0.0, float(nd)).astype(np.float32)
        prev = out[name]
    return out
