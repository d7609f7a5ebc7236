"""Quality of detected surfaces: per-A-scan confidence, surface jumps, low-signal B-scans.

- Confidence (per A-scan, [0, 1]): the contrast of the RPE band against the vitreous,
  ``(I_RPE - median_vitreous) / sigma_vitreous`` with ``I_RPE`` the data smoothed over
  3 x 3 samples at the RPE and the vitreous the samples more than ``vitreous_um`` above
  the ILM in that B-scan (the rows above its highest ILM; robust sigma), on a log scale from ``contrast_low`` (0) to
  ``contrast_high`` (1). Measured: the shared Spectralis macula 20-120 (confidence 0.7-1),
  the project's phantom about 6 (0.38), a Spectralis .vol circle scan (noisier display
  scale) about 5 (0.3), uniform noise with no retina below 0.6 (0).
- Jumps: A-scans whose surface lies more than ``jump_um`` from the median of that surface
  over ``jump_window`` (B-scans x A-scans) -- a surface that left its layer.
- Low-signal B-scans: median confidence below ``low_signal`` x the volume's median.
- Unreliable volume: median confidence below ``min_confidence`` (noise, a blank or
  mostly empty scan).
- Regions without surfaces (NaN, :mod:`octvessel.oct.regions`): A-scans with no retina
  (tissue cut off at the top of the window, blank A-scans) and A-scans with no RPE (an
  optic-disc cup); counted in ``no_surface_ascans``, a warning each when more than
  ``jump_share`` of the A-scans. Confidence is 0 there; the volume's median confidence is
  taken over the A-scans with an RPE.

Each finding is one line in :func:`assess`'s ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig

__all__ = ["QualityConfig", "assess", "confidence_map"]


@dataclass(frozen=True)
class QualityConfig(JsonConfig):
    """Thresholds of :func:`assess` (see the module docstring)."""

    vitreous_um: float = 40.0
    contrast_low: float = 1.5
    contrast_high: float = 60.0
    jump_um: float = 40.0
    jump_window: tuple[int, int] = (5, 15)
    jump_share: float = 0.002
    low_signal: float = 0.5
    min_confidence: float = 0.15


def confidence_map(
    data: np.ndarray,
    surfaces: dict[str, np.ndarray],
    spacing: tuple[float, float, float],
    config: QualityConfig | None = None,
) -> np.ndarray:
    """Per-A-scan confidence, float32 (B, W) in [0, 1] (module docstring)."""
    cfg = config or QualityConfig()
    nb, nd, nw = data.shape
    um = spacing[1] * 1000.0
    ilm = np.nan_to_num(surfaces["ILM"], nan=float(nd))  # no ILM: no vitreous above it
    top = np.clip(np.floor(ilm - cfg.vitreous_um / um), 0, nd).astype(np.intp)
    # per B-scan vitreous: the rows above its highest ILM (less the margin), subsampled
    rows = np.percentile(top, 2, axis=1).astype(np.intp)
    level = np.zeros(nb, np.float32)
    sigma = np.ones(nb, np.float32)
    for b in range(nb):
        v = data[b, : rows[b] : 2, ::2].ravel()
        if v.size < 50:  # no vitreous: use the top tenth of the image
            v = data[b, : max(4, nd // 10)].ravel()
        med = np.median(v)
        level[b] = med
        sigma[b] = max(1.4826 * np.median(np.abs(v - med)), 1e-6 * (abs(med) + 1.0))
    has_rpe = np.isfinite(surfaces["RPE"])
    rpe = np.clip(np.round(np.where(has_rpe, surfaces["RPE"], 1.0)).astype(np.intp), 1, nd - 2)
    vals = sum(np.take_along_axis(data, (rpe + k)[:, None], axis=1)[:, 0] for k in (-1, 0, 1))
    vals = ndimage.uniform_filter1d(vals / 3.0, 3, axis=1, mode="nearest")
    contrast = (vals - level[:, None]) / sigma[:, None]
    span = np.log(cfg.contrast_high / cfg.contrast_low)
    with np.errstate(divide="ignore", invalid="ignore"):
        level01 = np.log(np.maximum(contrast, 1e-6) / cfg.contrast_low) / span
    return np.where(has_rpe, np.clip(level01, 0.0, 1.0), 0.0).astype(np.float32)


def _filled(h: np.ndarray) -> np.ndarray:
    """NaN entries take the nearest finite entry (all NaN: zeros)."""
    bad = ~np.isfinite(h)
    if not bad.any():
        return h
    if bad.all():
        return np.zeros_like(h)
    _, (ir, ic) = ndimage.distance_transform_edt(bad, return_indices=True)
    return h[ir, ic]


def assess(
    data: np.ndarray,
    surfaces: dict[str, np.ndarray],
    spacing: tuple[float, float, float],
    config: QualityConfig | None = None,
) -> dict[str, Any]:
    """Confidence, jump counts, low-signal B-scans and one-line warnings.

    Returns:
        ``{"confidence": float32 (B, W), "jumps": {name: count}, "jump_map": bool (B, W)
        (any surface jumps), "low_signal_bscans": [indices], "no_surface_ascans":
        {"no_retina": n, "no_rpe": n}, "median_confidence": float, "warnings": [str], "config": {...}}``.
    """
    cfg = config or QualityConfig()
    nb, nd, nw = data.shape
    conf = confidence_map(data, surfaces, spacing, cfg)
    um = spacing[1] * 1000.0
    warnings: list[str] = []
    has_rpe = np.isfinite(surfaces["RPE"])
    med_conf = float(np.median(conf[has_rpe])) if has_rpe.any() else 0.0
    if med_conf < cfg.min_confidence:
        warnings.append(
            f"surfaces are unreliable: median confidence {med_conf:.2f} < "
            f"{cfg.min_confidence} (no clear retina: noise, blank or mostly empty scan)"
        )
    jumps: dict[str, int] = {}
    jump_map = np.zeros((nb, nw), bool)
    size = (min(cfg.jump_window[0], nb), min(cfg.jump_window[1], nw))
    for name, h in surfaces.items():
        known = np.isfinite(h)
        local = ndimage.median_filter(_filled(h), size=size, mode="nearest")
        far = known & (np.abs(np.where(known, h, local) - local) > cfg.jump_um / um)
        jump_map |= far
        n = int(far.sum())
        jumps[name] = n
        if n > cfg.jump_share * h.size:
            warnings.append(
                f"{name}: {n} A-scans ({100.0 * n / h.size:.1f} %) lie more than "
                f"{cfg.jump_um:g} um from the local median ({size[0]} B-scans x {size[1]} "
                "A-scans): the surface jumps there"
            )
    no_retina = ~np.isfinite(surfaces["ILM"])
    no_rpe = ~has_rpe & ~no_retina
    regions = {"no_retina": int(no_retina.sum()), "no_rpe": int(no_rpe.sum())}
    if no_retina.sum() > cfg.jump_share * no_retina.size:
        warnings.append(
            f"no retina in {int(no_retina.sum())} A-scans ({100.0 * no_retina.mean():.1f} %): "
            "the tissue reaches the top of the scan window (wrap-around) or the A-scans are "
            "blank; no surfaces there (NaN)"
        )
    if no_rpe.sum() > cfg.jump_share * no_rpe.size:
        warnings.append(
            f"no RPE in {int(no_rpe.sum())} A-scans ({100.0 * no_rpe.mean():.1f} %): an "
            "optic-disc cup or tissue without outer retina; only the ILM there, OPL, EZ, RPE "
            "and BM left out (NaN)"
        )
    per_bscan = np.array(
        [np.median(c[k]) if k.any() else 0.0 for c, k in zip(conf, has_rpe, strict=True)]
    )
    low = [int(b) for b in np.flatnonzero(per_bscan < cfg.low_signal * max(med_conf, 1e-6))]
    if low and med_conf >= cfg.min_confidence:
        shown = ", ".join(str(b + 1) for b in low[:12]) + (" ..." if len(low) > 12 else "")
        warnings.append(
            f"low signal in {len(low)} of {nb} B-scans (median confidence below "
            f"{cfg.low_signal:g} x the volume's): B-scan {shown} (1-based); surfaces there "
            "are less reliable"
        )
    return {
        "confidence": conf,
        "jumps": jumps,
        "jump_map": jump_map,
        "low_signal_bscans": low,
        "no_surface_ascans": regions,
        "median_confidence": med_conf,
        "warnings": warnings,
        "config": cfg.to_dict(),
    }
