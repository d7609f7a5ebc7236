"""The files a prediction folder holds, and how they are written and checked.

Per image ``NAME``: ``NAME_prob.png`` (16-bit probability, 0..65535), ``NAME_prob.tif``
(float32 probability, exact), ``NAME_mask.png`` (8-bit {0, 255} at the threshold),
``NAME_overlay.png`` (the mask over the image). File names come from
:mod:`octvessel.layout`.

The folder's ``prediction.json`` records what made them: the last run's model and
settings at the top, and under ``"images"`` one record per output image (source file,
variant, pixel size, model, weights sha256, settings; built by
:meth:`octvessel.inference.predictor.Predictor.image_record`). It is written only once an
output exists (never for a run whose every image failed), updated as images are done and
on the way out of an interrupted run, so a rerun knows which outputs each model made:
:func:`plan_outputs` skips a run's own outputs, refuses outputs made otherwise (unless
``overwrite``) and, after an interrupted ``--overwrite``, continues that run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import atomic, layout
from octvessel.data.io import write_image, write_mask
from octvessel.errors import InputError, UsageError
from octvessel.visualize import overlay

#: output kinds and their file-name suffixes
OUTPUTS = layout.PREDICTION_OUTPUTS
MANIFEST = layout.PREDICTION_MANIFEST
#: inference settings that change resources, not results: free to differ on a rerun
RESOURCE_SETTINGS = ("memory_budget_mb", "batch_size")
#: manifest entries that must agree before new outputs join a folder
RESULT_KEYS = ("weights_sha256", "preprocessing", "inference", "threshold", "scale_options")
#: how each differing entry is named in messages
KEY_WORDS = {
    "weights_sha256": "model (weights sha256)",
    "preprocessing": "preprocessing",
    "inference": "inference settings",
    "threshold": "threshold",
    "scale_options": "--spacing / --fov-px",
    "source": "source image",
}
#: manifest entry of an ``--overwrite`` run that has not finished (its settings)
PENDING = "overwrite_pending"


def output_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The output files of image ``name``: kind -> path (see :data:`OUTPUTS`)."""
    return layout.prediction_paths(out_dir, name)


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """This rank's share: items ``rank``, ``rank + world_size``, ... (disjoint, complete)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank={rank}, world_size={world_size}: expected 0 <= rank < world_size")
    return items[rank::world_size]


def write_outputs(
    out_dir: str | Path,
    name: str,
    image: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float = 0.5,
    overwrite: bool = False,
    kinds: tuple[str, ...] | None = None,
) -> list[Path]:
    """Write the probability (16-bit PNG, float32 TIFF), mask and overlay of one image.

    ``image``: float32 H x W x C in [0, 1]; ``prob``: float32 H x W in [0, 1]. Only
    ``kinds`` (default all of :data:`OUTPUTS`) are written; each atomically. Existing files
    raise :class:`InputError` unless ``overwrite``.
    """
    paths = output_paths(out_dir, name)
    mask = prob >= threshold
    writers = {
        "prob_png": lambda p: write_image(p, prob, bits=16, overwrite=overwrite),
        "prob_tif": lambda p: write_image(p, prob, overwrite=overwrite),
        "mask": lambda p: write_mask(p, mask, overwrite=overwrite),
        "overlay": lambda p: write_image(p, overlay(image, mask), overwrite=overwrite),
    }
    return [writers[kind](paths[kind]) for kind in kinds or tuple(OUTPUTS)]


def comparable(manifest: Any) -> Any:
    """``manifest`` without the resource settings (:data:`RESOURCE_SETTINGS`)."""
    if isinstance(manifest, dict) and isinstance(manifest.get("inference"), dict):
        inference = {k: v for k, v in manifest["inference"].items() if k not in RESOURCE_SETTINGS}
        return {**manifest, "inference": inference}
    return manifest


def check_manifest(out_dir: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix outputs of another model or threshold into a folder (unless overwrite).

    The folder-level check of older folders; :func:`plan_outputs` checks per image.
    Resource settings (memory budget, batch size) may differ between runs.
    """
    theirs = read_manifest(out_dir)
    if theirs is not None and not overwrite:
        differ = differences(theirs, manifest)
        if differ:
            raise InputError(
                f"holds predictions made with another {' / '.join(differ)}; "
                "pass --overwrite to redo them, or choose another folder",
                out_dir,
            )


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The folder's ``prediction.json`` as a dict, or None (absent or unreadable)."""
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded(manifest: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """What made image ``name``'s outputs: its record, else the folder's last run (older
    folders have no per-image records), else None."""
    if manifest is None:
        return None
    images = manifest.get("images")
    record = images.get(name) if isinstance(images, dict) else None
    if isinstance(record, dict):
        return record
    return manifest if any(k in manifest for k in RESULT_KEYS) else None


def differences(theirs: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """The entries (:data:`RESULT_KEYS`, and ``source`` when both record one) that differ."""
    a, b = comparable(theirs), comparable(mine)
    keys = [k for k in RESULT_KEYS if a.get(k) != b.get(k)]
    if a.get("source") is not None and b.get("source") is not None and a["source"] != b["source"]:
        keys.append("source")
    return [KEY_WORDS.get(k, k) for k in keys]


@dataclass
class OutputPlan:
    """What a run does with each image: the kinds to write, or None (skip)."""

    kinds: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    #: images whose outputs were made otherwise and are redone (``overwrite``)
    replaced: list[str] = field(default_factory=list)
    #: records for outputs kept whose maker is known only from the folder's last run
    adopted: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: an interrupted ``--overwrite`` run with these settings is continued
    resumed: bool = False
    #: other images' outputs made otherwise, removed by an ``overwrite`` run (so that the
    #: folder holds one model's outputs)
    removed: list[str] = field(default_factory=list)


def plan_outputs(
    out_dir: Path,
    records: dict[str, dict[str, Any]],
    facts: dict[str, Any],
    overwrite: bool,
) -> OutputPlan:
    """Decide, per image (``records``: name -> the record this run would write), what to do.

    - no outputs yet: write them all;
    - outputs that this model and these settings made (from the same source): skip them,
      writing only kinds that are missing;
    - outputs made otherwise: refused (:class:`InputError` naming the files and what
      differs), or with ``overwrite`` redone;
    - ``overwrite``: every output is redone, except when the folder records an
      ``--overwrite`` run with the same settings that did not finish: that run is
      continued (what it did already is kept, the rest is redone).
    """
    manifest = read_manifest(out_dir)
    pending = manifest.get(PENDING) if manifest is not None else None
    plan = OutputPlan(resumed=overwrite and pending is not None and pending == comparable(facts))
    redo_all = overwrite and not plan.resumed
    differ: dict[str, tuple[list[str], Any]] = {}
    for name, record in records.items():
        paths = output_paths(out_dir, name)
        missing = tuple(k for k, p in paths.items() if not p.exists())
        if len(missing) == len(paths) or redo_all:
            plan.kinds[name] = tuple(paths)
            continue
        theirs = recorded(manifest, name)
        why = differences(theirs, record) if theirs is not None else []
        if why:
            differ[name] = (why, theirs.get("model"))  # type: ignore[union-attr]
            plan.kinds[name] = tuple(paths)
            plan.replaced.append(name)
            continue
        plan.kinds[name] = missing or None
        if theirs is not None and theirs is manifest:
            plan.adopted[name] = record
    if differ and not overwrite:
        raise InputError(mixed_message(differ), out_dir)
    others = _other_images(out_dir, manifest, records, facts)
    if others and not overwrite:
        raise InputError(mixed_message(others, "of other images "), out_dir)
    plan.removed = sorted(others)
    return plan


def _other_images(
    out_dir: Path,
    manifest: dict[str, Any] | None,
    records: dict[str, dict[str, Any]],
    facts: dict[str, Any],
) -> dict[str, tuple[list[str], Any]]:
    """Images outside this run whose outputs are there and were made otherwise."""
    images = manifest.get("images") if manifest is not None else None
    if not isinstance(images, dict):
        return {}
    out = {}
    for name, theirs in images.items():
        if name in records or not isinstance(theirs, dict):
            continue
        if not any(p.exists() for p in output_paths(out_dir, name).values()):
            continue
        why = differences(theirs, facts)  # the run's facts: no source to compare
        if why:
            out[name] = (why, theirs.get("model"))
    return out


def remove_outputs(out_dir: Path, names: list[str]) -> None:
    """Delete the output files of ``names`` (their records are dropped by the writer)."""
    for name in names:
        for path in output_paths(out_dir, name).values():
            path.unlink(missing_ok=True)


def mixed_message(differ: dict[str, tuple[list[str], Any]], whose: str = "") -> str:
    """One line: which outputs were made otherwise, by what, and what to do."""
    keys = sorted({k for why, _ in differ.values() for k in why})
    shown = [f"{n}_* (by {model})" if model else f"{n}_*" for n, (_, model) in differ.items()]
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    todo = "remove them and predict with this model" if whose else "redo them with this model"
    return (
        f"holds outputs {whose}made with another {' / '.join(keys)}: {', '.join(shown[:5])}"
        f"{more}; pass --overwrite to {todo}, or choose another folder"
    )


class ManifestWriter:
    """Writes ``prediction.json`` as images are done: merged under a lock (several
    processes may share a folder: ``shared``), atomically, at most every ``interval`` seconds, and
    never before one output exists.

    ``rank0`` owns the :data:`PENDING` mark of an ``overwrite`` run: set while it runs,
    removed when it finishes.
    """

    def __init__(
        self,
        out_dir: Path,
        facts: dict[str, Any],
        *,
        overwrite: bool,
        rank0: bool = True,
        shared: bool = False,
        interval: float = 5.0,
    ) -> None:
        self.out_dir, self.facts, self.overwrite, self.rank0 = out_dir, facts, overwrite, rank0
        self.shared = shared
        self.interval = interval
        self.records: dict[str, dict[str, Any]] = {}
        self.dropped: set[str] = set()
        self._last = time.monotonic()

    def drop(self, names: list[str]) -> None:
        """Forget the records of ``names`` (their outputs were removed)."""
        self.dropped.update(names)

    def add(self, name: str, record: dict[str, Any]) -> None:
        self.records[name] = record
        if time.monotonic() - self._last >= self.interval:
            self.flush(finished=False)

    def flush(self, *, finished: bool) -> None:
        """Merge the records into the folder's manifest (``finished``: the run is over)."""
        self._last = time.monotonic()
        path = self.out_dir / MANIFEST
        if not self.records and not (finished and self.rank0 and path.is_file()):
            return
        with _locked(self.out_dir) if self.shared else contextlib.nullcontext():
            old = read_manifest(self.out_dir)
            if not self.records and (old is None or PENDING not in old):
                return
            images = dict(old.get("images") or {}) if old is not None else {}
            images = {k: v for k, v in images.items() if k not in self.dropped}
            if self.records:
                manifest = {**self.facts, "images": {**images, **self.records}}
            else:
                manifest = dict(old or {})
            if self.rank0:
                manifest.pop(PENDING, None)
                if self.overwrite and not finished:
                    manifest[PENDING] = comparable(self.facts)
            elif old is not None and PENDING in old:
                manifest[PENDING] = old[PENDING]
            atomic.write_json(path, manifest, overwrite=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``'s manifest (POSIX ``flock``; none elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / f".{MANIFEST}.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = [
    "MANIFEST",
    "OUTPUTS",
    "PENDING",
    "RESOURCE_SETTINGS",
    "ManifestWriter",
    "OutputPlan",
    "check_manifest",
    "comparable",
    "differences",
    "plan_outputs",
    "read_manifest",
    "recorded",
    "remove_outputs",
    "output_paths",
    "shard",
    "write_outputs",
]
