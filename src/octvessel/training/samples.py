"""Which images a run trains and validates on: dataset specs (PATH:P1,P2), pooled folders,
the validation split (by scan, or by ``group_by`` group: :mod:`octvessel.data.groups`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.data import load_dataset
from octvessel.data.groups import SCAN_KEY, sample_groups
from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.training.config import TrainConfig


def split_holdout(
    samples: Sequence[Sample], fraction: float, seed: int, group_by: str | None = None
) -> tuple[list[Sample], list[Sample]]:
    """(training, validation): ``ceil(fraction * groups)`` groups held out by a seeded
    permutation, at least one group left to train on.

    A group is a scan (every variant of one scan: :func:`~octvessel.data.groups.scan_of`)
    or, with ``group_by``, the scans' group (subject, eye). With one image per group this
    is :func:`octvessel.training.data.split_validation`'s split.
    """
    samples = list(samples)
    if fraction <= 0:
        return samples, []
    groups = sample_groups(samples, group_by)
    order = list(dict.fromkeys(groups))
    n_val = min(max(1, math.ceil(fraction * len(order))), len(order) - 1)
    if n_val < 1:
        what = "group(s) (--group-by)" if group_by else "scan(s)"
        raise UsageError(
            f"val_fraction={fraction}: {len(samples)} image(s) of {len(order)} {what} leave "
            "none to validate on"
        )
    perm = np.random.default_rng(seed).permutation(len(order))
    held = {order[i] for i in perm[:n_val].tolist()}
    return (
        [s for s, g in zip(samples, groups, strict=True) if g not in held],
        [s for s, g in zip(samples, groups, strict=True) if g in held],
    )


def splits_record(
    train: Sequence[Sample], val: Sequence[Sample], seed: int, group_by: str | None
) -> dict[str, Any]:
    """The content of a run's ``splits.json``: names, and the group each belongs to."""
    everything = [*train, *val]
    groups = sample_groups(everything, group_by)
    return {
        "training": [s.name for s in train],
        "validation": [s.name for s in val],
        "seed": seed,
        "group_by": group_by,
        "grouping": "every image of one scan (all its variants) on one side"
        + (
            f"; scans grouped by the first group of {group_by!r} in their names" if group_by else ""
        ),
        "groups": {s.name: g for s, g in zip(everything, groups, strict=True)},
    }


def _load_folder(
    dataset: str | Path, cfg: TrainConfig, fmt: str, observer: int, variant: str
) -> tuple[list[Sample], list[Sample]]:
    """Training and explicit-validation samples of one folder and one variant."""
    split = cfg.train_split
    if split is None:
        from octvessel.data import index_dataset

        splits = {r.split for r in index_dataset(dataset, fmt, observer=observer, variant=variant)}
        split = "training" if "training" in splits else None
    samples = load_dataset(
        dataset, fmt, split, observer=observer, variant=variant, require_labels=True
    )
    val = []
    if cfg.val_split:
        val = load_dataset(
            dataset, fmt, cfg.val_split, observer=observer, variant=variant, require_labels=True
        )
    return samples, val


def _pooled(sample: Sample, prefix: str) -> Sample:
    """``sample`` renamed ``prefix + name``, its scan name kept in ``meta``."""
    meta = {**sample.meta, SCAN_KEY: sample.meta.get(SCAN_KEY, sample.name)}
    return replace(sample, name=prefix + sample.name, meta=meta)


def split_variants(text: str) -> list[str]:
    """``"P1,P2"`` -> ``["P1", "P2"]`` (empty -> ``["P1"]``)."""
    return [v.strip() for v in str(text).split(",") if v.strip()] or ["P1"]


def parse_dataset_spec(entry: str | Path, default_variants: list[str]) -> tuple[Path, list[str]]:
    """``PATH`` or ``PATH:P1,P2,P3`` (variants of a CAVRI-C-style folder) -> (path, variants)."""
    text = str(entry)
    head, sep, tail = text.rpartition(":")
    if sep and re.fullmatch(r"P\d+(,P\d+)*", tail, re.I) and head:
        return Path(head), split_variants(tail.upper())
    return Path(text), default_variants


def load_samples(
    dataset: str | Path | Sequence[str | Path] | Sequence[Sample],
    cfg: TrainConfig,
    fmt: str,
    observer: int,
    variant: str,
    group_by: str | None = None,
) -> tuple[list[Sample], list[Sample], str]:
    """(training, validation, description) from one or several folders, or in-memory samples.

    Several folders (or ``variant="P1,P2,P3"``, or ``PATH:P1,P2,P3`` for one folder) are
    pooled; sample names get a ``folder/variant`` prefix so they stay unique, and
    ``meta["scan"]`` keeps the name in the folder: a held-out validation split
    (``val_fraction``) keeps every image of one scan -- and with ``group_by`` of one
    group -- on one side (:func:`split_holdout`).
    """
    if isinstance(dataset, (str, Path)):
        entries = [dataset]
    elif dataset and all(isinstance(d, (str, Path)) for d in dataset):
        entries = list(dataset)
    else:
        samples = list(dataset)
        train, held = split_holdout(samples, cfg.val_fraction, cfg.seed, group_by)
        return train, held, "<in-memory samples>"
    default_variants = split_variants(variant)
    folders = [parse_dataset_spec(e, default_variants) for e in entries]
    pooled = len(folders) > 1 or any(len(v) > 1 for _, v in folders)
    samples, val = [], []
    for folder, variants in folders:
        for v in variants:
            s, vs = _load_folder(folder, cfg, fmt, observer, v)
            if pooled:
                prefix = f"{folder.name}/{v}/" if len(variants) > 1 else f"{folder.name}/"
                s = [_pooled(x, prefix) for x in s]
                vs = [_pooled(x, prefix) for x in vs]
            samples += s
            val += vs
    train, held = split_holdout(samples, cfg.val_fraction, cfg.seed, group_by)
    name = " + ".join(
        str(f) + (f":{','.join(v)}" if v != default_variants or len(v) > 1 else "")
        for f, v in folders
    )
    return train, val or held, name
