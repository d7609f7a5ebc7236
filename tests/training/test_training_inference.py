"""The core training loop, whole-image inference and the synthetic vessel images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.inference import predict_image
from octvessel.metrics import evaluate
from octvessel.models import create_model
from octvessel.preprocessing import Preprocessing
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training import CropRecipe, train_on_crops


def synthetic_samples(n: int, h: int = 64, w: int = 96, seed: int = 0) -> list[Sample]:
    out = []
    for i in range(n):
        image, label, fov = render_image(
            VesselTreeConfig(height=h, width=w, root_radius=2.5), seed=seed + i
        )
        out.append(Sample(image=image, label=label, fov=fov, name=f"s{i}", path=None))
    return out


def test_synthetic_images_are_deterministic_and_plausible():
    a = render_image(VesselTreeConfig(height=141, width=385), seed=3)
    b = render_image(VesselTreeConfig(height=141, width=385), seed=3)
    c = render_image(VesselTreeConfig(height=141, width=385), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    image, label, fov = a
    assert image.shape == (141, 385, 1) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert 0.04 < label.mean() < 0.2
    # vessels are darker than the background in en-face projections
    assert image[..., 0][label].mean() < image[..., 0][~label].mean() - 0.1
    rgb, _, fov = render_image(VesselTreeConfig(), seed=0, style="fundus")
    assert rgb.shape[2] == 3 and 0.6 < fov.mean() < 0.8
    with pytest.raises(UsageError):
        render_image(VesselTreeConfig(), style="oil")


def test_preprocessing_modes():
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    assert Preprocessing("rgb")(rgb).shape == (3, 5, 7)
    gray = Preprocessing("gray")(rgb)
    assert gray.shape == (1, 5, 7)
    assert np.allclose(gray[0], rgb @ np.array([0.299, 0.587, 0.114]), atol=1e-6)
    assert np.array_equal(Preprocessing("green")(rgb)[0], rgb[..., 1])
    assert Preprocessing("rgb")(rgb[..., :1]).shape == (3, 5, 7)
    with pytest.raises(UsageError):
        Preprocessing("hsv")


def test_training_lowers_the_loss_and_learns_vessels():
    torch.manual_seed(0)
    train, test = synthetic_samples(4), synthetic_samples(2, seed=100)
    pre = Preprocessing("gray")
    model = create_model("iternet", in_channels=1, base_channels=8, iterations=2)
    recipe = CropRecipe(steps=60, crop=48, batch=8, lr=2e-3, seed=0)
    history = train_on_crops(model, train, recipe, pre, progress=False)
    first = np.mean([h["loss"] for h in history[:10]])
    last = np.mean([h["loss"] for h in history[-10:]])
    assert last < 0.8 * first
    probs = [predict_image(model, s.image, preprocessing=pre) for s in test]
    res = evaluate(probs, [s.label for s in test], [s.fov for s in test])
    assert res["pooled"]["auc_roc"] > 0.8


def test_predict_image_whole_matches_the_model_and_checks_methods():
    model = create_model("iternet", in_channels=1, base_channels=4, iterations=1).eval()
    image = np.random.default_rng(1).random((37, 51, 1)).astype(np.float32)
    # margin 0: the bare network (the mirrored margin is tested in tests/inference)
    prob = predict_image(model, image, preprocessing=Preprocessing("gray"), margin=0)
    assert prob.shape == (37, 51) and prob.dtype == np.float32
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(image.transpose(2, 0, 1))[None])[-1])[
            0, 0
        ].numpy()
    assert np.allclose(prob, ref, atol=1e-5)
    bf = predict_image(model, image, preprocessing=Preprocessing("gray"), bf16=True, margin=0)
    assert np.abs(bf - ref).max() < 0.05
    with pytest.raises(UsageError):
        predict_image(model, image, method="magic")
