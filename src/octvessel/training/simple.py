"""A minimal in-memory loop: ``train_on_crops(model, samples, recipe, preprocessing)``.

For experiments and tests that want a model trained for a few steps without a run folder.
It uses the trainer's crop pipeline (:class:`~octvessel.training.data.CropDataset`, flips
and 90-degree-free augmentation ``flips``) and loss; ``octvessel train`` adds recipes,
validation, checkpoints, resume and DDP.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from octvessel.config import JsonConfig
from octvessel.data.augment import AugmentConfig
from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.models.base import SegmentationModel
from octvessel.precision import autocast_for
from octvessel.preprocessing import Preprocessing
from octvessel.training.data import CropDataset, build_loader, check_trainable
from octvessel.training.loop import output_losses


@dataclass(frozen=True)
class CropRecipe(JsonConfig):
    """A short crop-based recipe.

    Attributes:
        steps: optimiser steps.
        crop: square crop side (pixels); crops beyond an image's border are mirrored.
        batch: crops per step (one crop per drawn image).
        lr: Adam learning rate.
        seed: seeds torch and the crops.
        bf16: bfloat16 autocast for the forward pass.
        augment: ``flips`` (default), ``reference`` or ``none``.
    """

    steps: int = 200
    crop: int = 64
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    bf16: bool = False
    augment: str = "flips"

    def __post_init__(self) -> None:
        for name in ("steps", "crop", "batch"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name}={getattr(self, name)!r}: expected a positive integer")
        if not self.lr > 0:
            raise UsageError(f"lr={self.lr!r}: expected a positive number")
        AugmentConfig.preset(self.augment)


def multi_output_bce(outputs: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over all outputs with equal weights (IterNet's loss)."""
    return sum(output_losses(outputs, target))


def train_on_crops(
    model: SegmentationModel,
    samples: Sequence[Sample],
    recipe: CropRecipe,
    preprocessing: Preprocessing,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` in place for ``recipe.steps`` steps; returns one record per step."""
    check_trainable(samples, recipe.crop)
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    data = CropDataset(
        samples,
        preprocessing,
        recipe.crop,
        1,
        AugmentConfig.preset(recipe.augment),
        recipe.seed,
        recipe.steps * recipe.batch,
    )
    loader = build_loader(data, recipe.steps, recipe.batch, workers=0, rank=0, world=1)
    model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    precision = "bf16" if recipe.bf16 else "fp32"
    history = []
    start = time.perf_counter()
    bar = tqdm(
        loader,
        total=recipe.steps,
        desc="train",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    for step, (x, y) in enumerate(bar):
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        with autocast_for(device, precision):
            outputs = model(x)
        loss = multi_output_bce(outputs, y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        history.append({"step": step + 1, "loss": value, "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{value:.3f}")
    model.eval()
    return history
