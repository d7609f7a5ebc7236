"""What a cross-validation leaves behind: the result, the arms' curves and the summary files.

:func:`write_summaries` writes ``cv_metrics.json``/``.csv`` and ``comparison.json``/``.csv``
(names in :mod:`octvessel.layout`), :func:`write_arm_figures` an arm's ``roc.png`` and
``pr.png``, :func:`format_result` the terminal tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octvessel import atomic, layout
from octvessel.cv.aggregate import (
    arm_csv,
    comparison_csv,
    comparison_rows,
    format_arm_table,
    format_comparison,
)
from octvessel.cv.config import CVConfig
from octvessel.cv.splits import SCHEMA, Fold
from octvessel.evaluation.accumulator import PixelAccumulator
from octvessel.metrics import json_safe


@dataclass
class CVResult:
    """What :func:`run_cv` did. ``arms``: name, model, variant, dir, metrics (aggregate)."""

    out_dir: Path
    folds: list[Fold]
    arms: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    stop_signal: int = 0  # the signal that interrupted it (0: none, or a test's stop_after)
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def arm_curves(folds: Sequence[PixelAccumulator]) -> tuple[Any, list[Any]]:
    """Pooled and per-fold :class:`~octvessel.metrics.Curves` (None for one class)."""
    per_fold = [acc.curves() for acc in folds]
    pooled = PixelAccumulator(folds[0].threshold)
    for acc in folds:
        pooled.merge(acc)
    return pooled.curves(), per_fold


def write_arm_figures(arm_dir: Path, agg: Mapping[str, Any], pooled_c: Any, fold_c: list) -> None:
    """``roc.png`` and ``pr.png`` of an arm: each fold thin, all folds pooled bold."""
    from octvessel.visualize import fold_curves_figure, save_figure

    for kind, key in (("roc", "auc_roc"), ("pr", "auc_pr")):
        parts = [
            (f"fold {f['fold']}", c, f["pooled"][key])
            for f, c in zip(agg["folds"], fold_c, strict=True)
        ]
        fig = fold_curves_figure(kind, pooled_c, agg["pooled"][key], parts, title=arm_dir.name)
        save_figure(fig, arm_dir / f"{kind}.png")


def write_summaries(
    out: Path, dataset: str | Path, fmt: str, config: CVConfig, result: CVResult
) -> None:
    doc = {
        "schema": SCHEMA,
        "dataset": str(Path(dataset).resolve()),
        "dataset_given": str(dataset),
        "format": fmt,
        "folds": config.folds,
        "threshold": config.threshold,
        "notes": [
            "pooled: all FOV pixels of all folds' test images at the labels' native grid",
            "fold_mean/fold_std: mean and population std of the per-fold pooled metrics",
            "image_mean/image_std: over all test images (undefined AUCs left out)",
        ],
        "arms": [{k: v for k, v in a.items()} for a in result.arms],
    }
    atomic.write_json(out / layout.CV_METRICS_JSON, json_safe(doc))
    text = "".join(
        arm_csv(a["name"], a["model"], a["variant"], a["metrics"], header=i == 0)
        for i, a in enumerate(result.arms)
    )
    atomic.write_text(out / layout.CV_METRICS_CSV, text)
    atomic.write_json(out / layout.COMPARISON_JSON, json_safe(comparison_rows(result.arms)))
    atomic.write_text(out / layout.COMPARISON_CSV, comparison_csv(result.arms))


def format_result(result: CVResult) -> str:
    """The terminal summary: one table per arm, and the side-by-side one for several arms."""
    parts = []
    for a in result.arms:
        parts.append(f"{a['name']}:\n{format_arm_table(a['metrics'])}")
    if len(result.arms) > 1:
        parts.append("comparison:\n" + format_comparison(result.arms))
    return "\n\n".join(parts)
