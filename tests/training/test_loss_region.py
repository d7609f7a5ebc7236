"""``loss_region = "fov"``: the loss counts only the pixels inside the dataset's masks."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from octvessel.commands.options import add_training_arguments, recipe_overrides
from octvessel.data.augment import AugmentConfig
from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.preprocessing import Preprocessing
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training import TrainConfig, train
from octvessel.training.data import CropDataset, collate_crops
from octvessel.training.loop import output_losses

TINY = dict(
    model_config={"base_channels": 4, "iterations": 2},
    preprocessing={"color": "gray"},
    epochs=2,
    steps_per_epoch=3,
    images_per_batch=2,
    crops_per_image=2,
    crop=32,
    val_fraction=0.25,
    seed=5,
    precision="fp32",
)


def samples(noise_outside: int | None = None) -> list[Sample]:
    """Four small synthetic images; their labels outside the FOV replaced by noise if asked."""
    out = []
    for i in range(4):
        im, lab, _ = render_image(VesselTreeConfig(height=40, width=56, root_radius=2.0), seed=i)
        rows, cols = np.mgrid[:40, :56]
        fov = (rows - 20) ** 2 + (cols - 28 - 3 * i) ** 2 < 18**2  # a disc: some pixels out
        if noise_outside is not None:
            noise = np.random.default_rng([noise_outside, i]).random(lab.shape) < 0.5
            lab = np.where(fov, lab, noise)
        out.append(Sample(image=im, label=lab, fov=fov, name=f"s{i}", path=None))
    return out


def test_output_losses_are_the_mean_over_the_region_and_ignore_the_rest():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(3, 1, 8, 8, generator=g, requires_grad=True) for _ in range(2)]
    target = (torch.rand(3, 1, 8, 8, generator=g) < 0.3).float()
    region = (torch.rand(3, 1, 8, 8, generator=g) < 0.6).float()
    inside = region.bool()
    for o, loss in zip(logits, output_losses(logits, target, region), strict=True):
        expected = F.binary_cross_entropy_with_logits(o[inside], target[inside])
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    sum(output_losses(logits, target, region)).backward()
    for o in logits:
        assert torch.all(o.grad[~inside] == 0) and torch.any(o.grad[inside] != 0)
    # a region of ones is the plain mean; an empty one gives 0, not NaN
    full = output_losses(logits, target, torch.ones_like(region))
    plain = output_losses(logits, target)
    assert [a.item() for a in full] == pytest.approx([b.item() for b in plain], rel=1e-6)
    assert all(v.item() == 0.0 for v in output_losses(logits, target, torch.zeros_like(region)))


def test_crop_dataset_gives_the_same_crops_with_their_masks():
    items = [replace(s, label=s.fov.copy()) for s in samples()]  # label == mask: crops must agree
    kw = dict(
        preprocessing=Preprocessing(color="gray"),
        crop=24,
        crops_per_image=3,
        augment=AugmentConfig.preset("none"),
        seed=1,
        length=4,
    )
    plain, masked = CropDataset(items, **kw), CropDataset(items, **kw, with_region=True)
    x0, y0 = collate_crops([plain[k] for k in range(4)])
    x1, y1, m1 = collate_crops([masked[k] for k in range(4)])
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert m1.shape == y1.shape and m1.dtype == torch.float32
    assert torch.equal(m1, y1) and 0 < float(m1.mean()) < 1


def test_training_on_the_fov_only_never_learns_from_labels_outside_it(tmp_path):
    # integer crop windows (no rotation): a rotated crop's bilinear label at the mask's
    # edge takes in its outside neighbours, by design of the augmentation
    cfg = TrainConfig(**TINY, augment="none", loss_region="fov")
    train(samples(), tmp_path / "clean", cfg, progress=False)
    train(samples(noise_outside=7), tmp_path / "noisy", cfg, progress=False)
    a = load_file(str(tmp_path / "clean" / "last.safetensors"))
    b = load_file(str(tmp_path / "noisy" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the same two datasets with every pixel counted: the noise changes what is learned
    every = replace(cfg, loss_region="all")
    train(samples(), tmp_path / "clean-all", every, progress=False)
    train(samples(noise_outside=7), tmp_path / "noisy-all", every, progress=False)
    c = load_file(str(tmp_path / "clean-all" / "last.safetensors"))
    d = load_file(str(tmp_path / "noisy-all" / "last.safetensors"))
    assert not all(torch.equal(c[k], d[k]) for k in c)
    saved = (tmp_path / "clean" / "train_config.json").read_text()
    assert '"loss_region": "fov"' in saved


def test_loss_region_flag_and_bad_value():
    p = argparse.ArgumentParser()
    add_training_arguments(p)
    args = p.parse_args(["-d", "data", "-o", "run", "--loss-region", "fov"])
    assert recipe_overrides(args)[0]["loss_region"] == "fov"
    assert recipe_overrides(p.parse_args(["-d", "data", "-o", "run"]))[0]["loss_region"] is None
    with pytest.raises(UsageError, match="loss_region"):
        TrainConfig(loss_region="outside")
