"""The run folder: its file names (from :mod:`octvessel.layout`), log, progress figure, model card, saved recipe.

A run folder holds ``train_config.json`` (the resolved recipe), ``splits.json``,
``best.safetensors``/``last.safetensors``, ``config.json``, ``README.md`` (the card),
``training_state.safetensors``, ``log.csv`` (one row per epoch) and ``progress.png``.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from octvessel import __version__, atomic, layout
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.models.base import SegmentationModel
from octvessel.models.card import ModelCard
from octvessel.training.config import TrainConfig
from octvessel.training.data import fingerprint
from octvessel.training.validation import best_metric

TRAIN_CONFIG_NAME = layout.TRAIN_CONFIG
SPLITS_NAME = layout.SPLITS
LOG_NAME = layout.TRAIN_LOG


def write_log(run_dir: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic.write_text(run_dir / LOG_NAME, buf.getvalue())


def plot_progress(run_dir: Path, history: list[dict[str, Any]]) -> None:
    from octvessel.visualize import new_figure, save_figure

    epochs = [h["epoch"] for h in history]
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(epochs, [h["loss"] for h in history], "o-", label="training loss (sum over outputs)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if any(h.get("val_auc") is not None for h in history):
        ax2 = ax.twinx()
        ax2.plot(
            epochs,
            [h.get("val_auc") for h in history],
            "s-",
            color="tab:green",
            label="validation AUC",
        )
        ax2.set_ylabel("validation AUC-ROC")
        ax2.legend(loc="lower right")
    ax.legend(loc="upper right")
    ax.set_title(run_dir.name)
    save_figure(fig, run_dir / layout.PROGRESS_FIGURE)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / LOG_NAME
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append(
                {
                    k: (None if v == "" else (int(v) if k in ("epoch", "steps") else float(v)))
                    for k, v in row.items()
                }
            )
    return rows


def run_card(
    cfg: TrainConfig, meta: dict[str, Any], model: SegmentationModel, history: list[dict[str, Any]]
) -> str:
    last = history[-1] if history else {}
    card = ModelCard(f"{cfg.model} trained by octvessel")
    card.facts += [
        f"architecture: `{cfg.model}`, {model.count_parameters():,} parameters, config `{json.dumps(model.config.to_dict(), sort_keys=True)}`",
        f"data: `{meta['dataset']}` (format {meta['format']}, fingerprint {meta['fingerprint']}), "
        f"{meta['n_train']} training / {meta['n_val']} validation images (names in splits.json)",
        f"recipe: `{json.dumps(cfg.to_dict(), sort_keys=True)}`",
        f"seed: {cfg.seed}; world size {meta['world_size']}",
        f"dropout as drawn: `{json.dumps(meta.get('dropout'), sort_keys=True)}` (p at 1/2^bits resolution)",
        f"command: `{meta['command']}`",
        f"hardware: {meta['hardware']}",
        f"versions: octvessel {__version__}, torch {torch.__version__}, python {platform.python_version()}",
        f"epochs done: {last.get('epoch', 0)} of {cfg.epochs}; best {meta.get('best_metric')} = {meta.get('best')} at epoch {meta.get('best_epoch')}",
    ]
    card.closing.append(
        f"Weights: `{layout.BEST_WEIGHTS}` (selected by the metric above), `{layout.LAST_WEIGHTS}`; sha256 in config.json."
    )
    return card.render()


def saved_config(run_dir: str | Path) -> TrainConfig:
    """The recipe a run folder was started with."""
    path = Path(run_dir) / TRAIN_CONFIG_NAME
    if not path.is_file():
        raise InputError(f"no run to resume here (missing {TRAIN_CONFIG_NAME})", run_dir)
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, UsageError) as exc:
        raise InputError(f"not a valid training config ({exc})", path) from None


def _saved_splits(run_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((run_dir / SPLITS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def saved_group_by(run_dir: str | Path) -> str | None:
    """The ``group_by`` a run folder's ``splits.json`` records (None: none, or no file)."""
    doc = _saved_splits(Path(run_dir)) or {}
    value = doc.get("group_by")
    return value if isinstance(value, str) and value else None


def check_saved_split(run_dir: Path, train: Sequence[Sample], val: Sequence[Sample]) -> None:
    """On resume: the images must fall on the sides ``splits.json`` recorded."""
    doc = _saved_splits(run_dir)
    if doc is None or "training" not in doc:
        return  # a run folder of an old version without splits.json: the fingerprint decides
    if sorted(doc.get("training", [])) != sorted(s.name for s in train) or sorted(
        doc.get("validation", [])
    ) != sorted(s.name for s in val):
        raise InputError(
            "the run was split into other training/validation images than these data and "
            "options give (another --group-by or --val-fraction, or a version that split "
            "variants of one scan apart); resume needs the same split, or start afresh "
            "with --overwrite",
            run_dir / SPLITS_NAME,
        )


#: settings that may change on --resume without changing the result
RESUME_FREE = ("device", "workers")


def resume_config(run_dir: Path, config: TrainConfig | None) -> TrainConfig:
    """The saved recipe of the run in ``run_dir``, for ``--resume``.

    ``config`` (what the user asked for, or None) may differ from it only in
    :data:`RESUME_FREE` (taken from ``config``); any other difference raises
    :class:`UsageError` listing them.
    """
    saved = saved_config(run_dir)
    if config is not None:
        old = saved.to_dict()
        diff = [
            f"{k} {v!r} (the run has {old[k]!r})"
            for k, v in config.to_dict().items()
            if k not in RESUME_FREE
            and old[k] != v
            and not (k == "precision" and v == "auto")  # the saved one is auto, resolved
        ]
        if diff:
            raise UsageError(
                f"{run_dir}: --resume continues the saved recipe; these settings differ: "
                f"{'; '.join(diff)}; leave them out to continue, or start afresh with --overwrite"
            )
        saved = TrainConfig.from_dict(
            {**saved.to_dict(), **{k: config.to_dict()[k] for k in RESUME_FREE}}
        )
    return saved


def run_facts(
    source: dict[str, Any],
    cfg: TrainConfig,
    train_samples: list[Sample],
    val_samples: list[Sample],
    steps: int,
    env: Any,
    device: torch.device,
    command: str | None,
) -> dict[str, Any]:
    """What a training run records about itself (bundle ``metadata``, the model card).

    ``source``: dataset, format, observer, variant, group_by; ``env``: the
    :class:`~octvessel.training.distributed.DistEnv`; ``steps``: steps per epoch.
    """
    return {
        **source,
        "fingerprint": fingerprint(train_samples + val_samples),
        "n_train": len(train_samples),
        "n_val": len(val_samples),
        "steps_per_epoch": steps,
        "world_size": env.world,
        "seed": cfg.seed,
        "command": command or " ".join(sys.argv),
        "hardware": f"{device.type}: {torch.cuda.get_device_name(device) if device.type == 'cuda' else (platform.processor() or platform.machine())}, {torch.get_num_threads()} threads",
        "octvessel_version": __version__,
        "torch_version": torch.__version__,
        "best_metric": best_metric(val_samples),
    }
