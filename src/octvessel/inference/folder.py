"""Predict a whole folder: one image at a time, resumable, sharded across torchrun ranks.

:func:`predict_folder` is what :meth:`octvessel.inference.predictor.Predictor.predict_folder`
runs: it lists the inputs, plans the outputs against what the folder already holds (and
refuses another model's before any work), writes each image's four outputs atomically and
records what made them in ``prediction.json`` (also when interrupted).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from octvessel.data.inputs import InputImage, list_inputs
from octvessel.data.io import read_image
from octvessel.errors import InputError, UsageError
from octvessel.inference.outputs import ManifestWriter, plan_outputs, remove_outputs, shard
from octvessel.runtime import dist_rank

if TYPE_CHECKING:
    from octvessel.inference.predictor import Predictor


@dataclass
class PredictSummary:
    """What :meth:`Predictor.predict_folder` did (in this process)."""

    out_dir: Path
    n_inputs: int
    rank: int = 0
    world_size: int = 1
    predicted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    resumed: bool = False
    failed: list[tuple[Path, str]] = field(default_factory=list)
    methods: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    vessel_fraction: list[float] = field(default_factory=list)
    scale: str = ""

    def format(self) -> str:
        """A few lines for the terminal."""
        who = f"rank {self.rank} of {self.world_size}: " if self.world_size > 1 else ""
        per = self.seconds / len(self.predicted) if self.predicted else 0.0
        lines = [
            f"{who}{len(self.predicted)} predicted, {len(self.skipped)} skipped (outputs exist), "
            f"{len(self.failed)} failed, of {self.n_inputs} images -> {self.out_dir}"
        ]
        if self.resumed:
            lines.append(f"{who}continued an interrupted --overwrite run with the same settings")
        if self.replaced:
            lines.append(
                f"{who}{len(self.replaced)} replaced outputs made with another model or "
                f"settings ({', '.join(self.replaced[:3])}{' ...' if len(self.replaced) > 3 else ''})"
            )
        if self.removed:
            lines.append(
                f"{who}removed the outputs of {len(self.removed)} other image(s) made with "
                f"another model or settings ({', '.join(self.removed[:3])}"
                f"{' ...' if len(self.removed) > 3 else ''}): the folder holds this model's only"
            )
        if self.predicted:
            methods = ", ".join(f"{m} x{n}" for m, n in sorted(self.methods.items()))
            lines.append(
                f"{who}{per:.2f} s per image ({methods}); vessel fraction at the threshold: "
                f"mean {np.mean(self.vessel_fraction):.3f}"
            )
        if self.scale:
            lines.append(f"{who}{self.scale}")
        lines += [f"{who}failed: {path}: {msg}" for path, msg in self.failed]
        return "\n".join(lines)


def predict_folder(
    predictor: Predictor,
    source: str | Path | list[InputImage],
    out_dir: str | Path,
    *,
    threshold: float = 0.5,
    overwrite: bool = False,
    split: str | None = None,
    variants: list[str] | None = None,
    progress: bool = True,
    rank: int | None = None,
    world_size: int | None = None,
) -> PredictSummary:
    """Predict every image of ``source`` into ``out_dir`` with ``predictor``.

    ``source``: a folder or dataset (:func:`octvessel.data.inputs.list_inputs`; ``split``
    and ``variants`` narrow it) or a list of :class:`InputImage`.

    Streams one image at a time; images whose four outputs all exist are skipped
    (their missing outputs are written when only some exist) unless ``overwrite``.
    ``rank``/``world_size`` default to the torchrun environment. Unreadable images do
    not stop the run: they are listed in ``summary.failed`` (the command line then
    exits with status 2).
    """
    check_threshold(threshold)
    if isinstance(source, list):
        items = source
    else:
        items = list_inputs(source, split=split, variants=variants)
    if rank is None or world_size is None:
        rank, world_size = dist_rank()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("output must be a folder; this is a file", out_dir)
    facts = predictor.manifest(threshold)
    records = {i.name: predictor.image_record(i, facts) for i in items}
    plan = plan_outputs(out_dir, records, facts, overwrite)  # refuses before any work
    mine = shard(items, rank, world_size)
    summary = PredictSummary(out_dir, len(items), rank, world_size, resumed=plan.resumed)
    summary.replaced = [n for n in plan.replaced if n in {i.name for i in mine}]
    writer = ManifestWriter(
        out_dir, facts, overwrite=overwrite, rank0=rank == 0, shared=world_size > 1
    )
    if rank == 0:
        for name, record in plan.adopted.items():
            writer.add(name, record)
        if plan.removed:  # --overwrite: other images' outputs of another model go
            remove_outputs(out_dir, plan.removed)
            writer.drop(plan.removed)
            summary.removed = list(plan.removed)
    bar = tqdm(
        mine,
        desc=f"predict (rank {rank})" if world_size > 1 else "predict",
        unit="image",
        disable=not progress or rank != 0,
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    finished = False
    try:
        for item in bar:
            kinds = plan.kinds.get(item.name)
            if not kinds:
                summary.skipped.append(item.name)
                continue
            try:
                image = read_image(item.path)
            except InputError as exc:
                summary.failed.append((item.path, str(exc).removeprefix(f"{item.path}: ")))
                continue
            prob = predictor.predict_scaled(image, item.name, path=item.path)
            predictor.write_outputs(
                out_dir,
                item.name,
                image,
                prob,
                threshold=threshold,
                overwrite=True,
                kinds=kinds,
            )
            writer.add(item.name, predictor.with_scale(records[item.name], item.name))
            summary.predicted.append(item.name)
            factors = predictor.scales[item.name]["factors"]
            summary.methods[predictor.method_for(image.shape[:2], factors)] += 1
            summary.vessel_fraction.append(float(np.mean(prob >= threshold)))
        finished = True
    finally:
        writer.flush(finished=finished)  # also on Ctrl-C: what is done stays recorded
    summary.seconds = time.perf_counter() - t0
    summary.scale = predictor.scale_line()
    return summary


def check_threshold(threshold: float) -> None:
    """Raise :class:`UsageError` unless ``threshold`` is a number in [0, 1]."""
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold={threshold!r}: expected a number in [0, 1]")
