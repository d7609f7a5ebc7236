"""octvessel.oct.enface: slabs, reducers, normalisation, grids, vessel contrast."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.errors import InputError, UsageError
from octvessel.oct import EnFaceConfig, Slab, Volume, reconstruct, reconstruct_all, to_native_grid
from octvessel.oct.enface import (
    normalize_stripes,
    parse_variant,
    resample_rows,
    resolve_boundaries,
    vessel_contrast,
)
from octvessel.oct.phantom import make_volume

RAW = EnFaceConfig(normalize=False, percentiles=(0.0, 100.0))


def _ramp(nb: int = 4, nd: int = 50, na: int = 10) -> Volume:
    """data[b, z, a] = z, with ILM at 9.5 (first voxel 10) and RPE at 19.5 (last voxel 19)."""
    data = np.broadcast_to(np.arange(nd, dtype=np.float32)[None, :, None], (nb, nd, na)).copy()
    b = {
        "ILM": np.full((nb, na), 9.5, np.float32),
        "RPE": np.full((nb, na), 19.5, np.float32),
        "BM": np.full((nb, na), 24.5, np.float32),
    }
    return Volume(data, (0.05, 0.005, 0.02), boundaries=b)


def test_slab_reducers_are_exact():
    v = _ramp()
    assert np.allclose(reconstruct(v, "P1", RAW).raw, 24.5)  # mean of 0..49
    assert np.allclose(reconstruct(v, "P2", RAW).raw, 14.5)  # mean of 10..19
    for spec, expected in (
        ("ILM:RPE:sum", sum(range(10, 20))),
        ("ILM:RPE:max", 19),
        ("ILM:RPE:min", 10),
        ("ILM:RPE:median", 14.5),
        ("ILM+10:RPE+10", 16.5),  # 10 um = 2 samples deeper: 12..21
        ("top:ILM", 4.5),  # 0..9
        ("RPE:bottom:max", 49),
    ):
        assert np.allclose(reconstruct(v, spec, RAW).raw, expected), spec
    # shadow: the 60 um (12 samples) above the RPE: voxels 8..19
    assert np.allclose(reconstruct(v, "P3", RAW).raw, np.mean(np.arange(8, 20)))
    assert np.allclose(reconstruct(v, "shadow", EnFaceConfig(shadow_um=20, **_raw())).raw, 17.5)


def _raw() -> dict:
    return {"normalize": False, "percentiles": (0.0, 100.0)}


def test_variant_names_and_specs():
    assert parse_variant("p3")[1] == Slab("RPE", "RPE", top_um=-60.0)
    assert parse_variant("retina") == ("retina", Slab("ILM", "RPE"))
    assert parse_variant("ilm+20:rpe-10um:MAX") == ("slab", Slab("ILM", "RPE", 20.0, -10.0, "max"))
    with pytest.raises(UsageError, match="expected one of: P1, P2, P3, full, retina, shadow"):
        parse_variant("P4")
    with pytest.raises(UsageError, match="reducer='mode' is not valid; expected one of: mean"):
        parse_variant("ILM:RPE:mode")
    with pytest.raises(UsageError, match="percentiles"):
        EnFaceConfig(percentiles=(50, 10))
    with pytest.raises(UsageError, match="boundaries='guess' is not valid"):
        EnFaceConfig(boundaries="guess")


def test_crossing_missing_and_empty_slabs_are_refused():
    v = _ramp()
    with pytest.raises(InputError, match="boundaries BM and ILM cross"):
        reconstruct(v, "BM:ILM", RAW)
    with pytest.raises(UsageError, match="is empty in 100% of the A-scans"):
        reconstruct(v, "ILM+200:RPE", RAW)
    bare = Volume(v.data, v.spacing)
    with pytest.raises(InputError, match="the file has no ILM, RPE boundary"):
        reconstruct(bare, "P2", EnFaceConfig(boundaries="file"))
    with pytest.raises(InputError, match="volume too small for an en-face image"):
        reconstruct(Volume(v.data[:1], v.spacing), "P1")


def test_boundary_source_selection():
    ph = make_volume(seed=2, bscans=12, depth=160, ascans=64, field_mm=(0.6, 1.2), axial_um=4.0)
    truth = ph.with_truth()
    assert resolve_boundaries(truth, ["ILM", "RPE"])[1] == "file"
    assert resolve_boundaries(truth, ["ILM", "RPE"], "detect")[1] == "detected"
    assert resolve_boundaries(ph.volume, ["ILM", "RPE"])[1] == "detected"
    gappy = dict(ph.boundaries)
    gappy["RPE"] = gappy["RPE"].copy()
    gappy["RPE"][3, 10:20] = np.nan  # a file segmentation with a gap
    filled, source = resolve_boundaries(ph.volume.with_boundaries(gappy), ["RPE"])
    assert source == "file" and np.isfinite(filled["RPE"]).all()
    assert np.abs(filled["RPE"][3, 10:20] - ph.boundaries["RPE"][3, 10:20]).max() < 3


def test_normalisation_removes_bscan_and_column_stripes():
    rng = np.random.default_rng(0)
    h, w = 60, 90
    yy, xx = np.mgrid[0:h, 0:w]
    vessel = (np.abs(yy - 0.6 * xx - 5) < 1.5) | ((np.abs(yy - 40) < 1.2) & (xx > 50))
    clean = 0.5 + 0.1 * yy / h + 0.02 * rng.standard_normal((h, w)) - 0.2 * vessel
    striped = clean + rng.normal(0, 0.1, (h, 1)) + rng.normal(0, 0.05, (1, w))
    out = normalize_stripes(striped)
    bg = ~vessel

    def row_jumps(img):  # row-to-row changes of the background level
        return np.diff([np.median(img[i][bg[i]]) for i in range(h)]).std()

    assert row_jumps(striped) > 0.1 and row_jumps(out) < 0.02
    assert np.diff(out[bg.all(axis=1)].mean(axis=0)).std() < 0.02  # columns too
    # vessels survive (also the one along row 40), the slow vertical trend too
    c_clean, c_out = (vessel_contrast(x, vessel)["cnr"] for x in (clean, out))
    assert c_out > 0.8 * c_clean > 4 * vessel_contrast(striped, vessel)["cnr"]
    assert np.median(out[50, bg[50]]) - np.median(out[5, bg[5]]) == pytest.approx(0.075, abs=0.03)


def test_isotropic_grid_and_mapping_back():
    v = Volume(
        np.random.default_rng(1).random((141, 40, 385), dtype=np.float32),
        (7 / 141, 0.0031, 7 / 385),
    )
    e = reconstruct(v, "P1", EnFaceConfig(isotropic=True))
    assert e.image.shape == (385, 385) and e.native_shape == (141, 385)
    assert e.spacing == pytest.approx((7 / 385, 7 / 385))
    smooth = np.add.outer(np.sin(np.linspace(0, 3, 141)), np.cos(np.linspace(0, 2, 385)))
    back = to_native_grid(resample_rows(smooth, 385), e.native_shape)
    assert back.shape == (141, 385) and np.abs(back - smooth).max() < 0.01
    with pytest.raises(UsageError, match="columns"):
        to_native_grid(np.zeros((385, 300)), (141, 385))


def test_stretch_and_uint8():
    v = _ramp()
    e = reconstruct(v, "ILM:RPE", EnFaceConfig(normalize=False))
    assert e.image.dtype == np.float32 and 0 <= e.image.min() and e.image.max() <= 1
    assert e.to_uint8().dtype == np.uint8
    assert e.meta["stretch"]["percentiles"] == [0.5, 99.5]


def test_shadow_variant_shows_vessels_with_more_contrast_than_full_depth():
    """Weber contrast (background - vessel) / background of the normalised projections."""
    contrasts = {"P1": [], "P2": [], "P3": []}
    cnr3 = []
    for seed in range(3):
        ph = make_volume(
            seed=seed, bscans=24, depth=160, ascans=128, field_mm=(1.2, 2.33), axial_um=4.0
        )
        for e in reconstruct_all(ph.volume, ("P1", "P2", "P3")):
            c = vessel_contrast(normalize_stripes(e.raw), ph.vessels)
            contrasts[e.preset].append(c["contrast"])
            if e.preset == "P3":
                cnr3.append(c["cnr"])
    mean = {k: float(np.mean(v)) for k, v in contrasts.items()}
    assert mean["P1"] > 0.05  # vessels are dark in every variant
    assert mean["P3"] > 1.2 * mean["P1"], mean
    assert min(cnr3) > 2.0  # and clearly visible above the speckle
