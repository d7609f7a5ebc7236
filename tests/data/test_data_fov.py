"""octvessel.data.fov.derive_fov on synthetic pictures and on real DRIVE / STARE."""

from __future__ import annotations

import numpy as np
import pytest

from octvessel.data import derive_fov
from octvessel.errors import UsageError


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_disc_on_dark_surround(make_fundus) -> None:
    img, disc = make_fundus(120, 140, seed=1)
    fov = derive_fov(img.astype(np.float32) / 255)
    assert fov.dtype == np.bool_ and fov.shape == disc.shape
    assert iou(fov, disc) > 0.95
    assert abs(fov.sum() / disc.sum() - 1) < 0.05
    # the dark vessel-like lines inside the disc are filled in
    assert fov[disc & (np.hypot(*np.mgrid[-60:60, -70:70]) < 40)].all()


def test_accepts_uint8_grayscale_and_2d(make_fundus) -> None:
    img, disc = make_fundus(90, 100, seed=2)
    gray = img[..., 0]
    assert iou(derive_fov(gray), disc) > 0.93
    assert iou(derive_fov(gray[..., None]), disc) > 0.93
    np.testing.assert_array_equal(derive_fov(img), derive_fov(img.astype(np.float32) / 255))


def test_disc_cut_by_top_and_bottom_with_bright_frame_lines(make_fundus) -> None:
    # STARE / HRF: the disc is wider than the image is high; some cameras draw a bright
    # line along the frame, which must not close the surround into a "hole"
    img, disc = make_fundus(100, 150, radius=0.62, seed=3)
    img[:, 0] = 200
    img[0, :] = 200
    fov = derive_fov(img)
    assert iou(fov, disc) > 0.93
    assert fov[0, 75] and fov[-1, 75]  # the disc reaches the top and bottom edges
    assert not fov[50, 2] and not fov[50, -3]  # the surround on both sides stays out


def test_large_dark_lesion_inside_is_kept(make_fundus) -> None:
    img, disc = make_fundus(120, 120, seed=4)
    img[50:70, 50:70] = 8  # as dark as the surround, but enclosed by the retina
    assert derive_fov(img)[55:65, 55:65].all()


def test_oct_enface_without_surround_is_all_true() -> None:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:141, 0:385]
    img = 0.45 + 0.15 * np.sin(xx / 17.0) * np.cos(yy / 11.0) + rng.normal(0, 0.04, yy.shape)
    img[np.abs(yy - 0.3 * xx - 10) < 3] = 0.05  # dark vessel shadows reaching the borders
    img[np.abs(yy + 0.2 * xx - 120) < 2] = 0.05
    img = np.clip(img, 0, 1).astype(np.float32)[..., None]
    assert derive_fov(img).all()


@pytest.mark.parametrize("value", [0.0, 0.02, 0.6, 1.0])
def test_constant_image_is_all_true(value: float) -> None:
    assert derive_fov(np.full((40, 50, 3), value, np.float32)).all()


def test_tiny_image_and_bad_shape() -> None:
    assert derive_fov(np.zeros((5, 6, 3), np.float32)).all()
    with pytest.raises(UsageError, match="H x W"):
        derive_fov(np.zeros((2, 3, 4, 5), np.float32))


# ------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_drive_derived_fov_matches_official_masks(drive_samples) -> None:
    assert len(drive_samples) == 40
    scores = {s.name: iou(derive_fov(s.image), s.fov) for s in drive_samples}
    worst = min(scores, key=scores.get)
    assert scores[worst] >= 0.95, f"DRIVE {worst}: IoU {scores[worst]:.4f}"
    assert np.mean(list(scores.values())) >= 0.98  # measured: min 0.986, mean 0.995


@pytest.mark.realdata
def test_stare_derived_fov_is_plausible_and_holds_the_vessels(stare_dir, stare_samples) -> None:
    from octvessel.data import load_dataset

    assert len(stare_samples) == 20
    second = {s.name: s.label for s in load_dataset(stare_dir, observer=2, require_labels=True)}
    for s in stare_samples:
        assert s.fov_source == "derived"
        frac = s.fov.mean()
        assert 0.65 <= frac <= 0.90, f"STARE {s.name}: FOV fraction {frac:.3f}"  # 0.73-0.82
        for obs, label in ((1, s.label), (2, second[s.name])):
            coverage = (label & s.fov).sum() / label.sum()
            assert coverage >= 0.99, (
                f"STARE {s.name} observer {obs}: {coverage:.4f} of vessels in FOV"
            )
