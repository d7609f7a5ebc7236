"""``octvessel train``: the trainer, laid out like torchvision's reference scripts.

``build_dataloaders`` -> ``train_one_epoch`` -> ``evaluate`` -> checkpoint, driven by
:func:`train`. A run folder holds:

- ``train_config.json`` (the resolved recipe), ``splits.json`` (training/validation names);
- ``best.safetensors`` (best validation AUC, or lowest training loss without validation),
  ``last.safetensors``, ``config.json`` (bundle config with both sha256), ``README.md``;
- ``training_state.safetensors`` (optimiser, scheduler, scaler, RNG, position);
- ``log.csv`` (one row per epoch) and ``progress.png``.

Resuming restores everything, so for a fixed seed on CPU an interrupted-and-resumed run
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import platform
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from octvessel import __version__, atomic
from octvessel.data import load_dataset
from octvessel.data.augment import AugmentConfig
from octvessel.data.sample import Sample
from octvessel.errors import InputError, OctvesselError, UsageError
from octvessel.models import create_model, get_spec
from octvessel.models.base import SegmentationModel
from octvessel.models.pretrained import CONFIG_NAME, BundleConfig, save_weights
from octvessel.precision import autocast_for, resolve_precision
from octvessel.preprocessing import Preprocessing
from octvessel.training import distributed
from octvessel.training.checkpoint import STATE_NAME, load_state, save_state
from octvessel.training.config import TrainConfig
from octvessel.training.data import (
    CropDataset,
    build_loader,
    check_trainable,
    fingerprint,
    split_validation,
)

TRAIN_CONFIG_NAME = "train_config.json"
SPLITS_NAME = "splits.json"
LOG_NAME = "log.csv"
#: settings that may change on --resume without changing the result
RESUME_FREE = ("device", "workers")


class TrainingError(OctvesselError):
    """Training cannot go on (a NaN loss); the last good checkpoint is kept."""

    exit_code = 1


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    best: float | None
    best_epoch: int | None
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    model: SegmentationModel | None = field(default=None, repr=False)
    stop_signal: int = 0  # the signal that interrupted the run (0: none, or stop_after_steps)


# ----------------------------------------------------------------------------- pieces


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device=cuda but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: TrainConfig) -> tuple[SegmentationModel, Preprocessing]:
    """The network and its preprocessing; ``in_channels`` follows the preprocessing."""
    spec = get_spec(cfg.model)
    base_pre, base_model_config = spec.preprocessing.to_dict(), {}
    if cfg.init_from:
        init = init_bundle(cfg)
        base_pre, base_model_config = init.preprocessing.to_dict(), dict(init.model_config)
    pre = Preprocessing.from_dict({**base_pre, **cfg.preprocessing})
    model_config = {"in_channels": pre.channels, **base_model_config, **cfg.model_config}
    if model_config["in_channels"] != pre.channels:
        raise UsageError(
            f"model_config.in_channels={model_config['in_channels']} but preprocessing gives {pre.channels} channel(s)"
        )
    return create_model(cfg.model, **model_config), pre


def init_bundle(cfg: TrainConfig) -> BundleConfig:
    """The config of the weights ``cfg.init_from`` names (fine-tuning); its model must match."""
    from octvessel.models.pretrained import resolve_weights

    weights = resolve_weights(cfg.init_from)
    bundle = BundleConfig.from_file(weights.parent / CONFIG_NAME)
    if bundle.model != cfg.model:
        raise UsageError(
            f"init_from={cfg.init_from!r} is a {bundle.model} but the recipe trains a {cfg.model} "
            f"(pass --model {bundle.model})"
        )
    return bundle


def load_init_weights(model: SegmentationModel, cfg: TrainConfig) -> str:
    """Copy the ``cfg.init_from`` weights into ``model`` (shapes must match); their sha256."""
    from octvessel.models.pretrained import load_weights, resolve_weights

    weights = resolve_weights(cfg.init_from)
    bundle = BundleConfig.from_file(weights.parent / CONFIG_NAME)
    load_weights(model, weights, bundle.sha256.get(weights.name))
    return bundle.sha256.get(weights.name) or ""


def make_optimizer(cfg: TrainConfig, params: Iterator[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> Any | None:
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.1, patience=cfg.plateau_patience
        )
    return None


def output_losses(outputs: Sequence[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
    """Binary cross-entropy of each output (the loss is their sum, equal weights)."""
    return [F.binary_cross_entropy_with_logits(o.float(), target) for o in outputs]


@contextlib.contextmanager
def stop_requests() -> Iterator[dict[str, bool]]:
    """SIGINT/SIGTERM set ``flag["stop"]`` (and ``flag["signal"]``) instead of killing: the
    loop saves and stops."""
    flag: dict[str, Any] = {"stop": False, "signal": 0}

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        flag["stop"] = True
        flag["signal"] = signum

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ----------------------------------------------------------------------------- loop


@dataclass
class EpochState:
    """Running sums of one epoch (kept in the checkpoint so a resumed epoch logs whole)."""

    loss_sums: list[float] = field(default_factory=list)
    steps: int = 0
    data_seconds: float = 0.0
    compute_seconds: float = 0.0
    patches: int = 0

    def add(self, losses: list[float], data_s: float, compute_s: float, patches: int) -> None:
        if not self.loss_sums:
            self.loss_sums = [0.0] * len(losses)
        self.loss_sums = [a + b for a, b in zip(self.loss_sums, losses, strict=True)]
        self.steps += 1
        self.data_seconds += data_s
        self.compute_seconds += compute_s
        self.patches += patches


def train_one_epoch(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    device: torch.device,
    env: distributed.DistEnv,
    state: EpochState,
    on_step: Any,
    stop: dict[str, bool],
) -> bool:
    """Run the loader's steps; returns True when stopped early (signal or ``on_step``)."""
    model.train()
    t_fetch = time.perf_counter()
    for x, y in loader:
        t_data = time.perf_counter() - t_fetch
        t0 = time.perf_counter()
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with autocast_for(device, cfg.precision):
            outputs = model(x)
        losses = output_losses(outputs, y)
        loss = sum(losses)
        if distributed.any_flag(not bool(torch.isfinite(loss)), env, device):
            raise TrainingError(
                f"the loss became {loss.item()} at step {state.steps + 1} of this epoch; weights were not saved "
                "from this point, the last good checkpoint is kept (try a lower lr or precision=fp32)"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None and cfg.scheduler == "cosine":
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        state.add([v.item() for v in losses], t_data, time.perf_counter() - t0, x.shape[0])
        if distributed.any_flag(bool(on_step(state)) or stop["stop"], env, device):
            return True
        t_fetch = time.perf_counter()
    return False


@torch.inference_mode()
def evaluate(
    model: SegmentationModel,
    samples: Sequence[Sample],
    pre: Preprocessing,
    device: torch.device,
    precision: str,
) -> dict[str, float]:
    """Validation on whole images: pooled AUC-ROC inside the FOV, and the mean BCE of the final output."""
    from octvessel.metrics import auc_roc

    model.eval()
    probs, labels, bce = [], [], []
    for s in samples:
        x = (
            torch.from_numpy(pre(s.image))[None]
            .to(device)
            .contiguous(memory_format=torch.channels_last)
        )
        with autocast_for(device, precision if precision != "fp16" else "fp32"):
            logit = model(x)[-1].float()[0, 0]
        target = torch.from_numpy(s.label.astype(np.float32)).to(device)
        fov = torch.from_numpy(s.fov).to(device)
        bce.append(float(F.binary_cross_entropy_with_logits(logit[fov], target[fov])))
        probs.append(torch.sigmoid(logit)[fov].cpu().numpy())
        labels.append(s.label[s.fov])
    return {
        "val_auc": auc_roc(np.concatenate(probs), np.concatenate(labels)),
        "val_loss": float(np.mean(bce)),
    }


# ----------------------------------------------------------------------------- files


def _write_log(run_dir: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic.write_text(run_dir / LOG_NAME, buf.getvalue())


def _plot_progress(run_dir: Path, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from octvessel.visualize import save_figure

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
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
    save_figure(fig, run_dir / "progress.png")


def _read_log(run_dir: Path) -> list[dict[str, Any]]:
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


def _card(
    cfg: TrainConfig, meta: dict[str, Any], model: SegmentationModel, history: list[dict[str, Any]]
) -> str:
    last = history[-1] if history else {}
    lines = [
        f"# {cfg.model} trained by octvessel",
        "",
        f"- architecture: `{cfg.model}`, {model.count_parameters():,} parameters, config `{json.dumps(model.config.to_dict(), sort_keys=True)}`",
        f"- data: `{meta['dataset']}` (format {meta['format']}, fingerprint {meta['fingerprint']}), "
        f"{meta['n_train']} training / {meta['n_val']} validation images (names in splits.json)",
        f"- recipe: `{json.dumps(cfg.to_dict(), sort_keys=True)}`",
        f"- seed: {cfg.seed}; world size {meta['world_size']}",
        f"- command: `{meta['command']}`",
        f"- hardware: {meta['hardware']}",
        f"- versions: octvessel {__version__}, torch {torch.__version__}, python {platform.python_version()}",
        f"- epochs done: {last.get('epoch', 0)} of {cfg.epochs}; best {meta.get('best_metric')} = {meta.get('best')} at epoch {meta.get('best_epoch')}",
        "",
        "Weights: `best.safetensors` (selected by the metric above), `last.safetensors`; sha256 in config.json.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- driver


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


def _load_samples(
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


def saved_config(run_dir: str | Path) -> TrainConfig:
    """The recipe a run folder was started with."""
    path = Path(run_dir) / TRAIN_CONFIG_NAME
    if not path.is_file():
        raise InputError(f"no run to resume here (missing {TRAIN_CONFIG_NAME})", run_dir)
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, UsageError) as exc:
        raise InputError(f"not a valid training config ({exc})", path) from None


def train(
    dataset: str | Path | Sequence[Sample],
    run_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    format: str = "auto",
    observer: int = 1,
    variant: str = "P1",
    progress: bool = True,
    stop_after_steps: int | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train a model on a dataset folder (or samples) into ``run_dir``.

    Args:
        dataset: a dataset folder in any supported layout, or a list of labelled samples.
        run_dir: the run folder (created).
        config: the recipe (default: the IterNet reference); on ``resume`` the saved one is used.
        resume: continue the run in ``run_dir`` exactly where it stopped.
        overwrite: start afresh in a folder that holds a run.
        stop_after_steps: stop (as if interrupted) after this many steps in total -- for tests.

    Returns:
        a :class:`TrainResult`; ``interrupted`` is True when a signal (or ``stop_after_steps``)
        stopped it, with a resumable checkpoint saved.
    """
    run_dir = Path(run_dir)
    saved_cfg_path = run_dir / TRAIN_CONFIG_NAME
    if resume:
        saved = saved_config(run_dir)
        if config is not None:
            diff = [
                k
                for k, v in config.to_dict().items()
                if k not in RESUME_FREE and saved.to_dict()[k] != v
                and not (k == "precision" and v == "auto")  # the saved one is auto, resolved
            ]
            if diff:
                raise UsageError(
                    f"{run_dir}: --resume continues the saved recipe; these settings differ: {', '.join(diff)}"
                )
            saved = TrainConfig.from_dict(
                {**saved.to_dict(), **{k: config.to_dict()[k] for k in RESUME_FREE}}
            )
        cfg = saved
    else:
        cfg = config or TrainConfig()
        if saved_cfg_path.exists() and not overwrite:
            raise InputError(
                "holds a training run already; pass --resume to continue it or --overwrite to start over",
                run_dir,
            )

    env = distributed.env_from_os()
    device = select_device(cfg.device)
    # precision "auto" is resolved once here and saved resolved (train_config.json, the card)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, device))
    if device.type == "cuda" and env.active:
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    train_samples, val_samples, dataset_name = _load_samples(
        dataset, cfg, format, observer, variant
    )
    check_trainable(train_samples, cfg.crop)
    distributed.init(env, device)
    threads = torch.get_num_threads()
    try:
        return _run(
            train_samples,
            val_samples,
            {"dataset": dataset_name, "format": format, "observer": observer, "variant": variant},
            run_dir,
            cfg,
            env,
            device,
            resume=resume,
            progress=progress,
            stop_after_steps=stop_after_steps,
            command=command,
        )
    finally:
        torch.set_num_threads(threads)  # a resume may have set the run's own thread count
        distributed.shutdown(env)


def _use_saved_threads(saved: int | None, env: distributed.DistEnv) -> None:
    """Run on with the thread count the checkpoint was written with (CPU convolutions,
    reductions and so the weights differ in their last bits between thread counts)."""
    if saved and saved != torch.get_num_threads():
        if env.is_main:
            print(
                f"[train] resuming with {saved} threads, as the run was saved with "
                f"(this process had {torch.get_num_threads()}): the results depend on it",
                flush=True,
            )
        torch.set_num_threads(int(saved))


def _run(  # noqa: PLR0913, PLR0915
    train_samples: list[Sample],
    val_samples: list[Sample],
    source: dict[str, Any],
    run_dir: Path,
    cfg: TrainConfig,
    env: distributed.DistEnv,
    device: torch.device,
    *,
    resume: bool,
    progress: bool,
    stop_after_steps: int | None,
    command: str | None,
) -> TrainResult:
    torch.manual_seed(cfg.seed)
    model, pre = build_model(cfg)
    init_sha = load_init_weights(model, cfg) if cfg.init_from and not resume else None
    model.to(device).to(memory_format=torch.channels_last)
    torch.manual_seed(cfg.seed + 1 + env.rank)  # dropout differs per process, reproducibly
    net: torch.nn.Module = model
    if env.active:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    steps = cfg.steps_for(len(train_samples), env.world)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer, steps * cfg.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    dataset_obj = CropDataset(
        train_samples,
        pre,
        cfg.crop,
        cfg.crops_per_image,
        AugmentConfig.preset(cfg.augment),
        cfg.seed,
        length=steps * env.world * cfg.images_per_batch,
    )
    meta = {
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
        "best_metric": "val_auc" if val_samples else "neg_train_loss",
        **({"init_from": cfg.init_from, "init_sha256": init_sha} if init_sha is not None else {}),
    }

    epoch, start_step, history, best, best_epoch = 0, 0, [], None, None
    partial = EpochState()
    if resume:
        model_weights = run_dir / "last.safetensors"
        from octvessel.models.pretrained import load_weights, sha256_of

        position = load_state(run_dir / STATE_NAME, optimizer, scheduler, scaler)
        expected = position.get("weights_sha256")
        if expected and model_weights.is_file() and sha256_of(model_weights) != expected:
            raise InputError(
                f"does not match {STATE_NAME} (a checkpoint write was cut short, e.g. by a full "
                "disk); the two files must come from the same step to resume exactly",
                model_weights,
            )
        load_weights(model, model_weights)
        _use_saved_threads(position.get("threads"), env)
        epoch, start_step = position["epoch"], position["step"]
        best, best_epoch = position.get("best"), position.get("best_epoch")
        partial = (
            EpochState(**position.get("partial", {})) if position.get("partial") else EpochState()
        )
        history = _read_log(run_dir)[:epoch]
        if position.get("fingerprint") != meta["fingerprint"]:
            raise InputError(
                "the training data differ from the run's (dataset fingerprint changed); resume needs the same data",
                run_dir,
            )
    elif env.is_main:
        atomic.write_json(run_dir / TRAIN_CONFIG_NAME, cfg.to_dict(), overwrite=True)
        atomic.write_json(
            run_dir / SPLITS_NAME,
            {
                "training": [s.name for s in train_samples],
                "validation": [s.name for s in val_samples],
                "seed": cfg.seed,
            },
            overwrite=True,
        )
    bundle = BundleConfig(
        model=cfg.model, model_config=model.config.to_dict(), preprocessing=pre, metadata=meta
    )
    total_done = epoch * steps + start_step

    def save(kind: str, epoch_: int, step_: int, part: EpochState | None) -> None:
        if not env.is_main:
            return
        files = ["last.safetensors"] + (["best.safetensors"] if kind == "best" else [])
        for fname in files:
            bundle.sha256[fname] = save_weights(model, run_dir / fname)
        position = {
            "epoch": epoch_,
            "step": step_,
            "best": best,
            "best_epoch": best_epoch,
            "fingerprint": meta["fingerprint"],
            "partial": part.__dict__ if part is not None else None,
            "weights_sha256": bundle.sha256["last.safetensors"],
            # CPU results depend on the intra-op thread count (reduction order): resume with it
            "threads": torch.get_num_threads(),
        }
        save_state(run_dir / STATE_NAME, optimizer, position, scheduler, scaler)
        bundle.metadata.update(
            {"best": best, "best_epoch": best_epoch, "train_config": cfg.to_dict()}
        )
        atomic.write_json(run_dir / CONFIG_NAME, bundle.to_dict())
        atomic.write_text(run_dir / "README.md", _card(cfg, bundle.metadata, model, history))

    interrupted = False
    bar = tqdm(
        total=cfg.epochs * steps,
        initial=total_done,
        desc=f"train {cfg.model}",
        unit="step",
        disable=not (progress and env.is_main),
        dynamic_ncols=True,
    )
    with stop_requests() as stop:
        if env.is_main:
            print(
                f"[train] {cfg.model}: {len(train_samples)} training / {len(val_samples)} validation images, "
                f"{steps} steps of {cfg.batch * env.world} crops per epoch, epochs {epoch + 1}-{cfg.epochs}, "
                f"device {device}, precision {cfg.precision}, seed {cfg.seed}",
                flush=True,
            )
        while epoch < cfg.epochs:
            dataset_obj.set_epoch(epoch)
            loader = build_loader(
                dataset_obj,
                steps,
                cfg.images_per_batch,
                cfg.workers,
                env.rank,
                env.world,
                start_step,
            )
            state = partial
            t_epoch = time.perf_counter()

            def on_step(st: EpochState, epoch_: int = epoch) -> bool:
                nonlocal total_done
                total_done += 1
                bar.update(1)
                rate = st.patches / max(st.data_seconds + st.compute_seconds, 1e-9)
                bar.set_postfix(
                    epoch=epoch_ + 1,
                    loss=f"{sum(st.loss_sums) / st.steps:.4f}",
                    patches_s=f"{rate:.0f}",
                )
                return stop_after_steps is not None and total_done >= stop_after_steps

            stopped = train_one_epoch(
                net, loader, optimizer, scheduler, scaler, cfg, device, env, state, on_step, stop
            )
            if (
                stopped and state.steps < steps
            ):  # state.steps counts the whole epoch, resumed or not
                save("last", epoch, state.steps, state)
                interrupted = True
                break
            row = {
                "epoch": epoch + 1,
                "steps": state.steps,
                "loss": sum(state.loss_sums) / max(state.steps, 1),
                **{f"loss_out{i}": v / max(state.steps, 1) for i, v in enumerate(state.loss_sums)},
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t_epoch,
                "data_seconds": state.data_seconds,
                "compute_seconds": state.compute_seconds,
                "data_share": state.data_seconds
                / max(state.data_seconds + state.compute_seconds, 1e-9),
                "patches_per_s": state.patches
                * env.world
                / max(state.data_seconds + state.compute_seconds, 1e-9),
                # training pixels (crop area) per second, all processes: compare with inference
                "pixels_per_s": state.patches
                * cfg.crop**2
                * env.world
                / max(state.data_seconds + state.compute_seconds, 1e-9),
            }
            metric = -row["loss"]
            if val_samples:
                scores = (
                    evaluate(model, val_samples, pre, device, cfg.precision)
                    if env.is_main
                    else {"val_auc": 0.0, "val_loss": 0.0}
                )
                if env.active:
                    t = torch.tensor(
                        [scores["val_auc"], scores["val_loss"]], device=device, dtype=torch.float64
                    )
                    torch.distributed.broadcast(t, src=0)
                    scores = {"val_auc": float(t[0]), "val_loss": float(t[1])}
                row.update(scores)
                metric = (
                    scores["val_auc"] if math.isfinite(scores["val_auc"]) else -scores["val_loss"]
                )
                if cfg.scheduler == "plateau":
                    scheduler.step(metric)
            elif cfg.scheduler == "plateau":
                scheduler.step(metric)
            history.append(row)
            improved = best is None or metric > best
            if improved:
                best, best_epoch = metric, epoch + 1
            epoch, start_step, partial = epoch + 1, 0, EpochState()
            save("best" if improved else "last", epoch, 0, None)
            if env.is_main:
                _write_log(run_dir, history)
                _plot_progress(run_dir, history)
            distributed.barrier(env)
            if stopped:
                interrupted = epoch < cfg.epochs
                break
    bar.close()
    distributed.barrier(env)
    return TrainResult(
        run_dir,
        epoch,
        best,
        best_epoch,
        interrupted,
        history,
        model,
        stop_signal=stop["signal"] if interrupted else 0,
    )
