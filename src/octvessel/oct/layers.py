"""Layer boundaries of a retinal OCT volume.

:func:`detect_boundaries` finds ILM, OPL, EZ, RPE and BM by graph search
(:mod:`octvessel.oct.surfaces`, the method and the surfaces' definitions are there).

:func:`detect_boundaries_peak` is the earlier detector (kept for comparison in
benchmarks/reconstruct.py): ILM, RPE (its inner side) and BM from gradient peaks. On the
real Spectralis volume its "RPE" sits on the ellipsoid zone (median error 8.9 px).

The peak detector lives in :mod:`octvessel.oct.peak_layers` (re-exported here). Depths
are in samples with the voxel-centre convention of :mod:`octvessel.oct.volume`.
"""

from __future__ import annotations

import numpy as np

from octvessel.errors import InputError
from octvessel.oct.peak_layers import PeakConfig, detect_boundaries_peak
from octvessel.oct.surfaces import SURFACES, SurfaceConfig, find_surfaces
from octvessel.oct.volume import MIN_DEPTH, Volume

#: Parameters of :func:`detect_boundaries`.
DetectConfig = SurfaceConfig

__all__ = [
    "DETECTED",
    "DetectConfig",
    "MIN_DEPTH",
    "PeakConfig",
    "boundary_errors",
    "detect_boundaries",
    "detect_boundaries_peak",
]

DETECTED = SURFACES


def detect_boundaries(
    volume: Volume, config: SurfaceConfig | None = None, scores: dict | None = None
) -> dict[str, np.ndarray]:
    """Detect ILM, OPL, EZ, RPE and BM in every A-scan by graph search.

    Args:
        volume: a :class:`~octvessel.oct.volume.Volume` (B-scans x depth x A-scans,
            brighter = more reflective).
        config: :class:`~octvessel.oct.surfaces.SurfaceConfig`.
        scores: when a dict is given, it receives the normalised edge strength (B, W) in
            [0, 1] of each surface (for confidence maps).

    Returns:
        name -> float32 (B-scans, A-scans) depth in samples, ILM < OPL < EZ < RPE < BM;
        NaN where there is no layered retina (:mod:`octvessel.oct.regions`: all five
        where the tissue is cut off at the top or the A-scan is blank, all but the ILM
        where there is no RPE, as in an optic-disc cup; ``regions=False`` turns it off).

    Raises:
        InputError: a volume too small to hold a retina.
    """
    _check_size(volume)
    found, sc = find_surfaces(volume.data, volume.spacing, config)
    if scores is not None:
        scores.update(sc)
    return found


def _check_size(volume: Volume) -> None:
    nb, nd, na = volume.data.shape
    if nd < MIN_DEPTH or na < 4:
        raise InputError(
            f"volume too small for layer detection: {nb} x {nd} x {na} (B-scans x depth x "
            f"A-scans); expected at least {MIN_DEPTH} depth samples and 4 A-scans",
            volume.path,
        )
    lo, hi = float(volume.data.min()), float(volume.data.max())
    if hi - lo <= 1e-6 * max(abs(hi), 1.0):
        raise InputError(
            f"volume is constant (every voxel {lo:g}): there is no retina to find layers in",
            volume.path,
        )


def boundary_errors(
    detected: dict[str, np.ndarray], truth: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Absolute depth errors (samples) of each boundary in both: median, p95, max, mean.

    A-scans where the truth is NaN are left out.
    """
    out = {}
    for name in detected:
        if name not in truth:
            continue
        err = np.abs(detected[name] - truth[name])
        err = err[np.isfinite(err)]
        if err.size == 0:
            continue
        out[name] = {
            "median": float(np.median(err)),
            "p95": float(np.percentile(err, 95)),
            "max": float(err.max()),
            "mean": float(err.mean()),
            "n": int(err.size),
        }
    return out
