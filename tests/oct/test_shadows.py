"""octvessel.oct.shadows: the weak vessel map from vessel shadows."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.errors import InputError, UsageError
from octvessel.metrics import auc_roc
from octvessel.oct import detect_boundaries
from octvessel.oct.phantom import make_volume
from octvessel.oct.shadows import (
    ShadowConfig,
    border_share,
    load_surfaces,
    robust_z,
    shadow_depth,
    shadow_map,
    weak_mask,
    weak_training_label,
)
from octvessel.oct.volume import Volume

# a 2.4 x 3.5 mm piece of the default phantom's grid (50 um x 18 um pixels)
SMALL = dict(bscans=48, depth=256, ascans=192, field_mm=(2.4, 3.5), axial_um=3.1)


@pytest.fixture(scope="module")
def phantom():
    return make_volume(seed=5, **SMALL)


def test_shadow_map_finds_the_phantom_vessels(phantom):
    truth = phantom.vessels
    assert 0.03 < truth.mean() < 0.4
    for surfaces in (phantom.boundaries, detect_boundaries(phantom.volume)):
        sm = shadow_map(phantom.volume, surfaces)
        assert auc_roc(sm.depth, truth) > 0.9
        # the weak mask is mostly vessel, and finds a good part of them
        precision = (sm.mask & truth).sum() / max(sm.mask.sum(), 1)
        recall = (sm.mask & truth).sum() / truth.sum()
        assert precision > 0.7 and recall > 0.3, (precision, recall)


def test_weak_training_label_is_right_where_it_counts(phantom):
    truth = phantom.vessels
    sm = shadow_map(phantom.volume, detect_boundaries(phantom.volume))
    label, region = weak_training_label(sm)
    assert label.dtype == bool and region.shape == label.shape == truth.shape
    assert np.array_equal(label, sm.mask) and not (label & ~region).any()
    # it leaves the unsure pixels out: the weak mask's edges and faint shadows
    assert 0.3 < region.mean() < 0.8
    # inside the region the weak label is mostly right, vessel and background alike
    accuracy = (label == truth)[region].mean()
    background = (~label & region).sum()
    assert accuracy > 0.9 and (truth & ~label & region).sum() / background < 0.05
    # a stricter negative bound keeps fewer background pixels; one above the threshold is refused
    _, tight = weak_training_label(sm, negative_z=-0.5)
    assert tight.sum() < region.sum() and not (tight & ~region).any()
    with pytest.raises(UsageError, match="negative_z"):
        weak_training_label(sm, negative_z=3.0)
    # pixels said not to be background leave the region, the vessel label stays
    _, fewer = weak_training_label(sm, not_background=truth)
    assert not (fewer & truth & ~label).any() and (fewer & ~region).sum() == 0
    with pytest.raises(UsageError, match="not_background"):
        weak_training_label(sm, not_background=truth[:-1])


def test_shapes_dtypes_and_config(phantom):
    sm = shadow_map(phantom.volume.with_boundaries(phantom.boundaries))  # volume's own surfaces
    shape = (SMALL["bscans"], SMALL["ascans"])
    for arr, dtype in ((sm.slab, np.float32), (sm.depth, np.float32), (sm.z, np.float32)):
        assert arr.shape == shape and arr.dtype == dtype
    assert sm.mask.shape == shape and sm.mask.dtype == bool
    assert (sm.depth >= 0).all()
    assert sm.spacing == pytest.approx((0.05, 3.5 / 192))
    assert ShadowConfig.from_dict(sm.config.to_dict()) == sm.config
    # a stricter threshold keeps a subset of the mask
    strict = shadow_map(phantom.volume, phantom.boundaries, ShadowConfig(threshold=6.0))
    assert strict.mask.sum() < sm.mask.sum() and not (strict.mask & ~sm.mask).any()


def test_a_dark_line_is_found_in_any_direction():
    img = np.full((60, 120), 0.8, np.float32)
    img[30, 10:60] -= 0.3  # along a B-scan (a row), under half of it
    img[5:25, 80] -= 0.3  # across B-scans (a column)
    rng = np.random.default_rng(0)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    spacing = (0.02, 0.02)
    cfg = ShadowConfig(smooth_um=0.0, min_area_mm2=0.0)
    depth = shadow_depth(img, spacing, cfg)
    _, mask = weak_mask(depth, spacing, cfg)
    assert mask[30, 12:58].mean() > 0.9 and mask[7:23, 80].mean() > 0.9
    assert mask.mean() < 0.05


def test_bad_input_is_refused_clearly(phantom, tmp_path):
    vol = phantom.volume
    with pytest.raises(UsageError, match="needs the EZ surface"):
        shadow_map(vol)  # no surfaces at all
    bad = dict(phantom.boundaries, EZ=phantom.boundaries["EZ"][:, :-1])
    with pytest.raises(UsageError, match=r"surface EZ has shape .*expected"):
        shadow_map(vol, bad)
    nan = dict(phantom.boundaries, BM=np.full_like(phantom.boundaries["BM"], np.nan))
    with pytest.raises(UsageError, match="NaN"):
        shadow_map(vol, nan)
    with pytest.raises(UsageError, match="Volume"):
        shadow_map(vol.data, phantom.boundaries)
    with pytest.raises(UsageError, match="2-D"):
        shadow_depth(vol.data, (0.05, 0.02))
    with pytest.raises(UsageError, match="spacing"):
        shadow_depth(vol.data[:, 0], (0.0, 0.02))
    with pytest.raises(UsageError, match="threshold"):
        ShadowConfig(threshold=0)
    with pytest.raises(UsageError, match="background_um"):
        ShadowConfig(background_um=float("nan"))
    with pytest.raises(InputError, match="missing.npz"):
        load_surfaces(tmp_path / "missing.npz")
    np.savez(tmp_path / "odd.npz", EZ=np.zeros((4, 5)), BM=np.zeros((4, 6)))
    with pytest.raises(InputError, match="one shape"):
        load_surfaces(tmp_path / "odd.npz")
    flat = Volume(data=np.zeros((1, 64, 8), np.float32), spacing=(0.05, 0.004, 0.02))
    with pytest.raises(UsageError, match="at least 2 B-scans"):
        shadow_map(flat, {})


def test_load_surfaces_round_trip(tmp_path):
    ez = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "x_surfaces.npz", EZ=ez, BM=ez + 5, confidence=np.ones((3, 4)))
    s = load_surfaces(tmp_path / "x_surfaces.npz")
    assert set(s) == {"EZ", "BM"} and s["BM"].dtype == np.float32
    np.testing.assert_array_equal(s["BM"], ez + 5)


def test_border_share_and_robust_z():
    m = np.zeros((40, 40), bool)
    m[20, 10:30] = True  # 20 pixels, none within 5 px of the edge
    assert border_share(m) == 0.0
    m[0, 10:30] = True  # 20 more on the top row
    assert border_share(m) == pytest.approx(0.5)
    assert np.isnan(border_share(np.zeros((8, 8), bool)))
    z = robust_z(np.array([0.0, 1.0, 2.0, 3.0, 100.0]))
    assert z[2] == 0.0 and z[4] > 30
