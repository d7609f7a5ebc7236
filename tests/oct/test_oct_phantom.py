"""octvessel.oct.phantom, the vessel-tree extension it uses, and the two CLI verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octvessel.cli import main
from octvessel.data import load_dataset, read_mask
from octvessel.errors import UsageError
from octvessel.oct import read_volume
from octvessel.oct.phantom import PhantomConfig, make_volume, write_dataset
from octvessel.sim.vessels import VesselTreeConfig, vessel_geometry, vessel_tree

SMALL = dict(bscans=16, depth=160, ascans=96, field_mm=(0.8, 1.75), axial_um=4.0)
ORDER = ("ILM", "RNFL", "GCL", "IPL", "INL", "OPL", "ELM", "EZ", "RPE", "BM")


def test_phantom_is_deterministic_and_well_formed():
    a = make_volume(seed=7, **SMALL)
    b = make_volume(seed=7, **SMALL)
    c = make_volume(seed=8, **SMALL)
    np.testing.assert_array_equal(a.volume.data, b.volume.data)
    np.testing.assert_array_equal(a.vessels, b.vessels)
    assert not np.array_equal(a.volume.data, c.volume.data)
    v = a.volume
    assert v.shape == (16, 160, 96) and v.data.dtype == np.float32
    assert 0.0 <= v.data.min() and v.data.max() <= 1.0
    assert v.spacing == pytest.approx((0.05, 0.004, 1.75 / 96))
    assert v.boundaries == {} and v.laterality in ("OD", "OS")
    assert a.vessels.shape == (16, 96) and a.vessels.dtype == bool
    assert 0.03 < a.vessels.mean() < 0.4
    d = a.diameter_um[a.vessels] / 18.2  # in A-scans: about 1 to 8 wide
    assert d.max() <= 2 * 62 * 1.1 / 18.2 + 0.1 and d.min() >= 1.0
    for upper, lower in zip(ORDER, ORDER[1:], strict=False):
        assert (a.boundaries[upper] <= a.boundaries[lower] + 1e-4).all(), (upper, lower)


def test_layers_look_like_a_macula():
    ph = make_volume(
        seed=1,
        bscans=16,
        depth=160,
        ascans=96,
        field_mm=(1.6, 1.75),
        axial_um=4.0,
        fovea=(0.5, 0.5),
    )
    data, bd = ph.volume.data, ph.boundaries
    z = np.arange(160)[None, :, None]

    def layer_mean(top, bottom):
        m = (z >= bd[top][:, None, :] + 1) & (z < bd[bottom][:, None, :] - 1)
        return float(data[m].mean())

    vitreous = float(data[z < bd["ILM"][:, None, :] - 2].mean())
    rpe = layer_mean("RPE", "BM")
    assert rpe > layer_mean("ILM", "RNFL") > layer_mean("OPL", "ELM") > vitreous  # RPE > RNFL > ONL
    assert layer_mean("IPL", "INL") < layer_mean("GCL", "IPL")  # INL darker than IPL
    thickness = (bd["BM"] - bd["ILM"]) * 4.0  # micrometres
    r, c = (int(round(v)) for v in ph.fovea)
    assert 180 < thickness[r, c] < 260 < np.percentile(thickness, 90) < 360  # foveal pit


def test_vessels_cast_shadows_down_to_the_rpe():
    ph = make_volume(seed=2, **SMALL)
    data, bd = ph.volume.data, ph.boundaries
    z = np.arange(160)[None, :, None]
    slab = (z >= bd["EZ"][:, None, :]) & (z < bd["BM"][:, None, :])
    outer = np.where(slab, data, np.nan)
    level = np.nanmean(outer, axis=1)  # (B, A) outer-retina brightness
    big = ph.diameter_um > 60
    assert big.sum() > 20
    far = ~ph.vessels
    assert np.median(level[big]) < np.median(level[far]) - 0.1


def test_realistic_phantom_has_the_dark_side_edges_of_real_scans():
    from octvessel.oct.phantom_config import REALISTIC

    plain = make_volume(seed=3, **SMALL).volume.data
    real = make_volume(seed=3, **SMALL, **REALISTIC).volume.data
    assert PhantomConfig().edge_falloff_db == 0  # the default phantom is unchanged
    # mean display level per A-scan between ILM and BM (the retina)
    ph = make_volume(seed=3, **SMALL)
    z = np.arange(plain.shape[1])[None, :, None]
    retina = (z >= ph.boundaries["ILM"][:, None, :]) & (z < ph.boundaries["BM"][:, None, :])
    col = lambda d: np.nanmean(np.where(retina, d, np.nan), axis=(0, 1))  # noqa: E731
    p, r = col(plain), col(real)
    mid = slice(30, 66)  # 0.55 mm and more from the sides (falloff <= 0.17 mm)
    assert abs(r[mid].mean() - p[mid].mean()) < 0.03
    assert r[0] < p[0] - 0.15 and r[-1] < p[-1] - 0.15


def test_config_is_validated():
    with pytest.raises(UsageError, match="bscans=1 is not valid"):
        PhantomConfig(bscans=1)
    with pytest.raises(UsageError, match="laterality='up'"):
        PhantomConfig(laterality="up")
    with pytest.raises(UsageError, match="the retina does not fit in 100 samples"):
        make_volume(depth=100)
    with pytest.raises(UsageError, match="unknown option"):
        make_volume(colour="red")


def test_vessel_tree_api_is_unchanged_and_geometry_matches():
    cfg = VesselTreeConfig(height=96, width=128, root_radius=2.5)
    coverage, radius = vessel_tree(cfg, seed=4)
    g = vessel_geometry(cfg, seed=4)
    np.testing.assert_array_equal(g.coverage, coverage)
    np.testing.assert_array_equal(np.where(coverage > 0, g.radius, 0), radius)
    assert (g.distance[coverage >= 0.5] <= g.radius[coverage >= 0.5] + 1.0).all()
    # an avoided zone stays free of vessels
    zone = VesselTreeConfig(height=128, width=128, disc=(0.5, 0.02), avoid=(0.5, 0.5, 0.15))
    cov, rad = vessel_tree(zone, seed=1)
    yy, xx = np.mgrid[0:128, 0:128]
    inside = np.hypot(yy - 64, xx - 64) < 0.15 * 128 - rad.max() - 1
    assert cov.sum() > 100 and cov[inside].max() == 0


def test_dataset_reads_as_cavri_and_matches_the_phantoms(tmp_path):
    cfg = PhantomConfig(**SMALL)
    info = write_dataset(tmp_path / "ds", n=2, seed=5, config=cfg)
    for variant in ("P1", "P2", "P3"):
        samples = load_dataset(tmp_path / "ds", variant=variant)
        assert [s.name for s in samples] == ["phantom_000", "phantom_001"]
        s = samples[0]
        assert s.image.shape == (16, 96, 1) and s.label.shape == (16, 96) and s.fov.all()
        assert s.spacing == pytest.approx((0.05, 1.75 / 96))
    vol = read_volume(tmp_path / "ds" / "volumes" / "phantom_000.npz")
    assert vol.shape == (16, 160, 96) and {"ILM", "RPE", "BM"} <= set(vol.boundaries)
    seed0 = info["samples"][0]["seed"]
    again = make_volume(cfg, seed=seed0)
    np.testing.assert_array_equal(
        read_mask(tmp_path / "ds" / "manual" / "phantom_000_fundus_ref.bmp"), again.vessels
    )
    assert np.abs(vol.data - again.volume.data).max() <= 0.5 / 255 + 1e-6
    stats = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert (
        stats["format"] == "cavri"
        and stats["samples"][0]["boundary_error_px"]["RPE"]["median"] < 1.5
    )
    with pytest.raises(Exception, match="exists already"):
        write_dataset(tmp_path / "ds", n=2, seed=5, config=cfg)


def test_cli_phantom_then_reconstruct(tmp_path, capsys):
    ds = tmp_path / "ds"
    args = [
        "phantom",
        "-o",
        str(ds),
        "-n",
        "1",
        "--shape",
        "16,160,96",
        "--field-mm",
        "0.8,1.75",
        "--axial-um",
        "4",
    ]
    assert main(args) == 0
    assert main(args) == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    out = tmp_path / "rec"
    vols = str(ds / "volumes")
    assert (
        main(["reconstruct", "-i", vols, "-o", str(out), "--boundaries", "detect", "--isotropic"])
        == 0
    )
    side = json.loads((out / "phantom_000_enface.json").read_text())
    assert (
        side["grid"] == "isotropic" and side["native_shape"] == [16, 96] and side["shape"][1] == 96
    )
    assert side["boundaries"]["source"] == "detected"
    assert sorted(side["images"]) == [f"phantom_000_fundus_P{i}.bmp" for i in (1, 2, 3)]
    assert (out / "phantom_000_boundaries.npz").is_file()
    capsys.readouterr()
    assert main(["reconstruct", "-i", vols, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and len(err.strip().splitlines()) == 1
    assert main(["reconstruct", "-i", vols, "-o", str(out), "--variant", "P7"]) == 2
    assert "expected one of: P1, P2, P3" in capsys.readouterr().err
    assert main(["reconstruct", "-i", str(tmp_path / "none.npy"), "-o", str(out)]) == 2
    custom = ["reconstruct", "-i", vols, "-o", str(tmp_path / "c"), "--variant", "ILM:BM:max,full"]
    assert main(custom) == 0
    assert (tmp_path / "c" / "phantom_000_fundus_slab1.bmp").is_file()
    # the same volume as an Avanti raw export (A-scans x depth per B-scan, no header)
    vol = read_volume(ds / "volumes" / "phantom_000.npz")
    raw = tmp_path / "scan.OCT"
    np.ascontiguousarray(vol.data.transpose(0, 2, 1)).astype("<f4").tofile(raw)
    capsys.readouterr()
    raw_args = ["reconstruct", "-i", str(raw), "-o", str(tmp_path / "r"), "--ascans", "96"]
    assert main([*raw_args, "--depth", "160"]) == 0
    captured = capsys.readouterr()
    assert "note: scan.OCT: 16 B-scans; the Avanti 3D Retina scan has 141" in captured.err
    assert "boundaries detected" in captured.out
    side = json.loads((tmp_path / "r" / "scan_enface.json").read_text())
    assert side["spacing_source"] == "assumed" and side["format"] == "avanti"
    assert main([*raw_args, "--depth", "150"]) == 2
    err = capsys.readouterr().err
    assert "do not fit B-scans of 96 A-scans x 150 depth" in err and len(err.splitlines()) == 1
