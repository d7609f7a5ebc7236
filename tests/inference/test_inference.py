"""Whole-image, tiled and reference-patch inference; stitching checked with trivial predictors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from octvessel.errors import UsageError
from octvessel.inference import (
    InferenceConfig,
    choose_method,
    estimate_memory,
    mirror_margin,
    network_grid,
    predict_image,
    resample,
    windows_for,
)
from octvessel.inference.sliding_window import (
    blend_weights,
    count_windows,
    sliding_window,
    window_starts,
)
from octvessel.models import create_model
from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.preprocessing import Preprocessing

GRAY = Preprocessing("gray")


class IdentityLogit(SegmentationModel):
    """Logit of the input's first channel: its probability is the input itself."""

    name = "identity-logit"
    size_multiple = 16

    def __init__(self) -> None:
        super().__init__(ModelConfig(in_channels=1))
        self.scale = nn.Parameter(torch.ones(()))
        self.seen: list[tuple[int, ...]] = []

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.seen.append(tuple(x.shape))
        return [torch.logit(x[:, :1].clamp(1e-6, 1 - 1e-6)) * self.scale]


class FixedMap(SegmentationModel):
    """Ignores its input: a fixed, asymmetric probability ramp over the window."""

    name = "fixed-map"

    def __init__(self) -> None:
        super().__init__(ModelConfig(in_channels=1))
        self.scale = nn.Parameter(torch.ones(()))

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        n, _, h, w = x.shape
        r = torch.linspace(0.05, 0.6, h)[:, None]
        c = torch.linspace(0.0, 0.35, w)[None, :] ** 2
        p = (r + c).expand(n, 1, h, w)
        return [torch.logit(p) * self.scale]


def rand_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (h, w, 1)).astype(np.float32)


# --------------------------------------------------------------------------- stitching


def brute_force_mean(shape, window, stride, align, values_of_window, weights):
    """Per-pixel weighted mean of per-window outputs, by explicit loops in float64."""
    h, w = shape
    hp = (
        max(window, h) if align == "edge" else window_starts(h, window, stride, "grid")[-1] + window
    )
    wp = (
        max(window, w) if align == "edge" else window_starts(w, window, stride, "grid")[-1] + window
    )
    num, den = np.zeros((hp, wp)), np.zeros((hp, wp))
    k = 0
    for t in window_starts(hp, window, stride, align):
        for c in window_starts(wp, window, stride, align):
            num[t : t + window, c : c + window] += values_of_window(k) * weights
            den[t : t + window, c : c + window] += weights
            k += 1
    return (num / den)[:h, :w], k


@pytest.mark.parametrize(
    ("shape", "window", "stride", "align", "blend"),
    [
        ((20, 23), 8, 3, "grid", "constant"),  # the reference scheme, padded bottom/right
        ((17, 17), 8, 3, "grid", "constant"),  # (17 - 8) % 3 == 0: no padding
        ((5, 9), 8, 3, "grid", "constant"),  # smaller than the window
        ((30, 41), 16, 12, "edge", "constant"),
        ((30, 41), 16, 12, "edge", "gaussian"),
        ((10, 12), 16, 12, "edge", "gaussian"),  # smaller than the tile
    ],
)
def test_sliding_window_averages_overlaps_exactly(shape, window, stride, align, blend):
    # each window outputs a constant: its own index; the stitched value at a pixel must be
    # the (weighted) mean of the indices of the windows covering it
    x = torch.zeros(1, 1, *shape, dtype=torch.float64)
    counter = {"k": 0}

    def predict(batch: torch.Tensor) -> torch.Tensor:
        b = batch.shape[0]
        ids = torch.arange(counter["k"], counter["k"] + b, dtype=torch.float64)
        counter["k"] += b
        return ids[:, None, None, None].expand(b, 1, *batch.shape[-2:]).clone()

    out = sliding_window(x, predict, window, stride, blend=blend, align=align, batch_size=5)
    weights = blend_weights((window, window), blend).double().numpy()
    expected, n = brute_force_mean(shape, window, stride, align, float, weights)
    assert counter["k"] == n == count_windows(shape, window, stride, align)
    assert out.shape == (1, 1, *shape)
    # the output is accumulated in float32: compare at float32 precision
    np.testing.assert_allclose(out[0, 0].numpy(), expected, rtol=1e-5, atol=1e-4)
    if n > 1:
        assert not np.allclose(expected, expected.mean())  # the check can tell windows apart


def test_overlap_gives_the_stride():
    x = torch.rand(1, 1, 40, 50)
    calls = []

    def predict(batch: torch.Tensor) -> torch.Tensor:
        calls.append(batch.shape[0])
        return batch

    out = sliding_window(x, predict, 16, overlap=0.5, batch_size=100)
    assert torch.allclose(out, x) and calls == [count_windows((40, 50), 16, 8)]
    with pytest.raises(UsageError, match="exactly one"):
        sliding_window(x, predict, 16, 8, overlap=0.5)
    with pytest.raises(UsageError, match="overlap"):
        sliding_window(x, predict, 16, overlap=1.0)


def test_window_starts_cover_the_axis():
    assert window_starts(10, 4, 3, "edge") == [0, 3, 6]
    assert window_starts(11, 4, 3, "edge") == [0, 3, 6, 7]
    assert window_starts(11, 4, 3, "grid") == [0, 3, 6, 9]  # padded to 13
    assert window_starts(3, 4, 3, "grid") == [0]
    # the reference patch count for DRIVE resized to 576 x 576: 151 x 151 = 22,801
    assert count_windows((576, 576), 128, 3, "grid") == 22801


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("whole", {}),
        ("tiles", {"tile": 32, "overlap": 0.5}),
        ("tiles", {"tile": 32, "overlap": 0.0, "blend": "constant"}),
        ("tiles", {"tile": 128}),  # one tile larger than the image (reflect-padded)
        ("patches", {"crop": 16, "stride": 3}),
        ("patches", {"crop": 128, "stride": 7}),  # crop larger than the image (zero-padded)
    ],
)
def test_every_method_returns_the_identity_predictors_input(method, options):
    model = IdentityLogit()
    image = rand_image(45, 61)
    prob = predict_image(model, image, method=method, preprocessing=GRAY, **options)
    assert prob.shape == (45, 61) and prob.dtype == np.float32
    np.testing.assert_allclose(prob, image[..., 0], atol=2e-6)


def reference_patch_scheme(model, image: np.ndarray, crop: int, stride: int) -> np.ndarray:
    """IterNet's crop_prediction.py, re-done in numpy: zero-pad bottom/right, every crop, mean."""
    h, w = image.shape[:2]
    ph = (stride - (h - crop) % stride) % stride if h > crop else crop - h
    pw = (stride - (w - crop) % stride) % stride if w > crop else crop - w
    x = np.zeros((h + ph, w + pw), np.float32)
    x[:h, :w] = image[..., 0]
    hp, wp = x.shape
    total, count = np.zeros_like(x, np.float64), np.zeros_like(x, np.float64)
    for i in range((hp - crop) // stride + 1):
        for j in range((wp - crop) // stride + 1):
            t, c = i * stride, j * stride
            patch = torch.from_numpy(x[t : t + crop, c : c + crop].copy())[None, None]
            with torch.no_grad():
                p = torch.sigmoid(model(patch)[-1])[0, 0].double().numpy()
            total[t : t + crop, c : c + crop] += p
            count[t : t + crop, c : c + crop] += 1
    return (total / count)[:h, :w]


class SmallConvNet(SegmentationModel):
    """Two random 3x3 convolutions (zero padding) with a ReLU: a 5 x 5 receptive field."""

    name = "small-conv"
    size_multiple = 4

    def __init__(self, seed: int) -> None:
        super().__init__(ModelConfig(in_channels=1))
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1)
        )

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [8 * self.net(x - 0.5)]


def test_patches_reproduce_the_reference_scheme_with_a_conv_network():
    model = SmallConvNet(0).eval()
    image = rand_image(27, 22, seed=3)
    prob = predict_image(model, image, method="patches", crop=16, stride=3, preprocessing=GRAY)
    expected = reference_patch_scheme(model, image, 16, 3)
    np.testing.assert_allclose(prob, expected, atol=2e-5)
    whole = predict_image(model, image, method="whole", preprocessing=GRAY)
    assert np.abs(whole - expected).max() > 0.05  # patches are not the whole-image pass
    assert expected.std() > 0.05


def test_tta_averages_the_flips_back_in_place():
    model = FixedMap()
    image = rand_image(20, 28)
    plain = predict_image(model, image, method="whole", preprocessing=GRAY)
    tta = predict_image(model, image, method="whole", preprocessing=GRAY, tta=True)
    expected = (plain + plain[:, ::-1] + plain[::-1, :] + plain[::-1, ::-1]) / 4
    np.testing.assert_allclose(tta, expected, atol=1e-6)
    assert np.abs(tta - plain).max() > 0.05
    ident = predict_image(
        IdentityLogit(), image, method="tiles", tile=16, tta=True, preprocessing=GRAY
    )
    np.testing.assert_allclose(ident, image[..., 0], atol=2e-6)


def test_real_network_options_agree():
    torch.manual_seed(1)
    model = create_model("iternet", in_channels=1, base_channels=4, iterations=1).eval()
    image = rand_image(37, 51, seed=1)
    ref = predict_image(
        model, image, preprocessing=GRAY, method="whole", channels_last=False, margin=0
    )
    with torch.no_grad():
        direct = torch.sigmoid(model(torch.from_numpy(image.transpose(2, 0, 1))[None])[-1])
    np.testing.assert_allclose(ref, direct[0, 0].numpy(), atol=1e-5)
    cl = predict_image(
        model, image, preprocessing=GRAY, method="whole", channels_last=True, margin=0
    )
    np.testing.assert_allclose(cl, ref, atol=1e-5)
    bf = predict_image(model, image, preprocessing=GRAY, method="whole", bf16=True, margin=0)
    assert np.abs(bf - ref).max() < 0.05
    # tiles of the whole image's size with no overlap: one tile, identical to whole
    tiles = predict_image(model, image, preprocessing=GRAY, method="tiles", tile=16, overlap=0.5)
    assert tiles.shape == ref.shape and 0.0 <= tiles.min() and tiles.max() <= 1.0


class BoxMean(SegmentationModel):
    """Logit = mean of the input over a 5 x 5 box, the convolution zero-padded as networks are."""

    name = "box-mean"

    def __init__(self) -> None:
        super().__init__(ModelConfig(in_channels=1))
        self.scale = nn.Parameter(torch.ones(()))

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        box = torch.full((1, 1, 5, 5), 1 / 25, dtype=x.dtype, device=x.device)
        return [torch.nn.functional.conv2d(x, box, padding=2) * self.scale]


def test_mirror_margin_gives_border_pixels_the_image_continued():
    image = np.full((20, 28, 1), 0.8, np.float32)  # logit 0.8 everywhere inside
    inside = 1 / (1 + np.exp(-0.8))
    bare = predict_image(BoxMean(), image, method="whole", preprocessing=GRAY, margin=0)
    assert abs(bare[10, 14] - inside) < 1e-6 and bare[0, 0] < inside - 0.05  # zero padding
    for method in ("whole", "tiles"):  # one 96 px tile holds the image and its margins
        mirrored = predict_image(BoxMean(), image, method=method, tile=96, preprocessing=GRAY)
        assert mirrored.shape == (20, 28)
        np.testing.assert_allclose(mirrored, inside, atol=1e-6)  # the default margin, 32 px
    # the crop is aligned: the identity comes back pixel for pixel, also on a 3-row image
    # (the margin shrinks to 2 there: reflection needs it shorter than the side)
    for shape in ((20, 28), (3, 40)):
        img = rand_image(*shape)
        ident = predict_image(IdentityLogit(), img, method="whole", preprocessing=GRAY)
        np.testing.assert_allclose(ident, img[..., 0], atol=2e-6)
    cfg = InferenceConfig(method="whole")
    assert mirror_margin((3, 40), cfg) == 2 and mirror_margin((100, 100), cfg) == 32
    assert mirror_margin((100, 100), cfg.replace(method="patches")) == 0
    with pytest.raises(UsageError, match="margin"):
        InferenceConfig(margin=-1)


# ---------------------------------------------------------------------------- geometry


def test_model_at_another_scale_is_resampled_back_to_the_native_grid():
    model = IdentityLogit()
    model.size_multiple = 1
    yy, xx = np.mgrid[0:64, 0:80]
    image = (0.5 + 0.3 * np.sin(yy / 9.0) * np.cos(xx / 11.0)).astype(np.float32)[..., None]
    prob = predict_image(
        model, image, method="whole", preprocessing=GRAY, input_size=(32, 40), margin=0
    )
    assert model.seen[-1][-2:] == (32, 40)  # the network worked on its own grid
    assert prob.shape == (64, 80)  # ... and the result is on the image's grid
    assert np.abs(prob - image[..., 0]).max() < 0.03
    half = predict_image(
        model, image, method="whole", preprocessing=GRAY, input_scale=0.5, margin=0
    )
    np.testing.assert_allclose(half, prob, atol=1e-6)
    assert network_grid((584, 565), InferenceConfig(input_size=(576, 576))) == (576, 576)
    assert network_grid((584, 565), InferenceConfig()) == (584, 565)


def test_resample_keeps_kind_and_shape():
    a = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert resample(a, (3, 4)) is not None and np.array_equal(resample(a, (3, 4)), a)
    up = resample(a, (6, 8))
    assert up.shape == (6, 8) and up.dtype == np.float32
    assert 0.0 <= up.min() and up.max() <= 1.0
    t = resample(torch.from_numpy(a)[None, None], (2, 2))
    assert isinstance(t, torch.Tensor) and t.shape == (1, 1, 2, 2)


# ------------------------------------------------------------------ auto and memory


def test_auto_picks_whole_within_the_budget_and_tiles_beyond():
    model = create_model("iternet", in_channels=1, base_channels=4, iterations=1)
    big = estimate_memory(model, (2336, 3504))
    small = estimate_memory(model, (64, 64))
    assert big > 100 * small
    assert choose_method(model, (64, 64), InferenceConfig()) == "whole"
    assert choose_method(model, (2336, 3504), InferenceConfig(memory_budget_mb=64)) == "tiles"
    full = create_model("iternet")
    # DRIVE fits the default 2 GiB whole; HRF (3504 x 2336) does not
    assert choose_method(full, (584, 565), InferenceConfig()) == "whole"
    assert choose_method(full, (2336, 3504), InferenceConfig()) == "tiles"
    # 512-pixel tiles every 384 pixels, the last flush with the edge: 6 rows x 9 columns
    assert windows_for(full, (2336, 3504), InferenceConfig())[1] == 6 * 9
    assert windows_for(full, (584, 565), InferenceConfig(method="patches"))[1] == 153 * 147

    ident = IdentityLogit()
    image = rand_image(70, 90)
    predict_image(ident, image, preprocessing=GRAY, memory_budget_mb=1, tile=32)
    assert all(s[-2:] == (32, 32) for s in ident.seen)  # tiled
    ident.seen.clear()
    predict_image(ident, image, preprocessing=GRAY)
    assert ident.seen == [(1, 1, 144, 160)]  # one pass: 32 px mirrored margins, padded to 16


def test_bad_options_are_usage_errors():
    model = IdentityLogit()
    image = rand_image(8, 8)
    with pytest.raises(UsageError, match="method"):
        predict_image(model, image, method="magic")
    with pytest.raises(UsageError, match="overlap"):
        predict_image(model, image, method="tiles", overlap=1.0)
    with pytest.raises(UsageError, match="unknown option"):
        predict_image(model, image, tiles=3)
    with pytest.raises(UsageError, match="stride"):
        InferenceConfig(stride=0)
    with pytest.raises(UsageError, match="input_size"):
        InferenceConfig(input_size=(10,))
    with pytest.raises(UsageError, match="image"):
        predict_image(model, np.zeros((0, 5, 1), np.float32))
    cfg = InferenceConfig.from_dict({"method": "tiles", "input_size": [10, 12]})
    assert cfg.input_size == (10, 12) and cfg.replace(tta=True).tta
