"""The core training loop: random crops, flips, BCE summed over every output, Adam.

This is the minimal loop the demo uses; ``octvessel train`` (recipes, validation,
checkpoints, resume, DDP) is built on the same pieces.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from octvessel.config import JsonConfig
from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.inference import autocast
from octvessel.models.base import SegmentationModel
from octvessel.preprocessing import Preprocessing


@dataclass(frozen=True)
class CropRecipe(JsonConfig):
    """A short crop-based training recipe.

    Attributes:
        steps: optimiser steps.
        crop: square crop side (pixels); images smaller than this are padded by reflection.
        batch: crops per step.
        lr: Adam learning rate.
        seed: seeds torch and the crop sampler.
        bf16: bfloat16 autocast for the forward pass.
    """

    steps: int = 200
    crop: int = 64
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    bf16: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "crop", "batch"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name}={getattr(self, name)!r}: expected a positive integer")
        if not self.lr > 0:
            raise UsageError(f"lr={self.lr!r}: expected a positive number")


class CropSampler:
    """Random ``crop`` x ``crop`` crops with random flips and 90-degree turns.

    Yields (x, y): float32 N x C x crop x crop inputs and N x 1 x crop x crop float targets.
    """

    def __init__(
        self, samples: Sequence[Sample], preprocessing: Preprocessing, crop: int, seed: int
    ) -> None:
        if not samples:
            raise UsageError("no training images")
        missing = [s.name for s in samples if s.label is None]
        if missing:
            raise UsageError(f"training needs labels; images without one: {', '.join(missing[:5])}")
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.inputs, self.targets = [], []
        for s in samples:
            x, y = preprocessing(s.image), s.label.astype(np.float32)[None]
            ph, pw = max(crop - x.shape[1], 0), max(crop - x.shape[2], 0)
            if ph or pw:
                mode = "reflect" if ph < x.shape[1] and pw < x.shape[2] else "edge"
                x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode=mode)
                y = np.pad(y, ((0, 0), (0, ph), (0, pw)), mode=mode)
            self.inputs.append(x)
            self.targets.append(y)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for _ in range(n):
            i = self.rng.integers(len(self.inputs))
            x, y = self.inputs[i], self.targets[i]
            r = self.rng.integers(x.shape[1] - self.crop + 1)
            c = self.rng.integers(x.shape[2] - self.crop + 1)
            x, y = (
                x[:, r : r + self.crop, c : c + self.crop],
                y[:, r : r + self.crop, c : c + self.crop],
            )
            if self.rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            if self.rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            k = int(self.rng.integers(4))
            x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def multi_output_bce(outputs: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over all outputs with equal weights (IterNet's loss)."""
    return sum(F.binary_cross_entropy_with_logits(o.float(), target) for o in outputs)


def train_on_crops(
    model: SegmentationModel,
    samples: Sequence[Sample],
    recipe: CropRecipe,
    preprocessing: Preprocessing,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` in place; returns one record per step (loss, seconds)."""
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    sampler = CropSampler(samples, preprocessing, recipe.crop, recipe.seed)
    model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    history = []
    bar = tqdm(
        range(recipe.steps), desc="train", unit="step", disable=not progress, dynamic_ncols=True
    )
    start = time.perf_counter()
    for step in bar:
        x, y = sampler.batch(recipe.batch)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        y = y.to(device)
        with autocast(device, recipe.bf16):
            outputs = model(x)
        loss = multi_output_bce(outputs, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        history.append({"step": step + 1, "loss": value, "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{value:.3f}")
    model.eval()
    return history
