"""octvessel.oct.layers: ILM / RPE / BM detection against phantom ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.errors import InputError, UsageError
from octvessel.oct import DetectConfig, Volume, detect_boundaries
from octvessel.oct.layers import DETECTED, boundary_errors
from octvessel.oct.phantom import make_volume

# 16 B-scans x 160 samples x 96 A-scans; 18 um A-scans, 4 um samples
PARAFOVEA = dict(bscans=16, depth=160, ascans=96, field_mm=(0.8, 1.75), axial_um=4.0)
FOVEA = dict(PARAFOVEA, field_mm=(1.6, 1.75), fovea=(0.5, 0.5))


@pytest.mark.parametrize("geometry", [PARAFOVEA, FOVEA], ids=["parafovea", "fovea"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detected_boundaries_match_the_truth(geometry, seed):
    ph = make_volume(seed=seed, **geometry)
    found = detect_boundaries(ph.volume)
    err = boundary_errors(found, ph.boundaries)
    for name in ("ILM", "RPE", "BM"):
        assert found[name].shape == (16, 96) and found[name].dtype == np.float32
        assert err[name]["median"] < 1.5, (name, err[name])  # the issue asks for < ~3 px
        assert err[name]["p95"] < 3.0, (name, err[name])
    for upper, lower in zip(DETECTED, DETECTED[1:], strict=False):
        assert (found[upper] < found[lower]).all(), (upper, lower)
    for name in ("OPL", "EZ"):  # the phantom's OPL/ONL and inner EZ edges
        assert err[name]["median"] < 1.0, (name, err[name])


def test_foveal_pit_is_followed():
    """In the pit the ILM lies deep; a detector taking the strongest rise would jump to the
    ellipsoid zone there."""
    ph = make_volume(seed=5, **FOVEA)
    found = detect_boundaries(ph.volume)
    r0, c0 = (int(round(v)) for v in ph.fovea)
    pit = (slice(max(r0 - 1, 0), r0 + 2), slice(c0 - 3, c0 + 4))
    thickness = ph.boundaries["RPE"] - ph.boundaries["ILM"]
    assert thickness[pit].mean() < 0.8 * np.median(thickness)  # there is a pit
    assert np.abs(found["ILM"][pit] - ph.boundaries["ILM"][pit]).max() < 3.0


def test_errors_are_measured_not_assumed():
    ph = make_volume(seed=0, **PARAFOVEA)
    shifted = {k: v + 6.0 for k, v in ph.boundaries.items()}
    err = boundary_errors(shifted, ph.boundaries)
    assert err["ILM"]["median"] == pytest.approx(6.0)
    # an upside-down volume must not pass as a retina
    flipped = Volume(ph.volume.data[:, ::-1].copy(), ph.volume.spacing)
    bad = boundary_errors(detect_boundaries(flipped), ph.boundaries)
    assert bad["ILM"]["median"] > 10


def test_single_bscan_and_gain_changes():
    ph = make_volume(seed=3, **PARAFOVEA)
    one = Volume(ph.volume.data[4:5], ph.volume.spacing)
    err = boundary_errors(detect_boundaries(one), {k: v[4:5] for k, v in ph.boundaries.items()})
    assert err["ILM"]["median"] < 1.5 and err["BM"]["median"] < 1.5
    # a strong brightness step between B-scans (display offset) changes nothing much
    data = ph.volume.data.copy()
    data[8:] = np.clip(data[8:] - 0.08, 0, 1)
    err2 = boundary_errors(detect_boundaries(Volume(data, ph.volume.spacing)), ph.boundaries)
    assert err2["RPE"]["median"] < 1.5


def test_too_small_and_bad_config():
    with pytest.raises(InputError, match="volume too small for layer detection"):
        detect_boundaries(Volume(np.zeros((2, 20, 50), np.float32), (1, 1, 1)))
    with pytest.raises(UsageError, match="median_bscans"):
        DetectConfig(median_bscans=0)
    with pytest.raises(UsageError, match="band_um"):
        DetectConfig(band_um=0)
