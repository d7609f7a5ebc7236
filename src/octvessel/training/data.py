"""Training data: splits, a reproducible crop dataset and its loaders.

Every crop is a pure function of ``(seed, epoch, item)``: the item's random generator is
seeded with those three numbers, so the same crops come out whatever the worker count,
after a resume, and -- with disjoint item ranges -- in every process under torchrun.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from octvessel.data.augment import AugmentConfig, random_crop
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.inference.engine import resample
from octvessel.inference.scale import scale_factors, scaled_grid
from octvessel.pixel_size import ModelScale
from octvessel.preprocessing import Preprocessing
from octvessel.scale import resolve_pixel_size

#: retina per degree of field angle assumed when only a FOV diameter is known (as octify)
MM_PER_DEGREE = 0.29
#: the field angle assumed for photographs pooled by FOV diameter without a pixel size
DEFAULT_FIELD_DEG = 45.0


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


def augment_config(cfg: Any) -> AugmentConfig:
    """The crops' augmentation of a :class:`~octvessel.training.config.TrainConfig`:
    its ``augment`` preset plus the physical-scale jitter (``scale_jitter``)."""
    aug = AugmentConfig.preset(cfg.augment)
    j = float(getattr(cfg, "scale_jitter", 0.0) or 0.0)
    if j > 0:
        aug = replace(aug, scale_p=1.0, scale_range=(1.0 / (1.0 + j), 1.0 + j))
    return aug


def _rescale(sample: Sample, grid: tuple[int, int]) -> Sample:
    """The sample on ``grid``: image bilinear (anti-aliased), label and FOV at >= 0.5."""
    img = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1)))[None]
    image = resample(img, grid)[0].numpy().transpose(1, 2, 0)
    label = resample(sample.label.astype(np.float32), grid) >= 0.5
    fov = resample(sample.fov.astype(np.float32), grid) >= 0.5
    return replace(sample, image=np.ascontiguousarray(image, np.float32), label=label, fov=fov)


def pool_scale(
    train: Sequence[Sample], val: Sequence[Sample], cfg: Any
) -> tuple[list[Sample], list[Sample], ModelScale | None, list[str]]:
    """Bring every training (and validation) image to one pixel size.

    The target is ``cfg.pixel_size_mm`` and/or ``cfg.fov_px``; each image's own pixel size
    comes from :func:`octvessel.scale.resolve_pixel_size` (the dataset's spacing, its
    sidecars, else the FOV diameter of its mask). Images whose size cannot be related to
    the target are kept as they are (listed in the notes). Without a target nothing is
    resampled, and the returned scale is the images' common pixel size (None when they
    do not share one). Labels are resampled with their images here (training data), never
    at scoring.

    Returns:
        (train, val, the :class:`ModelScale` the network learns at or None, notes).
    """
    samples = [*train, *val]
    target_mm = getattr(cfg, "pixel_size_mm", None)
    target_fov = getattr(cfg, "fov_px", None)
    estimate = target_fov is not None  # a FOV diameter only helps towards a FOV target
    given_mm = getattr(cfg, "input_spacing_mm", None)
    given_fov = getattr(cfg, "input_fov_px", None)
    pixels = [
        resolve_pixel_size(
            spacing=given_mm,
            fov_px=given_fov,
            data_spacing=s.spacing,
            path=s.path,
            fov=s.fov,
            estimate=estimate,
        )
        for s in samples
    ]
    sources = Counter(p.source for p in pixels)
    found = "training images' pixel size from " + ", ".join(
        f"{src} x{n}" for src, n in sorted(sources.items())
    )
    if target_mm is None and target_fov is None:
        spacings = {p.spacing for p in pixels}
        if len(spacings) == 1 and None not in spacings:
            common = ModelScale(next(iter(spacings)), note="training images' spacing")
            return (
                list(train),
                list(val),
                common,
                [f"{found}; trained at it: {common.describe()} (not resampled)"],
            )
        return list(train), list(val), None, [f"{found}; not resampled (no pixel_size_mm/fov_px)"]
    if target_mm is None:
        mm = DEFAULT_FIELD_DEG * MM_PER_DEGREE / float(target_fov)
        target = ModelScale(
            (mm, mm),
            fov_px=target_fov,
            field_deg=DEFAULT_FIELD_DEG,
            note=f"pooled to a FOV of {target_fov:g} px; mm per pixel assumes a 45 deg camera",
        )
    else:
        target = ModelScale(tuple(target_mm), fov_px=target_fov, note="pooled to pixel_size_mm")
    out, notes = [], [f"{found}; all brought to {target.describe()}"]
    for s, p in zip(samples, pixels, strict=True):
        factors = scale_factors(p, target)
        if factors is None:
            notes.append(f"{s.name}: pixel size unknown ({p.describe()}); kept as it is")
            out.append(s)
            continue
        grid = scaled_grid(s.shape, factors)
        out.append(s if grid == s.shape else _rescale(s, grid))
    return out[: len(train)], out[len(train) :], target, notes


@dataclass
class _Prepared:
    x: np.ndarray  # float32 C x H x W network input
    label: np.ndarray  # bool H x W
    fov: np.ndarray  # bool H x W


class CropDataset(Dataset):
    """Item ``k`` of epoch ``e``: ``crops_per_image`` augmented crops of one random image.

    Returns (x, y): float32 crops_per_image x C x crop x crop and float32
    crops_per_image x 1 x crop x crop targets in {0, 1}; with ``with_region`` (x, y, m), m
    the crops' masks (float32 crops_per_image x 1 x crop x crop in {0, 1}: the pixels
    the loss counts, ``loss_region = "fov"``). The crops are the same either way.
    ``set_epoch`` must be called before each epoch (the trainer does).
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
        with_region: bool = False,
    ) -> None:
        self.with_region = with_region
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

    def __getitem__(self, k: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.epoch, int(k)])
        item = self.items[int(rng.integers(len(self.items)))]
        xs, ys, ms = [], [], []
        for _ in range(self.crops_per_image):
            x, y, m = random_crop(item.x, item.label, item.fov, self.crop, rng, self.augment)
            xs.append(x)
            ys.append(y[None].astype(np.float32))
            ms.append(m[None].astype(np.float32))
        out = (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)))
        return (*out, torch.from_numpy(np.stack(ms))) if self.with_region else out


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


def collate_crops(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """(images x crops x C x h x w) -> (images*crops) x C x h x w, same for targets (and masks)."""
    return tuple(torch.cat(parts) for parts in zip(*batch, strict=True))


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
