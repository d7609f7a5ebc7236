"""Which images a run trains and validates on: dataset specs (PATH:P1,P2), pooled folders, the validation split."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from octvessel.data import load_dataset
from octvessel.data.sample import Sample
from octvessel.training.config import TrainConfig
from octvessel.training.data import (
    split_validation,
)


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
) -> tuple[list[Sample], list[Sample], str]:
    """(training, validation, description) from one or several folders, or in-memory samples.

    Several folders (or ``variant="P1,P2,P3"``, or ``PATH:P1,P2,P3`` for one folder) are
    pooled; sample names get a ``folder/variant`` prefix so they stay unique.
    """
    if isinstance(dataset, (str, Path)):
        entries = [dataset]
    elif dataset and all(isinstance(d, (str, Path)) for d in dataset):
        entries = list(dataset)
    else:
        samples = list(dataset)
        train, held = split_validation(samples, cfg.val_fraction, cfg.seed)
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
                s = [replace(x, name=prefix + x.name) for x in s]
                vs = [replace(x, name=prefix + x.name) for x in vs]
            samples += s
            val += vs
    train, held = split_validation(samples, cfg.val_fraction, cfg.seed)
    name = " + ".join(
        str(f) + (f":{','.join(v)}" if v != default_variants or len(v) > 1 else "")
        for f, v in folders
    )
    return train, val or held, name
