"""Training data: splits, a reproducible crop dataset and its loaders.

Every crop is a pure function of ``(seed, epoch, item)``: the item's random generator is
seeded with those three numbers, so the same crops come out whatever the worker count,
after a resume, and -- with disjoint item ranges -- in every process under torchrun.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from octvessel.data.augment import AugmentConfig, random_crop
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.preprocessing import Preprocessing


def check_trainable(samples: Sequence[Sample], crop: int) -> None:
    """Labels present; crops larger than an image are allowed (mirrored), tiny images are not."""
    if not samples:
        raise UsageError("no training images")
    for s in samples:
        if s.label is None:
            raise InputError("training needs a label for every image; this one has none", s.path)
        if min(s.shape) < 4:
            raise InputError(
                f"image of {s.shape[0]}x{s.shape[1]} pixels is too small to train on", s.path
            )


def split_validation(
    samples: Sequence[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Hold out ceil(fraction * n) images chosen by a seeded permutation (at least one left to train)."""
    samples = list(samples)
    if fraction <= 0:
        return samples, []
    n_val = min(max(1, int(np.ceil(fraction * len(samples)))), len(samples) - 1)
    if n_val < 1:
        raise UsageError(
            f"val_fraction={fraction}: {len(samples)} image(s) leave none to validate on"
        )
    order = np.random.default_rng(seed).permutation(len(samples))
    val_idx = set(order[:n_val].tolist())
    return [s for i, s in enumerate(samples) if i not in val_idx], [
        s for i, s in enumerate(samples) if i in val_idx
    ]


def fingerprint(samples: Sequence[Sample]) -> str:
    """sha256 over the names and the bytes of every image and label file (first 16 hex digits)."""
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.name):
        digest.update(s.name.encode())
        for path in (s.path, s.label_path):
            if path is not None:
                with open(path, "rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        digest.update(chunk)
            elif s.label is not None:  # in-memory samples: hash the arrays
                digest.update(np.ascontiguousarray(s.image).tobytes())
                digest.update(np.packbits(s.label).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class _Prepared:
    x: np.ndarray  # float32 C x H x W network input
    label: np.ndarray  # bool H x W
    fov: np.ndarray  # bool H x W


class CropDataset(Dataset):
    """Item ``k`` of epoch ``e``: ``crops_per_image`` augmented crops of one random image.

    Returns (x, y): float32 crops_per_image x C x crop x crop and float32
    crops_per_image x 1 x crop x crop targets in {0, 1}. ``set_epoch`` must be called before
    each epoch (the trainer does).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        preprocessing: Preprocessing,
        crop: int,
        crops_per_image: int,
        augment: AugmentConfig,
        seed: int,
        length: int,
    ) -> None:
        self.items = [
            _Prepared(preprocessing(s.image), s.label.astype(bool), s.fov.astype(bool))
            for s in samples
        ]
        self.crop, self.crops_per_image, self.augment = crop, crops_per_image, augment
        self.seed, self.length, self.epoch = seed, length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(k)])
        item = self.items[int(rng.integers(len(self.items)))]
        xs, ys = [], []
        for _ in range(self.crops_per_image):
            x, y, _ = random_crop(item.x, item.label, item.fov, self.crop, rng, self.augment)
            xs.append(x)
            ys.append(y[None].astype(np.float32))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


class RankSlice(torch.utils.data.Sampler[int]):
    """The items one process uses in one epoch, from step ``start_step`` on.

    Step ``s`` of process ``rank`` uses items ``(s * world + rank) * b ... + b - 1`` with
    ``b = images_per_batch``: disjoint across processes, identical after a resume.
    """

    def __init__(
        self, steps: int, images_per_batch: int, rank: int = 0, world: int = 1, start_step: int = 0
    ) -> None:
        self.steps, self.b, self.rank, self.world, self.start_step = (
            steps,
            images_per_batch,
            rank,
            world,
            start_step,
        )

    def __iter__(self):
        for s in range(self.start_step, self.steps):
            base = (s * self.world + self.rank) * self.b
            yield from range(base, base + self.b)

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.b


def collate_crops(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images x crops x C x h x w) -> (images*crops) x C x h x w, same for targets."""
    xs, ys = zip(*batch, strict=True)
    return torch.cat(xs), torch.cat(ys)


def build_loader(
    dataset: CropDataset,
    steps: int,
    images_per_batch: int,
    workers: int,
    rank: int,
    world: int,
    start_step: int = 0,
) -> DataLoader:
    """A loader over one epoch's items for this process, starting at ``start_step``."""
    return DataLoader(
        dataset,
        batch_size=images_per_batch,
        sampler=RankSlice(steps, images_per_batch, rank, world, start_step),
        num_workers=workers,
        collate_fn=collate_crops,
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global torch RNG,
        # or a resumed epoch would see other dropout masks than an uninterrupted one
        generator=torch.Generator().manual_seed(0),
        pin_memory=torch.cuda.is_available(),
    )
