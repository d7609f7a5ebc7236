"""Regions without a layered retina get no surfaces (NaN), a warning and a QC mark."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.oct import DetectConfig, Volume, detect_boundaries
from octvessel.oct.phantom import make_volume
from octvessel.oct.qc import write_qc
from octvessel.oct.quality import assess

# 8 B-scans x 200 samples x 160 A-scans, 18.75 um A-scans (3 mm), 4 um samples
GEOMETRY = dict(bscans=8, depth=200, ascans=160, field_mm=(0.4, 3.0), axial_um=4.0)
CUP = slice(60, 110)  # 50 A-scans = 940 um: wider than disc_min_um (500)


def _with_cup(seed: int = 0):
    """The phantom with a disc-like region: vitreous down to a deep, unlayered floor."""
    ph = make_volume(seed=seed, **GEOMETRY)
    data = ph.volume.data.copy()
    rng = np.random.default_rng(seed)
    vitreous = data[:, :10].mean()
    floor = int(np.nanmax(ph.boundaries["BM"])) + 5
    cup = data[:, :, CUP]
    cup[:] = vitreous + 0.02 * rng.standard_normal(cup.shape)
    cup[:, floor:] = 0.6 + 0.05 * rng.standard_normal(cup[:, floor:].shape)  # nerve tissue
    return ph, Volume(np.clip(data, 0, 1).astype(np.float32), ph.volume.spacing), floor


def test_a_disc_cup_has_an_ilm_but_no_outer_surfaces():
    ph, vol, floor = _with_cup()
    found = detect_boundaries(vol)
    inner = slice(CUP.start + 10, CUP.stop - 10)  # its edges are found within ~190 um
    for name in ("OPL", "EZ", "RPE", "BM"):
        assert np.isnan(found[name][:, inner]).all(), name
        outside = np.r_[0 : CUP.start - 15, CUP.stop + 15 : GEOMETRY["ascans"]]
        assert np.isfinite(found[name][:, outside]).all(), name
    # the ILM follows the cup's floor (its vertical walls are steeper than max_slope)
    assert np.median(np.abs(found["ILM"][:, inner] - (floor - 0.5))) < 1.0
    assert np.isfinite(found["ILM"]).all()
    q = assess(vol.data, found, vol.spacing)
    assert any(w.startswith("no RPE in") for w in q["warnings"]), q["warnings"]
    assert q["no_surface_ascans"]["no_rpe"] >= 8 * (inner.stop - inner.start)
    assert q["confidence"][:, inner].max() == 0.0


def test_regions_can_be_switched_off_and_a_plain_phantom_has_none():
    _, vol, _ = _with_cup()
    found = detect_boundaries(vol, DetectConfig(regions=False))
    assert all(np.isfinite(h).all() for h in found.values())
    ph = make_volume(seed=1, **GEOMETRY)
    assert all(np.isfinite(h).all() for h in detect_boundaries(ph.volume).values())


def test_a_retina_cut_off_at_the_top_gets_no_outer_surfaces():
    """Shift the retina up out of the window in some A-scans (as in wrap-around scans).

    The phantom's inner retina is too dim for the "tissue above the ILM" test (real
    scans: shared HeyexImport_valid.vol, tests/oct/test_oct_vendors.py), so what is checked
    here is that no RPE / BM is invented there.
    """
    ph = make_volume(seed=0, **GEOMETRY)
    data = ph.volume.data.copy()
    shift = int(np.nanmax(ph.boundaries["ILM"])) + 10
    cols = slice(0, 50)
    data[:, : data.shape[1] - shift, cols] = data[:, shift:, cols]
    data[:, data.shape[1] - shift :, cols] = data[:, -1:, cols]
    found = detect_boundaries(Volume(data, ph.volume.spacing))
    assert np.isnan(found["BM"][:, :40]).all() and np.isnan(found["RPE"][:, :40]).all()
    assert np.isfinite(found["BM"][:, 60:]).all() and np.isfinite(found["ILM"][:, 60:]).all()
    q = assess(data, found, ph.volume.spacing)
    assert any(w.startswith(("no retina in", "no RPE in")) for w in q["warnings"])


def test_qc_picture_with_regions_without_surfaces(tmp_path):
    _, vol, _ = _with_cup()
    found = detect_boundaries(vol)
    q = assess(vol.data, found, vol.spacing)
    out = write_qc(tmp_path / "x_qc.png", vol.data, found, q["confidence"], q["jump_map"],
                   vol.spacing, "cup")  # fmt: skip
    assert (tmp_path / "x_qc.png").stat().st_size > 10_000
    assert 0 <= out["fovea_bscan"] < vol.shape[0]


@pytest.mark.parametrize("fill", [0.0, 0.3])
def test_blank_ascans_get_no_surfaces(fill):
    ph = make_volume(seed=2, **GEOMETRY)
    data = ph.volume.data.copy()
    data[:, :, :3] = data.min() if fill == 0.0 else data[:, :, :3]  # blank margin (or not)
    found = detect_boundaries(Volume(data, ph.volume.spacing))
    assert np.isnan(found["ILM"][:, :3]).all() == (fill == 0.0)
    assert np.isfinite(found["ILM"][:, 5:]).all()  # the A-scans beside a blank one may go too
