"""Labelled datasets: find the layout, pick a split, and load samples.

``index_dataset`` lists the files (cheap, no pixels read) and returns :class:`SampleRef`
objects whose ``.load()`` gives a :class:`Sample`, so big datasets can be streamed;
``load_dataset`` loads every ref. Layouts are described in :mod:`octvessel.data.layouts`
(``LAYOUTS``).

An optional ``dataset.json`` at the dataset root may hold::

    {"splits": {"training": ["name", ...], "test": [...]},   # overrides folder splits
     "channels": 1 | 3,                                      # convert images on load
     "spacing": [row_mm, col_mm],                            # pixel size
     "format": "drive" | "chase" | ...}                      # skip auto-detection
"""

from __future__ import annotations

import json
import numbers
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from octvessel.data.io import is_image_file
from octvessel.data.layouts import (
    FORMATS,
    INDEXERS,
    LAYOUTS,
    SPLIT_ALIASES,
    SampleRef,
    detect_layout,
    natural_key,
)
from octvessel.data.loading import CAVRI_NATIVE_SHAPES, CAVRI_SCAN_MM, load_ref  # noqa: F401
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.layout import DATASET_JSON

VARIANTS = ("P1", "P2", "P3")

__all__ = ["FORMATS", "SampleRef", "detect_format", "index_dataset", "load_dataset", "load_ref"]


@dataclass(frozen=True)
class DatasetConfig:
    """The contents of a ``dataset.json`` (all optional)."""

    splits: dict[str, tuple[str, ...]] | None = None
    channels: int | None = None
    spacing: tuple[float, float] | None = None
    format: str | None = None


def read_dataset_json(root: Path) -> DatasetConfig:
    """Parse and validate ``root/dataset.json``; an empty config when there is none."""
    path = root / DATASET_JSON
    if not path.is_file():
        return DatasetConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read dataset.json ({exc})", path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path
        ) from exc
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with keys splits, channels, spacing, format", path)

    splits = data.get("splits")
    if splits is not None:
        if not isinstance(splits, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(n, str) for n in v)
            for k, v in splits.items()
        ):
            raise InputError('"splits" must map split names to lists of sample names', path)
        splits = {SPLIT_ALIASES.get(k, k): tuple(v) for k, v in splits.items()}
        seen = Counter(n for v in splits.values() for n in v)
        twice = sorted((n for n, c in seen.items() if c > 1), key=natural_key)
        if twice:
            raise InputError(
                f'"splits" lists samples more than once: {", ".join(twice[:10])}', path
            )

    channels = data.get("channels")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise InputError(f'"channels" is {channels!r}; expected 1 or 3', path)

    spacing = data.get("spacing")
    if spacing is not None:
        ok = (
            isinstance(spacing, list)
            and len(spacing) == 2
            and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in spacing
            )
        )
        if not ok:
            raise InputError(
                f'"spacing" is {spacing!r}; expected [row_mm, col_mm], two positive numbers', path
            )
        spacing = (float(spacing[0]), float(spacing[1]))

    fmt = data.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f'"format" is {fmt!r}; expected one of: {", ".join(FORMATS)}', path)
    return DatasetConfig(splits=splits, channels=channels, spacing=spacing, format=fmt)


def _check_root(path: str | Path) -> Path:
    root = Path(path)
    if not root.exists():
        raise InputError("dataset folder not found", root)
    if not root.is_dir():
        raise InputError("expected a dataset folder, found a file", root)
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise InputError("dataset folder is empty", root)
    return root


def detect_format(path: str | Path) -> str:
    """The layout of a dataset folder: one of ``FORMATS``.

    ``dataset.json``'s ``"format"`` wins; otherwise the folder's content decides
    (STARE, DRIVE, HRF, CAVRI-C, CHASE_DB1, generic, in that order).

    Raises:
        InputError: missing or empty folder, or a layout that matches none of ``FORMATS``
            (the message lists what each layout looks like).
    """
    root = _check_root(path)
    return _format_of(root, read_dataset_json(root))


def _format_of(root: Path, config: DatasetConfig) -> str:
    """``config.format`` (from dataset.json) or the detected layout of ``root``."""
    if config.format:
        return config.format
    found = detect_layout(root)
    if found is None:
        expected = "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items())
        raise InputError(
            f"unknown dataset layout ({_contents(root)}); pass --format (format=) or use one "
            f"of -- {expected}",
            root,
        )
    return found


def _contents(root: Path) -> str:
    """What a folder holds, briefly: its sub-folders and how many images lie at the top."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    folders = sorted((p.name for p in entries if p.is_dir()), key=natural_key)
    images = sum(1 for p in entries if is_image_file(p))
    shown = ", ".join(folders[:6]) + (", ..." if len(folders) > 6 else "")
    return (
        f"found {images} image file(s) and {len(folders)} folder(s){': ' + shown if shown else ''}"
    )


def index_dataset(
    path: str | Path,
    format: str = "auto",
    split: str | None = None,
    *,
    observer: int = 1,
    variant: str = "P1",
    require_labels: bool = False,
) -> list[SampleRef]:
    """List a dataset's samples without reading pixels; see :func:`load_dataset`."""
    check_choice("format", format, ("auto", *FORMATS))
    if isinstance(observer, bool) or observer not in (1, 2):
        raise UsageError(f"observer={observer!r} is not valid; expected one of: 1, 2")
    variant = check_choice(
        "variant", variant.upper() if isinstance(variant, str) else variant, VARIANTS
    )
    if split is not None and not isinstance(split, str):
        raise UsageError(f"split={split!r} is not valid; expected a split name or None")

    root = _check_root(path)
    config = read_dataset_json(root)
    fmt = _format_of(root, config) if format == "auto" else format  # dataset.json read once
    refs = INDEXERS[fmt](root, observer, variant)
    if not refs:
        raise InputError(f"no {fmt} images found; expected {LAYOUTS[fmt]}", root)
    if config.splits is not None:
        refs = _apply_json_splits(refs, config.splits, root / DATASET_JSON)
    if config.channels is not None or config.spacing is not None:
        refs = [
            replace(r, channels=config.channels or r.channels, spacing=config.spacing or r.spacing)
            for r in refs
        ]
    refs = _unique_names(_select_split(refs, split, fmt, root))

    if require_labels:
        missing = [r for r in refs if r.label_path is None]
        if missing and fmt == "stare":  # the full STARE set has many unlabelled images
            refs = [r for r in refs if r.label_path is not None]
        elif missing:
            r = missing[0]
            more = f" ({len(missing) - 1} more images lack labels)" if len(missing) > 1 else ""
            raise InputError(f"image has no label; expected {r.expected_label}{more}", r.image_path)
        if not refs:
            raise InputError(f"no labelled {fmt} images found; expected {LAYOUTS[fmt]}", root)
    return sorted(refs, key=lambda r: (natural_key(r.name), r.split or ""))


def load_dataset(
    path: str | Path,
    format: str = "auto",
    split: str | None = None,
    *,
    observer: int = 1,
    variant: str = "P1",
    require_labels: bool = False,
) -> list[Sample]:
    """Load a labelled (or unlabelled) dataset, sorted by name in natural order.

    Args:
        path: the dataset folder.
        format: ``"auto"`` (detect from the content) or one of ``FORMATS``.
        split: ``"training"`` (alias ``"train"``), ``"test"``, another split named by the
            folders or ``dataset.json``, or None for every sample. Datasets without splits
            (CHASE_DB1, STARE, HRF, flat layouts) accept only None.
        observer: 1 or 2: whose manual labels (DRIVE test, CHASE_DB1, STARE have two).
        variant: CAVRI-C reconstruction variant ``"P1"``, ``"P2"`` or ``"P3"``.
        require_labels: every image must have a label; unlabelled STARE images are
            skipped instead (the full STARE set is mostly unlabelled).

    Returns:
        One :class:`Sample` per image: image float32 H x W x C in [0, 1], label bool H x W
        or None, fov bool H x W (from the mask file, else derived from the image). Names
        that repeat across the selected split folders get the split as prefix
        (``test_x1``).

    Raises:
        UsageError: bad option value, or a split the dataset does not have.
        InputError: missing/empty folder, unknown layout, unreadable file, label or mask
            whose size differs from the image, non-binary label, missing label when
            required.
    """
    refs = index_dataset(
        path, format, split, observer=observer, variant=variant, require_labels=require_labels
    )
    return [ref.load() for ref in refs]


def _unique_names(refs: list[SampleRef]) -> list[SampleRef]:
    """Names repeated across the selected split folders become ``<split>_<name>``."""
    counts = Counter(r.name for r in refs)
    dup = {n for n, c in counts.items() if c > 1}
    if not dup:
        return refs
    out = [replace(r, name=f"{r.split}_{r.name}") if r.name in dup and r.split else r for r in refs]
    again = Counter(r.name for r in out)
    clash = [r for r in out if again[r.name] > 1]
    if clash:
        raise InputError(
            f"two images are both named {clash[0].name!r}: {clash[0].image_path.name} and "
            f"{clash[1].image_path.name}; rename one",
            clash[0].image_path.parent,
        )
    return out


def _apply_json_splits(
    refs: list[SampleRef], splits: dict[str, tuple[str, ...]], path: Path
) -> list[SampleRef]:
    names = {r.name for r in refs}
    for split, members in splits.items():
        unknown = [n for n in members if n not in names]
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise InputError(
                f"split {split!r} names {len(unknown)} samples that are not in the dataset: {shown}",
                path,
            )
    where = {n: s for s, members in splits.items() for n in members}
    return [replace(r, split=where.get(r.name)) for r in refs]


def _select_split(
    refs: list[SampleRef], split: str | None, fmt: str, root: Path
) -> list[SampleRef]:
    if split is None:
        return refs
    available = sorted({r.split for r in refs if r.split is not None})
    if not available:
        raise UsageError(
            f"this {fmt} dataset has no splits; use split=None, or add a dataset.json with "
            '"splits": {"training": [...], "test": [...]}',
            root,
        )
    wanted = SPLIT_ALIASES.get(split, split)
    if wanted not in available:
        raise UsageError(
            f"split={split!r} is not valid for this dataset; expected one of: {', '.join(available)}",
            root,
        )
    return [r for r in refs if r.split == wanted]
