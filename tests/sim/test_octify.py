"""octvessel.sim.octify and ``octvessel octify``: geometry, labels, degradations, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from octvessel.cli import main
from octvessel.data import index_dataset, load_dataset, write_image, write_mask
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.sim import VesselTreeConfig, render_image
from octvessel.sim.octify import (
    OctifyConfig,
    crop_positions,
    octify_sample,
    resample_matrix,
    source_mm_per_px,
)
from octvessel.sim.octify_dataset import octify_dataset, write_preview

CLEAN = OctifyConfig(mm_per_px=0.07).without_degradations()


def tree_sample(seed: int = 0, size: int = 200, name: str = "s") -> Sample:
    """A synthetic fundus picture (circular FOV) with its vessel tree label."""
    cfg = VesselTreeConfig(height=size, width=size, root_radius=4.0, min_radius=1.2)
    image, label, fov = render_image(cfg, seed=seed, style="fundus")
    return Sample(image=image, label=label, fov=fov, name=name, path=Path(f"{name}.png"))


def band_sample(horizontal: bool, size: int = 200, thickness: int = 8) -> Sample:
    """Gray image, full FOV, one dark straight band through the middle labelled as vessel."""
    label = np.zeros((size, size), bool)
    mid = size // 2
    if horizontal:
        label[mid - thickness // 2 : mid + thickness // 2, :] = True
    else:
        label[:, mid - thickness // 2 : mid + thickness // 2] = True
    image = np.where(label, 0.3, 0.7).astype(np.float32)[..., None]
    return Sample(
        image=image, label=label, fov=np.ones_like(label), name="band", path=Path("band.png")
    )


def write_generic(root: Path, n: int = 2, labels: bool = True, size: int = 200) -> Path:
    for i in range(n):
        s = tree_sample(seed=i, size=size)
        write_image(root / "images" / f"img{i}.png", s.image)
        write_mask(root / "masks" / f"img{i}.png", s.fov)
        if labels:
            write_mask(root / "labels" / f"img{i}.png", s.label)
    return root


def write_drive_like(root: Path) -> Path:
    """Two training and one test image named as in DRIVE (so the 45 deg table applies)."""
    for split, number in (("training", 21), ("training", 22), ("test", 1)):
        s = tree_sample(seed=number, size=200)
        d = root / split
        write_image(d / "images" / f"{number:02d}_{split}.png", s.image)
        write_mask(d / "1st_manual" / f"{number:02d}_manual1.png", s.label)
        write_mask(d / "mask" / f"{number:02d}_{split}_mask.png", s.fov)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------ config


def test_config_validates_and_round_trips():
    cfg = OctifyConfig(channel="luminance", crops=3, square=True)
    assert OctifyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.out_shape == (385, 385) and OctifyConfig().out_shape == (141, 385)
    assert OctifyConfig().spacing == pytest.approx((7 / 141, 7 / 385))
    for bad in (
        {"channel": "red"},
        {"crop_mm": 0},
        {"width": 4},
        {"crops": -1},
        {"min_fov_fraction": 0},
        {"speckle": -0.1},
        {"vignetting": 1.0},
        {"variant": "P4"},
        {"mm_per_px": float("nan")},
        {"square": 1},
    ):
        with pytest.raises(UsageError, match=next(iter(bad))):
            OctifyConfig(**bad)


# ---------------------------------------------------------------------------- geometry


def test_resample_matrix_area_and_linear():
    down = resample_matrix(0.0, 8.0, 4, 8)  # factor 2: mean of pairs
    assert np.allclose(down @ np.arange(8.0), [0.5, 2.5, 4.5, 6.5])
    assert np.allclose(down.sum(1), 1)
    odd = resample_matrix(1.0, 3.0, 2, 6)  # [1, 2.5) and [2.5, 4): fractional overlaps
    assert np.allclose(odd @ np.arange(6.0), [(1 + 0.5 * 2) / 1.5, (0.5 * 2 + 3) / 1.5])
    up = resample_matrix(0.0, 10.0, 40, 10)  # linear interpolation reproduces a ramp inside
    centres = (np.arange(40) + 0.5) * 0.25 - 0.5
    inner = (centres >= 0) & (centres <= 9)
    assert np.allclose((up @ np.arange(10.0))[inner], centres[inner])


def test_pixel_size_from_field_angle_and_overrides():
    s = tree_sample()
    s.meta["format"] = "drive"
    width = int(s.fov.sum(1).max())
    row_mm, col_mm, how = source_mm_per_px(s, OctifyConfig())
    assert row_mm == col_mm == pytest.approx(45 * 0.29 / width) and "45 deg" in how
    assert source_mm_per_px(s, OctifyConfig(field_deg=30))[0] == pytest.approx(30 * 0.29 / width)
    assert source_mm_per_px(s, OctifyConfig(mm_per_px=0.02))[:2] == (0.02, 0.02)
    s.spacing = (0.03, 0.02)  # a dataset.json spacing wins over the table
    assert source_mm_per_px(s, OctifyConfig())[:2] == (0.03, 0.02)
    s.spacing, s.meta["format"] = None, "generic"
    with pytest.raises(InputError, match="mm-per-px"):
        source_mm_per_px(s, OctifyConfig())


def test_output_shape_binary_labels_and_crops_inside_fov():
    s = tree_sample()
    out = octify_sample(s, OctifyConfig(mm_per_px=0.07), np.random.default_rng(0))
    assert len(out) >= 3  # a grid of 100-px crops over a 192-px disc
    for o in out:
        assert o.image.shape == (141, 385, 1) and o.image.dtype == np.float32
        assert 0.0 <= o.image.min() and o.image.max() <= 1.0
        assert o.label.shape == o.fov.shape == (141, 385) and o.label.dtype == bool
        assert o.meta["fov_fraction"] >= 0.9 and o.fov.mean() >= 0.85
        assert o.spacing == pytest.approx((7 / 141, 7 / 385))
    names = [o.name for o in out]
    assert len(set(names)) == len(names) and names[0] == "s_c0"
    square = octify_sample(s, OctifyConfig(mm_per_px=0.07, square=True), np.random.default_rng(0))
    assert square[0].image.shape == (385, 385, 1) and square[0].label.shape == (385, 385)


def test_grid_covers_the_fov_and_counts_are_configurable():
    s = tree_sample()
    grid = octify_sample(s, CLEAN, np.random.default_rng(0))
    covered = np.zeros_like(s.fov)
    for o in grid:
        r0, c0, ch, cw = o.meta["crop_box_px"]
        covered[r0 : r0 + round(ch), c0 : c0 + round(cw)] = True
    assert covered[s.fov].mean() > 0.8
    seven = octify_sample(s, OctifyConfig(mm_per_px=0.07, crops=7), np.random.default_rng(1))
    assert len(seven) == 7 and all(o.meta["fov_fraction"] >= 0.9 for o in seven)
    fov = np.zeros((50, 50), bool)
    fov[:10, :10] = True
    with pytest.raises(InputError, match="inside the field of view"):
        crop_positions(fov, (20, 20), CLEAN, np.random.default_rng(0))
    with pytest.raises(InputError, match="larger than"):
        crop_positions(fov, (60, 20), CLEAN, np.random.default_rng(0))


def test_label_fraction_close_to_the_source_crop():
    for seed in (0, 1, 2):
        for o in octify_sample(tree_sample(seed), CLEAN, np.random.default_rng(seed)):
            src, out = o.meta["label_fraction_source"], o.meta["label_fraction"]
            assert src > 0.02
            assert abs(out - src) < 0.2 * src + 0.005, (o.name, src, out)


@pytest.mark.parametrize("degrade", [False, True])
def test_vessel_direction_is_preserved(degrade):
    cfg = OctifyConfig(mm_per_px=0.05, crops=1)
    cfg = cfg if degrade else cfg.without_degradations()
    horizontal = octify_sample(band_sample(True), cfg, np.random.default_rng(0))[0].label
    rows = np.flatnonzero(horizontal.any(axis=1))
    # an 8-px band of a 140-px crop: 8 / 140 * 141 = 8 rows, spanning every column
    assert 6 <= rows.size <= 10 and np.ptp(rows) == rows.size - 1
    assert horizontal[rows[1:-1]].all()
    vertical = octify_sample(band_sample(False), cfg, np.random.default_rng(0))[0].label
    cols = np.flatnonzero(vertical.any(axis=0))
    assert 19 <= cols.size <= 26  # 8 / 140 * 385 = 22 columns (+- the row shifts)
    assert vertical.any(axis=1).all()
    # the dark band is where the label is
    img = octify_sample(band_sample(True), cfg, np.random.default_rng(0))[0].image[..., 0]
    assert img[horizontal].mean() < img[~horizontal].mean() - 0.3


def test_no_degradations_is_the_plain_resample():
    s = band_sample(True)
    s.image = s.image * np.linspace(0.5, 1.0, 200)[None, :, None]  # something to resample
    o = octify_sample(s, CLEAN, np.random.default_rng(0))[0]
    r0, c0, ch, cw = o.meta["crop_box_px"]
    ref = resample_matrix(r0, ch, 141, 200) @ s.image[..., 0] @ resample_matrix(c0, cw, 385, 200).T
    lo, hi = np.percentile(ref, (1, 99))
    ref = np.clip((ref - lo) / (hi - lo), 0, 1)
    assert np.abs(o.image[..., 0] - ref).max() < 1e-5


def test_each_degradation_changes_the_image_and_is_seeded():
    s = tree_sample()
    base = CLEAN
    clean = octify_sample(s, base, np.random.default_rng(0))[0].image[..., 0]

    def one(**kw):
        return octify_sample(s, OctifyConfig(**{**base.to_dict(), **kw}), np.random.default_rng(0))

    stripes = one(stripes=0.1)[0].image[..., 0]
    row_mean_jitter = lambda im: np.abs(np.diff(im.mean(axis=1))).mean()  # noqa: E731
    assert row_mean_jitter(stripes) > 2 * row_mean_jitter(clean)
    speckle = one(speckle=0.2, speckle_corr_px=0.0)[0].image[..., 0]  # white speckle
    pixel_jitter = lambda im: np.abs(np.diff(im, axis=1)).mean()  # noqa: E731
    assert pixel_jitter(speckle) > 2 * pixel_jitter(clean)
    # speckle correlated along the A-scans: neighbours in a row alike, across rows not
    grain = one(speckle=0.2, speckle_corr_px=2.0)[0].image[..., 0] - clean
    along = np.corrcoef(grain[:, :-1].ravel(), grain[:, 1:].ravel())[0, 1]
    across = np.corrcoef(grain[:-1].ravel(), grain[1:].ravel())[0, 1]
    assert along > 0.8 and across < along - 0.4
    # single dark or bright B-scans: a few rows jump against their neighbours
    lines = one(motion_lines=5.0)[0].image[..., 0]
    jumps = lambda im: np.sort(np.abs(np.diff(im.mean(axis=1))))[-3:].mean()  # noqa: E731
    assert jumps(lines) > 2 * jumps(clean)
    # the dark side edges darken where they should
    edges = one(edge_falloff=0.9)[0].image[..., 0]
    assert edges[:, :3].mean() < 0.8 * clean[:, :3].mean()
    assert abs(edges[:, 150:235].mean() - clean[:, 150:235].mean()) < 0.02
    # the noisy outer A-scans: the first and last column vary row to row, the middle not
    rim = one(edge_rim=1.0)[0].image[..., 0]
    row_jitter = lambda im, c: np.abs(np.diff(im[:, c])).mean()  # noqa: E731
    assert row_jitter(rim, 0) > 3 * row_jitter(clean, 0)
    assert row_jitter(rim, -1) > 3 * row_jitter(clean, -1)
    assert np.abs(rim[:, 150:235] - clean[:, 150:235]).mean() < 0.02
    blur = one(blur_mm=0.03)[0].image[..., 0]
    assert pixel_jitter(blur) < pixel_jitter(clean)
    vignette = one(vignetting=0.6)[0].image[..., 0]
    corner = (slice(0, 20), slice(0, 50))
    centre = (slice(60, 80), slice(170, 215))
    assert (vignette[centre].mean() - vignette[corner].mean()) > (
        clean[centre].mean() - clean[corner].mean()
    )
    shifted = one(row_shift_px=2.0)[0]
    assert not np.array_equal(
        shifted.label, octify_sample(s, base, np.random.default_rng(0))[0].label
    )
    full = octify_sample(s, OctifyConfig(mm_per_px=0.07), np.random.default_rng(0))[0].image
    again = octify_sample(s, OctifyConfig(mm_per_px=0.07), np.random.default_rng(0))[0].image
    other = octify_sample(s, OctifyConfig(mm_per_px=0.07), np.random.default_rng(1))[0].image
    assert np.array_equal(full, again) and not np.array_equal(full, other)


def test_channel_choice_and_missing_label():
    s = tree_sample()
    s.image = s.image.copy()
    s.image[..., 1] = s.image[..., 1] * 0.2  # green differs from luminance
    g = octify_sample(s, CLEAN, np.random.default_rng(0))[0].image
    lum = octify_sample(
        s, OctifyConfig(**{**CLEAN.to_dict(), "channel": "luminance"}), np.random.default_rng(0)
    )[0].image
    assert not np.allclose(g, lum)
    s.label = None
    with pytest.raises(InputError, match="label"):
        octify_sample(s, CLEAN, np.random.default_rng(0))


# ----------------------------------------------------------------------------- dataset


def test_dataset_round_trip_and_determinism(tmp_path):
    src = write_generic(tmp_path / "src")
    cfg = OctifyConfig(mm_per_px=0.07, seed=3)
    info = octify_dataset(src, tmp_path / "a", cfg)
    octify_dataset(src, tmp_path / "b", cfg)
    octify_dataset(src, tmp_path / "c", OctifyConfig(mm_per_px=0.07, seed=4))
    a, b, c = (files_of(tmp_path / x) for x in "abc")
    assert a == b  # same seed, same bytes (dataset.json included)
    images = [k for k in a if k.startswith("images/")]
    assert images and all(a[k] != c[k] for k in images)
    samples = load_dataset(tmp_path / "a", require_labels=True)
    assert len(samples) == info["stats"]["samples"] == len(images)
    for s in samples:
        assert s.shape == (141, 385) and s.label.any() and s.fov_source == "file"
        assert s.spacing == pytest.approx((7 / 141, 7 / 385))
        assert s.meta["format"] == "cavri" and s.name.startswith("img")
    meta = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert meta["generator"]["what"] == "octvessel.sim.octify"
    assert "not OCT data" in meta["generator"]["note"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_dataset_keeps_drive_splits_and_subset_matches(tmp_path):
    src = write_drive_like(tmp_path / "drive")
    octify_dataset(src, tmp_path / "out", OctifyConfig())
    assert (tmp_path / "out" / "training" / "images").is_dir()
    test = load_dataset(tmp_path / "out", split="test")
    train = load_dataset(tmp_path / "out", split="training")
    assert test and train and {s.name.split("_c")[0] for s in test} == {"01"}
    assert {s.name.split("_c")[0] for s in train} == {"21", "22"}
    # octifying only the test split gives the same test samples (seeded per image name)
    octify_dataset(src, tmp_path / "only", OctifyConfig(), split="test")
    only = load_dataset(tmp_path / "only", split="test")
    assert [s.name for s in only] == [s.name for s in test]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(only, test, strict=True))
    octify_dataset(src, tmp_path / "flat", OctifyConfig(), keep_splits=False)
    assert not (tmp_path / "flat" / "test").exists()
    assert {r.split for r in index_dataset(tmp_path / "flat")} == {None}


def test_overwrite_rules(tmp_path):
    src = write_generic(tmp_path / "src", n=1)
    cfg = OctifyConfig(mm_per_px=0.07)
    out = tmp_path / "out"
    octify_dataset(src, out, cfg)
    with pytest.raises(InputError, match="overwrite"):
        octify_dataset(src, out, cfg)
    stale = out / "images" / "old_c0_fundus_P1.bmp"
    stale.write_bytes(b"x")
    octify_dataset(src, out, cfg, overwrite=True)
    assert not stale.exists()  # the folder was replaced as a whole
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an octify output"):
        octify_dataset(src, other, cfg, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"


def test_preview_png(tmp_path):
    s = tree_sample()
    out = octify_sample(s, OctifyConfig(mm_per_px=0.07), np.random.default_rng(0))
    png = write_preview(s, out, tmp_path / "p.png", OctifyConfig(mm_per_px=0.07))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 400_000


# --------------------------------------------------------------------------------- CLI


def test_cli_octify(tmp_path, capsys):
    src = write_generic(tmp_path / "src")
    out = tmp_path / "out"
    args = ["octify", "-d", str(src), "-o", str(out), "--mm-per-px", "0.07", "--no-progress"]
    assert main([*args, "--crops", "2", "--preview", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    assert "octified 2 image(s) into 4 sample(s) of 385x141" in text
    assert (tmp_path / "p.png").is_file() and len(load_dataset(out)) == 4
    assert main(args) == 2  # exists
    assert "overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--square", "--no-degrade"]) == 0
    assert load_dataset(out)[0].shape == (385, 385)
    assert main(["octify", "-d", str(src), "-o", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "--mm-per-px" in capsys.readouterr().err  # generic layout: pixel size unknown
    assert main([*args[:4], str(tmp_path / "y"), "--size", "385", "--no-progress"]) == 2


def test_cli_dataset_without_labels_exits_2(tmp_path):
    import subprocess
    import sys

    src = write_generic(tmp_path / "src", n=1, labels=False)
    proc = subprocess.run(
        [sys.executable, "-m", "octvessel", "octify", "-d", str(src), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "needs a vessel label" in err[0] and "img0" in err[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_drive_two_images(drive_dir):
    refs = index_dataset(drive_dir, split="test", require_labels=True)[:2]
    for ref in refs:
        sample = ref.load()
        out = octify_sample(sample, OctifyConfig(), np.random.default_rng(0))
        row_mm, _, _ = source_mm_per_px(sample, OctifyConfig())
        assert 0.022 < row_mm < 0.026  # 13.05 mm over a ~540-px FOV
        assert len(out) == 5  # centre and four edge crops of ~288 px
        for o in out:
            assert o.image.shape == (141, 385, 1) and 0.9 <= o.meta["fov_fraction"]
            src, got = o.meta["label_fraction_source"], o.meta["label_fraction"]
            assert 0.05 < got < 0.25 and abs(got - src) < 0.015, (o.name, src, got)
            assert o.split == "test"
