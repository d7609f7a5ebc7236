"""Training at one pixel size: pooling datasets, the recorded scale, scale augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octvessel.data.augment import AugmentConfig, random_crop
from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.training import TrainConfig, train
from octvessel.training.data import augment_config, pool_scale


def _sample(name, h, w, spacing=None, disc=False):
    rng = np.random.default_rng(0)
    fov = np.ones((h, w), bool)
    if disc:
        yy, xx = np.mgrid[:h, :w]
        fov = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (0.45 * min(h, w)) ** 2
    label = rng.random((h, w)) < 0.2
    image = rng.random((h, w, 1)).astype(np.float32)
    return Sample(image=image, label=label, fov=fov, name=name, path=None, spacing=spacing)


def test_pooling_brings_every_image_to_the_target_pixel_size():
    a = _sample("a", 141, 385, (7 / 141, 7 / 385))
    b = _sample("b", 400, 400, (0.015, 0.015))
    cfg = TrainConfig(pixel_size_mm=(7 / 141, 7 / 385))
    train_, val, scale, notes = pool_scale([a], [b], cfg)
    assert train_[0] is a and len(notes) == 1  # one summary line, no image left out
    assert notes[0].startswith("training images' pixel size from dataset x2; all brought to")
    assert val[0].shape == (121, 330) and val[0].label.shape == (121, 330)
    assert val[0].label.dtype == bool and val[0].fov.all()
    assert scale.pixel_size_mm == pytest.approx((7 / 141, 7 / 385))


def test_photographs_pool_by_fov_diameter_and_unknowns_are_kept():
    big, small = _sample("big", 200, 220, disc=True), _sample("small", 100, 110, disc=True)
    cfg = TrainConfig(fov_px=90)
    train_, _, scale, notes = pool_scale([big, small], [], cfg)
    # both discs (181 and 91 px across) become ~90 px: the two images end up one size
    assert train_[0].shape == train_[1].shape
    assert abs(train_[0].shape[0] - 100) <= 2 and abs(train_[0].shape[1] - 110) <= 2
    assert scale.fov_px == 90 and scale.field_deg == 45
    oct_ = _sample("oct", 50, 60)  # no surround, no spacing: nothing to relate
    kept, _, _, notes = pool_scale([oct_], [], cfg)
    assert kept[0] is oct_ and "oct" in notes[1] and "kept as it is" in notes[1]


def test_without_a_target_nothing_moves_and_a_common_spacing_is_recorded():
    a, b = _sample("a", 30, 40, (0.05, 0.02)), _sample("b", 35, 40, (0.05, 0.02))
    train_, val, scale, _ = pool_scale([a], [b], TrainConfig())
    assert train_ == [a] and val == [b] and scale.pixel_size_mm == (0.05, 0.02)
    c = _sample("c", 30, 40, (0.01, 0.01))
    assert pool_scale([a], [c], TrainConfig())[2] is None


def test_scale_jitter_zooms_crops_within_its_range_and_is_off_by_default():
    assert augment_config(TrainConfig()) == AugmentConfig.preset("reference")
    aug = augment_config(TrainConfig(augment="none", scale_jitter=0.2))
    assert aug.scale_p == 1.0 and aug.scale_range == pytest.approx((1 / 1.2, 1.2))
    # a label that is one stripe per 8 columns: its period in the crop shows the zoom
    label = (np.arange(400)[None, :] % 8 < 4).repeat(400, 0)
    image = label[None].astype(np.float32)
    fov = np.ones_like(label)
    periods = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        _, y, _ = random_crop(image, label, fov, 64, rng, aug)
        edges = np.flatnonzero(np.diff(y[32].astype(int)) == 1)
        periods.append(np.median(np.diff(edges)))
    assert min(periods) >= 8 / 1.2 - 0.6 and max(periods) <= 8 * 1.2 + 0.6
    assert max(periods) - min(periods) >= 1  # it does zoom
    with pytest.raises(UsageError):
        TrainConfig(scale_jitter=1.5)
    with pytest.raises(UsageError):
        TrainConfig(pixel_size_mm=(0.0, 0.01))


def test_a_trained_bundle_records_its_pixel_size(tmp_path):
    samples = [_sample(f"s{i}", 40, 56, (0.03, 0.015)) for i in range(3)]
    cfg = TrainConfig(
        model_config={"base_channels": 4, "iterations": 1},
        preprocessing={"color": "gray"},
        epochs=1,
        steps_per_epoch=1,
        images_per_batch=1,
        crops_per_image=1,
        crop=32,
        val_fraction=0.34,
        pixel_size_mm=(0.03, 0.03),
        precision="fp32",
    )
    train(samples, tmp_path / "run", cfg, progress=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["scale"]["pixel_size_mm"] == [0.03, 0.03]


def test_the_users_spacing_comes_before_the_data_and_is_recorded(tmp_path, capsys):
    """--spacing / --fov-px give the training images' own pixel size (data without one)."""
    bare = [_sample("a", 100, 120), _sample("b", 100, 120)]
    cfg = TrainConfig(pixel_size_mm=(0.02, 0.02), input_spacing_mm=(0.01, 0.01))
    train_, _, scale, notes = pool_scale(bare[:1], bare[1:], cfg)
    assert train_[0].shape == (50, 60) and scale.pixel_size_mm == (0.02, 0.02)
    assert notes[0].startswith("training images' pixel size from --spacing x2")
    # before the data's own spacing too, as in predict
    carried = _sample("c", 100, 120, (0.04, 0.04))
    assert pool_scale([carried], [], cfg)[0][0].shape == (50, 60)
    # without a target: recorded as the pixel size the network learns at, nothing resampled
    kept, _, scale, notes = pool_scale(bare, [], TrainConfig(input_spacing_mm=(0.01, 0.01)))
    assert kept == bare and scale.pixel_size_mm == (0.01, 0.01) and "not resampled" in notes[0]
    # a FOV diameter given for photographs replaces the measured one
    discs = [_sample("d", 200, 220, disc=True)]
    out = pool_scale(discs, [], TrainConfig(fov_px=90, input_fov_px=45))[0]
    assert out[0].shape == (400, 440)
    for bad in ((0.0, 0.01), (2.0, 2.0), (float("nan"), 0.01)):
        with pytest.raises(UsageError, match="input_spacing_mm"):
            TrainConfig(input_spacing_mm=bad)
    with pytest.raises(UsageError, match="input_fov_px"):
        TrainConfig(input_fov_px=-3)


def test_train_spacing_flag_reaches_the_recipe_and_the_bundle(tmp_path, capsys):
    from octvessel.cli import main
    from octvessel.data import write_image, write_mask

    rng = np.random.default_rng(0)
    for i in range(3):
        label = rng.random((48, 64)) < 0.3
        image = (rng.random((48, 64, 1)) * 0.5 + 0.4 * label[..., None]).astype(np.float32)
        write_image(tmp_path / "ds" / "images" / f"i{i}.png", image)
        write_mask(tmp_path / "ds" / "labels" / f"i{i}.png", label)
    run = tmp_path / "run"
    args = ["train", "-d", str(tmp_path / "ds"), "-o", str(run), "--preset", "quick",
            "--base-channels", "4", "--iterations", "1", "--color", "gray", "--crop", "32",
            "--images-per-batch", "1", "--crops-per-image", "1", "--steps-per-epoch", "1",
            "--epochs", "1", "--device", "cpu", "--no-progress", "--spacing", "0.012,0.006"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training images' pixel size from --spacing x3" in out
    recipe = json.loads((run / "train_config.json").read_text())
    assert recipe["input_spacing_mm"] == [0.012, 0.006]
    assert json.loads((run / "config.json").read_text())["scale"]["pixel_size_mm"] == [0.012, 0.006]
    bad = [*args[:4], str(tmp_path / "run2"), *args[5:-1], "0,0.01"]
    assert main(bad) == 2
    assert "--spacing" in capsys.readouterr().err and not (tmp_path / "run2").exists()
