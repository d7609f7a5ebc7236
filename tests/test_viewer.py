"""The linked OCT viewer: payload shapes, page size, and a real headless-Chromium run."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.report import find_chromium, image_stats, viewer_selftest
from octvessel.report.viewer import ViewerData, viewer_html, viewer_payload


@pytest.fixture(scope="module")
def data():
    from octvessel.oct.enface import reconstruct_all
    from octvessel.oct.layers import detect_boundaries
    from octvessel.oct.phantom import make_volume

    ph = make_volume(seed=3)
    bd = detect_boundaries(ph.volume)
    efs = reconstruct_all(ph.volume, ("P1", "P3"), boundaries=bd)
    return ViewerData(
        bscans=ph.volume.data,
        spacing=ph.volume.spacing,
        enfaces={e.preset: e.image for e in efs},
        probabilities={e.preset: ph.coverage for e in efs},
        surfaces=dict(bd),
        slabs={e.preset: (e.slab.top, e.slab.bottom) for e in efs},
        warnings=["a QC warning"],
        fovea=tuple(ph.fovea),
    )


def test_payload_follows_the_volume(data):
    p = viewer_payload(data)
    b, d, w = data.bscans.shape
    assert p["n"] == b == len(p["bscans"]) and p["grid"] == [b, w]
    ow, od = p["bscan_px"]
    assert ow <= 512 and od <= 256
    assert set(p["surfaces"]) == set(data.surfaces)
    assert all(len(s) == b and len(s[0]) == ow for s in p["surfaces"].values())
    # vessel columns of a row are those whose probability passes the threshold
    row = b // 2
    cols = np.clip(((np.arange(ow) + 0.5) * w / ow).astype(int), 0, w - 1)
    want = np.flatnonzero(data.probabilities["P1"][row, cols] >= 0.5).tolist()
    assert p["vessels"]["P1"][row] == want and want
    # a 7 x 7 mm field is square whatever its grid
    ext = p["extent_mm"]
    assert ext["height"] == pytest.approx(b * data.spacing[0])
    assert ext["width"] == pytest.approx(w * data.spacing[2])


def test_a_141_bscan_page_stays_under_8_mb(data):
    assert data.bscans.shape[0] == 141
    html = viewer_html(data)
    assert len(html.encode()) <= 8 * 1024 * 1024
    assert "http://" not in html and "https://" not in html  # nothing fetched from a network


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on PATH (.ci/run installs it)")
def test_viewer_switches_bscans_in_headless_chromium(data, tmp_path):
    page = tmp_path / "viewer.html"
    page.write_text("<!DOCTYPE html><html lang=en><body>" + viewer_html(data) + "</body></html>")
    res = viewer_selftest(page, tmp_path / "viewer.png")
    assert res["errors"] == [] and res["console_errors"] == []
    assert res["steps"] >= 20 and res["changed"] == res["steps"]  # each switch redrew the B-scan
    assert res["key_moved"] and abs(res["click_row"] - int(0.4 * res["n"])) <= 1
    assert res["max_ms"] <= 50, res["times_ms"]
    stats = image_stats(tmp_path / "viewer.png")
    assert stats["colors"] > 200 and stats["non_white"] > 0.2


def test_report_of_a_reconstruction_folder_holds_the_viewer(tmp_path):
    from octvessel.data import write_image
    from octvessel.oct import read_volume, write_reconstructions
    from octvessel.oct.phantom import PhantomConfig, make_volume
    from octvessel.report import build_report, detect_kind

    ph = make_volume(PhantomConfig(bscans=24, depth=400, ascans=96), seed=1)
    np.save(tmp_path / "vol.npy", ph.volume.data)
    vol = read_volume(tmp_path / "vol.npy", spacing=ph.volume.spacing)
    out = tmp_path / "recon"
    info = write_reconstructions(vol, out, "vol", ("P1", "P3"))
    for name in info["images"]:
        write_image(out / "predictions" / f"{name.rsplit('.', 1)[0]}_prob.png", ph.coverage)
    assert detect_kind(out) == "oct"
    text = build_report(out)
    assert 'id="ov-viewer"' in text and text.count("data:image/jpeg") == 24
    assert '"overlays":{"P1"' in text
    if find_chromium() is not None:
        (out / "report.html").write_text(text)
        res = viewer_selftest(out / "report.html")
        assert res["errors"] == [] and res["changed"] == res["steps"] > 0
