"""Heidelberg .vol / HEYEX-XML through eyepy, on the real and fixture files in shared/data."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from octvessel.errors import InputError
from octvessel.oct import detect_boundaries, read_volume, reconstruct
from octvessel.oct.layers import boundary_errors
from octvessel.oct.quality import assess


def test_missing_eyepy_gives_one_line_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "eyepy", None)  # makes `import eyepy` fail
    (tmp_path / "scan.vol").write_bytes(b"HSF-OCT-103 ")
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path / "scan.vol")
    msg = str(exc.value)
    assert "pip install octvessel[oct]" in msg and "scan.vol" in msg and "\n" not in msg


def test_real_spectralis_circle_scans(oct_dir):
    pytest.importorskip("eyepy")
    for name, scale in (("HeyexImport_valid", 0.017891), ("retimat_onh", 0.015613)):
        v = read_volume(oct_dir / "heidelberg_vol" / f"{name}.vol")
        assert v.shape == (1, 496, 768)
        assert v.spacing[1] == pytest.approx(0.0038717, rel=1e-4)
        assert v.spacing[2] == pytest.approx(scale, rel=1e-4)
        assert v.laterality == "OD" and v.meta["scan_pattern"] == "circle"
        assert {"ILM", "BM"} <= set(v.boundaries)
        assert 0.0 <= v.data.min() and v.data.max() <= 1.0 and v.data.std() > 0.05
        with pytest.raises(InputError, match="volume too small for an en-face image"):
            reconstruct(v, "P1")


def test_detected_boundaries_agree_with_heidelbergs_on_a_real_scan(oct_dir):
    """retimat_onh: a healthy peripapillary circle scan with the device's ILM and BM."""
    pytest.importorskip("eyepy")
    v = read_volume(oct_dir / "heidelberg_vol" / "retimat_onh.vol")
    err = boundary_errors(detect_boundaries(v), v.boundaries)
    # measured (graph search): ILM median 0.95 px, p95 1.8 px (3.9 um per px)
    assert err["ILM"]["median"] < 1.0 and err["ILM"]["p95"] < 4.0


def test_detected_bm_agrees_with_heidelbergs_on_a_circle_scan(oct_dir):
    """BM on the same scan: the issue's target is a median of at most 1.5 px."""
    pytest.importorskip("eyepy")
    v = read_volume(oct_dir / "heidelberg_vol" / "retimat_onh.vol")
    err = boundary_errors(detect_boundaries(v), v.boundaries)
    # measured: BM median 0.94 px, p95 1.9 px (before the thin-band RPE search and the
    # local BM fit: 5.2 / 51 px, the surfaces left the RPE near the thick nasal RNFL)
    assert err["BM"]["median"] < 1.5 and err["BM"]["p95"] < 4.0


def _heyex_import(oct_dir):
    pytest.importorskip("eyepy")
    v = read_volume(oct_dir / "heidelberg_vol" / "HeyexImport_valid.vol")
    return v, detect_boundaries(v)


def test_disc_scan_reports_the_regions_without_surfaces(oct_dir):
    """HeyexImport_valid: a deep disc cup, the retina cut off at the top (wrap-around)."""
    v, found = _heyex_import(oct_dir)
    no_retina = ~np.isfinite(found["ILM"][0])
    no_rpe = ~np.isfinite(found["RPE"][0]) & ~no_retina
    # the device has no ILM where the retina leaves the window: neither have we
    device_none = ~np.isfinite(v.boundaries["ILM"][0])
    assert no_retina[device_none].mean() > 0.9
    assert no_rpe[300:500].all()  # the cup floor: no RPE, only the ILM
    assert np.isfinite(found["ILM"][0, 250:600]).all()
    q = assess(v.data, found, v.spacing)
    assert any(w.startswith("no RPE in") for w in q["warnings"])
    assert any(w.startswith("no retina in") for w in q["warnings"])
    err = boundary_errors(found, v.boundaries)  # scored where both have the surface
    # measured: ILM median 1.36 px over 413 A-scans (was 176 px on the padding edge)
    assert err["ILM"]["n"] > 350 and err["ILM"]["median"] < 2.0


@pytest.mark.xfail(
    reason="HeyexImport_valid: ILM median 1.36 px (122 A-scans on the temporal cup wall "
    "median 36 px: ours follows a sheet of tissue over the wall, the device a deeper rise; "
    "the other 291 at 0.85 px, the ~1 px convention offset seen on both .vol files); BM "
    "8 px over the 116 A-scans on the cup walls, where the device interpolates its BM "
    "through the disc (23% of its points on an image edge, 57% on retimat_onh); "
    "docs/oct.md",
    strict=True,
)
def test_disc_scan_meets_the_issue_targets(oct_dir):
    v, found = _heyex_import(oct_dir)
    err = boundary_errors(found, v.boundaries)
    assert err["ILM"]["median"] <= 1.0 and err["BM"]["median"] <= 1.5


def test_fixture_vol_and_xml_volumes(oct_dir):
    pytest.importorskip("eyepy")
    fx = oct_dir / "eyepy_fixtures"
    vol = read_volume(fx / "heyex_vol" / "test_volume.vol")
    assert vol.shape == (10, 40, 50) and vol.laterality == "OD"
    assert vol.spacing == pytest.approx((0.0314444, 0.003872, 0.011819), rel=1e-4)
    xml_dir = fx / "heyex_xml" / "test_volume"
    xml = read_volume(xml_dir)  # the export folder
    assert xml.meta["format"] == "xml" and xml.shape == (10, 40, 50)
    assert {"ILM", "RPE", "BM"} <= set(xml.boundaries)
    same = read_volume(xml_dir / "test_dummy.xml")  # or its .xml file
    np.testing.assert_array_equal(same.data, xml.data)
    # the file's own boundaries (with NaN gaps) drive the slabs
    e = reconstruct(xml, "P2")
    assert e.image.shape == (10, 50) and e.meta["boundary_source"] == "file"


def test_corrupt_vol_is_an_input_error(tmp_path):
    pytest.importorskip("eyepy")
    (tmp_path / "broken.vol").write_bytes(b"HSF-OCT-103 " + b"\x00" * 100)
    with pytest.raises(InputError, match="cannot read Heidelberg .vol file"):
        read_volume(tmp_path / "broken.vol")
