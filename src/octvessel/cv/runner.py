"""The cross-validation loop: train and score every fold of every arm, resumably.

Layout of the output folder: see :mod:`octvessel.cv`.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__, atomic, layout
from octvessel.cv.aggregate import (
    aggregate_folds,
    fmt_value,
)
from octvessel.cv.config import Arm, CVConfig, make_arms
from octvessel.cv.results import (
    CVResult,
    arm_curves,
    write_arm_figures,
    write_summaries,
)
from octvessel.cv.splits import SCHEMA, SPLITS_NAME, Fold, make_folds, read_splits, splits_document
from octvessel.data.datasets import detect_format, index_dataset
from octvessel.errors import InputError, UsageError
from octvessel.evaluation.accumulator import PixelAccumulator
from octvessel.metrics import json_safe

CV_CONFIG_NAME = layout.CV_CONFIG
CV_METRICS_JSON = layout.CV_METRICS_JSON
CV_METRICS_CSV = layout.CV_METRICS_CSV
COMPARISON_JSON = layout.COMPARISON_JSON
COMPARISON_CSV = layout.COMPARISON_CSV
FOLD_DONE_NAME = layout.FOLD_DONE


def versions() -> dict[str, str]:
    import torch

    return {
        "octvessel": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_splits(out: Path, folds: list[Fold], config: CVConfig, overwrite: bool) -> None:
    doc = splits_document(
        folds, shuffle=config.shuffle, seed=config.split_seed, group_by=config.group_by
    )
    path = out / SPLITS_NAME
    if path.is_file() and not overwrite:
        saved = read_splits(path)
        if [(f.test, f.train) for f in saved] != [(f.test, f.train) for f in folds]:
            raise InputError(
                "the folds saved here differ from the ones these options and this dataset "
                "give; use another output folder, the same options, or --overwrite to start over",
                path,
            )
        return
    atomic.write_json(path, doc, overwrite=True)


def _fold_finished(
    fold_dir: Path, fold: Fold, recipe: Any, train_samples: list[Any]
) -> dict[str, Any] | None:
    """The fold's record when it finished with this recipe and these data, else None."""
    from octvessel.training import RESUME_FREE, fingerprint, saved_config

    path = fold_dir / FOLD_DONE_NAME
    if not path.is_file() or not (fold_dir / layout.FOLD_EVAL / layout.METRICS_JSON).is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = saved_config(fold_dir / layout.FOLD_RUN).to_dict()
    want = recipe.to_dict()
    if want.get("precision") == "auto":  # saved resolved by the trainer: compare like with like
        from octvessel.precision import resolve_precision
        from octvessel.runtime import select_device

        want["precision"] = resolve_precision("auto", select_device(recipe.device))
    diff = [k for k, v in want.items() if k not in RESUME_FREE and saved.get(k) != v]
    if diff:
        raise InputError(
            f"fold {fold.index} was trained with another recipe (differs in: {', '.join(diff)}); "
            "use another output folder or --overwrite",
            fold_dir,
        )
    if record.get("test") != list(fold.test) or record.get("fingerprint") != fingerprint(
        train_samples
    ):
        raise InputError(
            f"fold {fold.index} was trained on other images or files that changed since; "
            "use another output folder or --overwrite",
            fold_dir,
        )
    return record


def _fold_accumulator(
    eval_dir: Path, samples: Mapping[str, Any], names: Sequence[str], threshold: float
) -> PixelAccumulator:
    """The FOV pixels of a fold's saved predictions, on their labels' grids."""
    from octvessel.evaluation import find_prediction, read_probability

    acc = PixelAccumulator(threshold)
    for name in names:
        s = samples[name]
        path = find_prediction(eval_dir / layout.PREDICTIONS_DIR, [name])
        if path is None:
            raise InputError(f"the prediction of {name} is missing; rerun the cv", eval_dir)
        acc.update(read_probability(path), s.label, s.fov, name, where=path)
    return acc


def run_cv(
    dataset: str | Path,
    out_dir: str | Path,
    config: CVConfig,
    recipes: Mapping[str, Any],
    *,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    stop_after_steps: Mapping[tuple[str, int], int] | None = None,
) -> CVResult:
    """Cross-validate every arm (model x variant) of ``config`` on ``dataset``.

    Args:
        dataset: a labelled dataset folder (any layout); every labelled image takes part.
        out_dir: the cross-validation folder (layout in the module docstring).
        config: folds, split options, models, variants, threshold.
        recipes: model name -> TrainConfig (see :func:`recipes_for`).
        overwrite: redo every fold from scratch (and rewrite ``splits.json``).
        log: where progress lines go (default: print to stdout).
        stop_after_steps: ``{(arm name, fold index): steps}`` stops that fold's training as
            if interrupted (for tests).

    Returns:
        a :class:`CVResult`; ``interrupted`` is True when SIGINT/SIGTERM stopped it (the
        folder then resumes when the same command runs again).

    Raises:
        UsageError: bad options, more folds than images (groups), variants on a non-CAVRI
            dataset.
        InputError: unreadable dataset, a folder holding another cross-validation.
    """
    from octvessel.data import load_dataset
    from octvessel.training import stop_requests

    t0 = time.perf_counter()
    say = log or (lambda s: print(s, flush=True))
    missing = [m for m in config.models if m not in recipes]
    if missing:
        raise UsageError(f"no training recipe for model(s) {', '.join(missing)}")
    out = Path(out_dir)
    fmt = detect_format(dataset) if config.format == "auto" else config.format
    arms = make_arms(config, fmt)
    names_by_variant = {
        v: [
            r.name
            for r in index_dataset(
                dataset, fmt, None, observer=config.observer, variant=v, require_labels=True
            )
        ]
        for v in config.variants
    }
    names = names_by_variant[config.variants[0]]
    for v, other in names_by_variant.items():
        if sorted(other) != sorted(names):
            raise InputError(f"variant {v} has other images than {config.variants[0]}", dataset)
    folds = make_folds(
        names,
        config.folds,
        shuffle=config.shuffle,
        seed=config.split_seed,
        group_by=config.group_by,
    )
    if out.exists() and not out.is_dir():
        raise InputError("expected an output folder, found a file", out)
    _write_splits(out, folds, config, overwrite)
    atomic.write_json(
        out / CV_CONFIG_NAME,
        json_safe(
            {
                "schema": SCHEMA,
                "dataset": str(Path(dataset).resolve()),
                "format": fmt,
                "config": config.to_dict(),
                "arms": [{**a.__dict__, "recipe": recipes[a.model].to_dict()} for a in arms],
                "command": command or " ".join(sys.argv),
                "versions": versions(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        ),
    )
    sizes = ", ".join(str(len(f.test)) for f in folds)
    say(
        f"[cv] {len(names)} images, {len(folds)} folds (test images per fold: {sizes}), "
        f"{len(arms)} arm(s): {', '.join(a.name for a in arms)} -> {out}"
    )
    result = CVResult(out, folds)
    with stop_requests() as stop:
        for arm in arms:
            samples = {
                s.name: s
                for s in load_dataset(
                    dataset,
                    fmt,
                    None,
                    observer=config.observer,
                    variant=arm.variant,
                    require_labels=True,
                )
            }
            arm_dir = out / arm.name
            fold_results, fold_accs = [], []
            for fold in folds:
                tag = f"{arm.name} fold {fold.index}/{len(folds)}"
                record = _run_fold(
                    dataset,
                    fmt,
                    arm,
                    fold,
                    layout.fold_dir(arm_dir, fold.index),
                    recipes[arm.model],
                    samples,
                    config,
                    overwrite=overwrite,
                    progress=progress,
                    command=command,
                    stop=stop,
                    say=say,
                    tag=tag,
                    stop_after=(stop_after_steps or {}).get((arm.name, fold.index)),
                )
                if record is None:
                    result.interrupted = True
                    result.stop_signal = stop.get("signal", 0)
                    say(f"[cv] interrupted in {tag}; run the same command again to continue")
                    result.seconds = time.perf_counter() - t0
                    return result
                (result.skipped if record["skipped"] else result.trained).append(tag)
                eval_dir = layout.fold_eval_dir(arm_dir, fold.index)
                fold_results.append(json.loads((eval_dir / layout.METRICS_JSON).read_text()))
                fold_accs.append(_fold_accumulator(eval_dir, samples, fold.test, config.threshold))
            arm_acc = PixelAccumulator(config.threshold)
            for acc in fold_accs:
                arm_acc.merge(acc)
            pooled = arm_acc.aggregate().to_dict()
            agg = aggregate_folds(fold_results, pooled)
            pooled_c, fold_c = arm_curves(fold_accs)
            atomic.write_json(arm_dir / CV_METRICS_JSON, json_safe(agg))
            write_arm_figures(arm_dir, agg, pooled_c, fold_c)
            result.arms.append(
                {
                    "name": arm.name,
                    "model": arm.model,
                    "variant": arm.variant,
                    "dir": str(arm_dir),
                    "metrics": agg,
                }
            )
    write_summaries(out, dataset, fmt, config, result)
    result.seconds = time.perf_counter() - t0
    return result


def _run_fold(
    dataset: str | Path,
    fmt: str,
    arm: Arm,
    fold: Fold,
    fold_dir: Path,
    recipe: Any,
    samples: Mapping[str, Any],
    config: CVConfig,
    *,
    overwrite: bool,
    progress: bool,
    command: str | None,
    stop: dict[str, bool],
    say: Callable[[str], None],
    tag: str,
    stop_after: int | None,
) -> dict[str, Any] | None:
    """Train and score one fold; its record, or None when interrupted."""
    from octvessel.evaluation import evaluate_dataset
    from octvessel.inference.predictor import Predictor
    from octvessel.runtime import select_device
    from octvessel.training import STATE_NAME, TRAIN_CONFIG_NAME, fingerprint, train

    train_samples = [samples[n] for n in fold.train]
    run_dir, eval_dir = fold_dir / layout.FOLD_RUN, fold_dir / layout.FOLD_EVAL
    if overwrite:
        (fold_dir / FOLD_DONE_NAME).unlink(missing_ok=True)
    else:
        record = _fold_finished(fold_dir, fold, recipe, train_samples)
        if record is not None:
            say(f"[cv] {tag}: finished earlier, skipped")
            return {**record, "skipped": True}
    if stop["stop"]:
        return None
    resume = not overwrite and (run_dir / STATE_NAME).is_file()
    fresh_over = (run_dir / TRAIN_CONFIG_NAME).exists() and not resume
    say(
        f"[cv] {tag}: {'resuming' if resume else 'training'} {arm.model} on "
        f"{len(fold.train)} images, testing on {', '.join(fold.test)}"
    )
    t0 = time.perf_counter()
    res = train(
        train_samples,
        run_dir,
        recipe,
        resume=resume,
        overwrite=overwrite or fresh_over,
        group_by=config.group_by,  # a recipe's val_fraction keeps subjects together too
        progress=progress,
        stop_after_steps=stop_after,
        command=command,
    )
    if res.interrupted or stop["stop"]:
        stop["signal"] = stop.get("signal") or res.stop_signal
        return None
    predictor = Predictor.from_pretrained(
        run_dir,
        device=select_device(recipe.device),
        spacing=recipe.input_spacing_mm,  # the test images carry the training images' size
        fov_px=recipe.input_fov_px,
    )
    scores = evaluate_dataset(
        dataset,
        eval_dir,
        predictor=predictor,
        names=fold.test,
        format=fmt,
        observer=config.observer,
        variant=arm.variant,
        threshold=config.threshold,
        save_predictions=True,
        overwrite=True,
        progress=progress,
        figures=False,  # the arm's roc.png / pr.png show every fold
    )
    if stop["stop"]:  # a signal during evaluation: the fold is redone (scored) next time
        return None
    record = {
        "fold": fold.index,
        "arm": arm.name,
        "model": arm.model,
        "variant": arm.variant,
        "test": list(fold.test),
        "train": list(fold.train),
        "fingerprint": fingerprint(train_samples),
        "epochs": res.epochs_done,
        "best": res.best,
        "best_epoch": res.best_epoch,
        "weights": "best.safetensors",
        "seconds": time.perf_counter() - t0,
    }
    atomic.write_json(fold_dir / FOLD_DONE_NAME, json_safe(record))
    p = scores["pooled"]
    say(
        f"[cv] {tag}: AUC {fmt_value(p['auc_roc'], 0)}, accuracy {fmt_value(p['accuracy'], 0)}, "
        f"F1 {fmt_value(p['f1'], 0)} ({record['seconds']:.1f} s)"
    )
    return {**record, "skipped": False}
