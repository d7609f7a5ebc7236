"""Inference at the model's pixel size: factors, grids, anisotropic round trips, records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from octvessel import atomic
from octvessel.cli import main
from octvessel.data import write_image, write_mask
from octvessel.errors import UsageError
from octvessel.inference import InferenceConfig, predict_image
from octvessel.inference.engine import network_grid, resample
from octvessel.inference.predictor import MANIFEST, Predictor
from octvessel.inference.scale import model_scale_of, scale_factors, scaled_grid
from octvessel.models import create_model, load_model
from octvessel.pixel_size import ModelScale, PixelSize

OCT_SCALE = ModelScale((7 / 141, 7 / 385))


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


@pytest.fixture(scope="module")
def scaled_bundle(tmp_path_factory) -> Path:
    """A tiny IterNet bundle that records the Avanti 7x7 mm pixel size."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny-oct"
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(path, scale=OCT_SCALE)
    return path


@pytest.fixture(scope="module")
def fundus_bundle(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny-fundus"
    scale = ModelScale((0.024, 0.024), fov_px=40, field_deg=45)
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(path, scale=scale)
    return path


def test_factors_are_the_input_pixel_size_over_the_model_s():
    six = PixelSize((6 / 400, 6 / 400), source="dataset")
    fr, fc = scale_factors(six, OCT_SCALE)
    assert fr == pytest.approx(0.015 / (7 / 141)) and fc == pytest.approx(0.015 / (7 / 385))
    assert scaled_grid((400, 400), (fr, fc)) == (121, 330)
    fundus = ModelScale((0.024, 0.024), fov_px=540)
    assert scale_factors(PixelSize(fov_px=650.0), fundus) == pytest.approx((540 / 650,) * 2)
    assert scale_factors(PixelSize(fov_px=650.0), OCT_SCALE) is None  # no training FOV
    assert scale_factors(six, None) is None  # an old bundle
    assert scale_factors(PixelSize(), OCT_SCALE) is None
    assert scaled_grid((141, 385), (1.004, 0.997)) == (141, 385)  # within 1 %: untouched
    assert scaled_grid((10, 10), (0.1, 0.1), size_multiple=16) == (16, 16)
    with pytest.raises(UsageError, match="--spacing"):
        scale_factors(PixelSize((0.9, 0.9), source="--spacing"), OCT_SCALE)


def test_overrides_win_over_the_physical_scale():
    cfg = InferenceConfig()
    assert network_grid((400, 400), cfg, None, (0.3, 0.8)) == (120, 320)
    assert network_grid((400, 400), cfg.replace(input_scale=1.0), None, (0.3, 0.8)) == (400, 400)
    assert network_grid((400, 400), cfg.replace(input_scale=0.5), None, (0.3, 0.8)) == (200, 200)
    assert network_grid((400, 400), cfg.replace(input_size=(64, 96)), None, (0.3, 0.8)) == (64, 96)


def test_anisotropic_round_trip_to_the_model_grid_and_back():
    """A smooth map on a 3x3 mm 304x304 grid survives 304x304 -> 61x166 -> 304x304."""
    yy, xx = np.mgrid[:304, :304] / 304.0
    smooth = (0.5 + 0.4 * np.sin(2 * np.pi * yy) * np.cos(2 * np.pi * xx)).astype(np.float32)
    factors = scale_factors(PixelSize((3 / 304, 3 / 304)), OCT_SCALE)
    grid = scaled_grid(smooth.shape, factors)
    assert grid == (60, 165)
    back = resample(resample(smooth, grid), smooth.shape)
    assert back.shape == smooth.shape
    assert np.abs(back - smooth)[8:-8, 8:-8].max() < 0.02


class _Spy(torch.nn.Module):
    """Returns its input's mean channel as logits (of the grid it was given); records it."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        return [x.mean(1, keepdim=True) * self.w * 8 - 4]


def test_predict_image_runs_on_the_scaled_grid_and_returns_the_native_one():
    spy = _Spy()
    img = np.random.default_rng(0).random((49, 512, 1)).astype(np.float32)
    factors = scale_factors(PixelSize((4.5 / 49, 6 / 512)), OCT_SCALE)
    prob = predict_image(spy, img, factors=factors, method="whole", channels_last=False, margin=0)
    assert prob.shape == (49, 512)
    assert spy.seen == [scaled_grid((49, 512), factors, 8)] == [(91, 330)]


def test_predictor_records_the_scale_and_old_bundles_are_untouched(tmp_path, scaled_bundle):
    model, _ = load_model(scaled_bundle)
    assert model_scale_of(model) == OCT_SCALE
    p = Predictor(model, config=InferenceConfig(method="whole"))
    img = np.random.default_rng(1).random((60, 60, 3)).astype(np.float32)
    prob = p.predict_scaled(img, "a", data_spacing=(6 / 400, 6 / 400))
    rec = p.scales["a"]
    assert prob.shape == (60, 60) and rec["source"] == "dataset"
    assert rec["network_grid"] == [18, 50] and rec["image_grid"] == [60, 60]
    p.predict_scaled(img, "b")
    assert p.scales["b"]["source"] == "none" and p.scales["b"]["factors"] is None
    old = Predictor(create_model("iternet", base_channels=4, iterations=1))
    assert old.model_scale is None
    old.predict_scaled(img, "c", data_spacing=(0.01, 0.01))
    assert old.scales["c"]["factors"] is None and old.scales["c"]["network_grid"] == [60, 60]
    assert "not recorded" in old.scale_line()


def _run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_predict_records_scale_and_source_in_prediction_json(tmp_path, scaled_bundle, capsys):
    folder = tmp_path / "in"
    write_image(
        folder / "scan.png", (np.random.default_rng(2).random((64, 64)) * 255).astype(np.uint8)
    )
    atomic.write_json(
        folder / "scan_enface.json", {"images": {"scan.png": {}}, "spacing_mm": [0.015, 0.015]}
    )
    code, out, err = _run(
        [
            "predict",
            "-i",
            str(folder),
            "-o",
            str(tmp_path / "o"),
            "-m",
            str(scaled_bundle),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert out.count("scale: model trained at") == 1 and "sidecar x1" in out
    manifest = json.loads((tmp_path / "o" / MANIFEST).read_text())
    rec = manifest["images"]["scan"]["scale"]
    assert rec["source"] == "sidecar" and rec["spacing_mm"] == [0.015, 0.015]
    assert rec["network_grid"] == [19, 53]
    assert manifest["model_scale"]["pixel_size_mm"] == list(OCT_SCALE.pixel_size_mm)
    code, out, err = _run(
        [
            "predict",
            "-i",
            str(folder),
            "-o",
            str(tmp_path / "o2"),
            "-m",
            str(scaled_bundle),
            "--spacing",
            "0.03,0.03",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    rec = json.loads((tmp_path / "o2" / MANIFEST).read_text())["images"]["scan"]["scale"]
    assert rec["source"] == "--spacing" and rec["spacing_mm"] == [0.03, 0.03]


@pytest.mark.parametrize("value", ["0,0.01", "-0.02", "nan,0.01", "2,2", "x"])
def test_cli_bad_spacing_is_one_line_and_exit_2(tmp_path, scaled_bundle, capsys, value):
    img = write_image(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    for verb in (
        ["predict", "-i", str(img), "-m", str(scaled_bundle)],
        ["measure", "-i", str(img)],
    ):
        code, out, err = _run([*verb, "-o", str(tmp_path / "o"), f"--spacing={value}"], capsys)
        assert code == 2 and "--spacing" in err and len(err.strip().splitlines()) == 1, err


def test_cli_bad_fov_px_and_tiny_fov_masks_exit_2(tmp_path, fundus_bundle, capsys):
    img = write_image(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    code, _, err = _run(
        [
            "predict",
            "-i",
            str(img),
            "-o",
            str(tmp_path / "o"),
            "-m",
            str(fundus_bundle),
            "--fov-px",
            "-3",
        ],
        capsys,
    )
    assert code == 2 and "--fov-px" in err and len(err.strip().splitlines()) == 1
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_image(
            root / "images" / f"{name}.png", (rng.random((40, 40, 3)) * 255).astype(np.uint8)
        )
        write_mask(root / "labels" / f"{name}.png", rng.random((40, 40)) < 0.2)
        fov = np.zeros((40, 40), bool)
        fov[18:21, 18:21] = True  # 9 of 1600 pixels
        write_mask(root / "masks" / f"{name}.png", fov)
    atomic.write_json(root / "dataset.json", {"splits": {"test": ["a", "b"]}})
    code, _, err = _run(
        [
            "evaluate",
            "-d",
            str(root),
            "-m",
            str(fundus_bundle),
            "-o",
            str(tmp_path / "e"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "under 5 %" in err and len(err.strip().splitlines()) == 1, err


def test_cli_evaluate_records_scale_in_metrics_json(tmp_path, fundus_bundle, capsys):
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :60]
    fov = (yy - 30) ** 2 + (xx - 30) ** 2 <= 25**2
    for name in ("a", "b"):
        write_image(
            root / "images" / f"{name}.png", (rng.random((60, 60, 3)) * 255).astype(np.uint8)
        )
        write_mask(root / "labels" / f"{name}.png", (rng.random((60, 60)) < 0.2) & fov)
        write_mask(root / "masks" / f"{name}.png", fov)
    atomic.write_json(root / "dataset.json", {"splits": {"test": ["a", "b"]}})
    code, out, err = _run(
        [
            "evaluate",
            "-d",
            str(root),
            "-m",
            str(fundus_bundle),
            "-o",
            str(tmp_path / "e"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert out.count("scale: model trained at") == 1
    scale = json.loads((tmp_path / "e" / "metrics.json").read_text())["source"]["scale"]
    rec = scale["images"]["a"]
    assert rec["source"] == "fov-estimate" and rec["fov_px"] == 51.0
    assert rec["factors"] == pytest.approx([40 / 51, 40 / 51])
    assert scale["model"]["fov_px"] == 40


def test_the_memory_estimate_is_made_for_the_resampled_grid(scaled_bundle):
    model, _ = load_model(scaled_bundle)
    p = Predictor(model, config=InferenceConfig(memory_budget_mb=64))
    assert p.method_for((3000, 3000)) == "tiles"
    assert p.method_for((3000, 3000), (0.1, 0.1)) == "whole"
    assert p.method_for((300, 300), (10.0, 10.0)) == "tiles"
