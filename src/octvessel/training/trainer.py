"""``octvessel train``: the trainer, laid out like torchvision's reference scripts.

``build_dataloaders`` -> ``train_one_epoch`` -> ``evaluate`` -> checkpoint, driven by
:func:`train`. A run folder holds:

- ``train_config.json`` (the resolved recipe), ``splits.json`` (training/validation names);
- ``best.safetensors`` (the epoch best by ``best_metric``: validation AUC, or validation
  loss when the validation pixels hold one class, or training loss without validation),
  ``last.safetensors``, ``config.json`` (bundle config with both sha256), ``README.md``;
- ``training_state.safetensors`` (optimiser, scheduler, scaler, RNG, position);
- ``log.csv`` (one row per epoch) and ``progress.png``.

Resuming restores everything, so for a fixed seed on CPU an interrupted-and-resumed run
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from octvessel import atomic, layout
from octvessel.data.sample import Sample
from octvessel.errors import InputError
from octvessel.models.dropout import dropout_record
from octvessel.models.pretrained import CONFIG_NAME, BundleConfig, save_weights
from octvessel.pixel_size import ModelScale
from octvessel.precision import autocast_for, resolve_precision
from octvessel.runtime import reuse_freed_memory, select_device
from octvessel.training import distributed
from octvessel.training.build import (
    build_model,
    init_bundle,
    load_init_weights,
    make_optimizer,
    make_scheduler,
)
from octvessel.training.checkpoint import STATE_NAME, restore, save_state
from octvessel.training.config import TrainConfig
from octvessel.training.data import (
    CropDataset,
    augment_config,
    build_loader,
    check_trainable,
    pool_scale,
)
from octvessel.training.loop import (
    EpochState,
    StepProgress,
    TrainingError,
    epoch_row,
    output_losses,
    stop_requests,
    train_one_epoch,
)
from octvessel.training.result import TrainResult
from octvessel.training.run_folder import (
    LOG_NAME,
    RESUME_FREE,
    SPLITS_NAME,
    TRAIN_CONFIG_NAME,
    check_saved_split,
    resume_config,
    run_facts,
    saved_config,
    saved_group_by,
)
from octvessel.training.run_folder import plot_progress as _plot_progress
from octvessel.training.run_folder import read_log as _read_log
from octvessel.training.run_folder import run_card as _card
from octvessel.training.run_folder import write_log as _write_log
from octvessel.training.samples import load_samples as _load_samples
from octvessel.training.samples import parse_dataset_spec, split_variants, splits_record
from octvessel.training.validation import (
    BEST_METRICS,
    improves,
    validate,
)

#: the old name of :func:`octvessel.training.validation.validate` (``octvessel.training.evaluate``)
evaluate = validate


# ----------------------------------------------------------------------------- driver


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
    group_by: str | None = None,
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
        group_by: a regular expression naming each scan's group (subject, eye) in its name;
            a ``val_fraction`` split keeps a group's images on one side (every variant of
            one scan is always kept together). On ``resume`` the saved one is the default.
        stop_after_steps: stop (as if interrupted) after this many steps in total -- for tests.

    Returns:
        a :class:`TrainResult`; ``interrupted`` is True when a signal (or ``stop_after_steps``)
        stopped it, with a resumable checkpoint saved.
    """
    run_dir = Path(run_dir)
    saved_cfg_path = run_dir / TRAIN_CONFIG_NAME
    if resume:
        saved = resume_config(run_dir, config)
        cfg = saved
        group_by = group_by if group_by is not None else saved_group_by(run_dir)
    else:
        cfg = config or TrainConfig()
        if saved_cfg_path.exists() and not overwrite:
            raise InputError(
                "holds a training run already; pass --resume to continue it or --overwrite to start over",
                run_dir,
            )

    env = distributed.env_from_os()
    device = select_device(cfg.device)
    if device.type == "cpu":  # keep freed activations for the next step: ~1.8x on CPU
        reuse_freed_memory()
    # precision "auto" is resolved once here and saved resolved (train_config.json, the card)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, device))
    if device.type == "cuda" and env.active:
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    train_samples, val_samples, dataset_name = _load_samples(
        dataset, cfg, format, observer, variant, group_by
    )
    if resume:
        check_saved_split(run_dir, train_samples, val_samples)
    check_trainable(train_samples, cfg.crop)
    train_samples, val_samples, scale, scale_notes = pool_scale(train_samples, val_samples, cfg)
    for note in scale_notes[:5]:
        print(f"scale: {note}", flush=True)  # stdout, as predict prints it
    distributed.init(env, device)
    threads = torch.get_num_threads()
    try:
        return _run(
            train_samples,
            val_samples,
            {
                "dataset": dataset_name,
                "format": format,
                "observer": observer,
                "variant": variant,
                "group_by": group_by,
            },
            run_dir,
            cfg,
            env,
            device,
            resume=resume,
            progress=progress,
            stop_after_steps=stop_after_steps,
            command=command,
            scale=scale,
        )
    finally:
        torch.set_num_threads(threads)  # a resume may have set the run's own thread count
        distributed.shutdown(env)


def _dropout_note(record: dict) -> str:
    """``", dropout 0.1 -> 0.1016 (8-bit draws)"`` from :func:`dropout_record`'s record."""
    rates = ", ".join(f"{p} -> {q:.4f}" for p, q in record["p_effective"].items())
    return f", dropout {rates} ({record['random_bits']}-bit draws)" if rates else ""


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


def _run(
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
    scale: ModelScale | None = None,
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
        augment_config(cfg),
        cfg.seed,
        length=steps * env.world * cfg.images_per_batch,
        with_region=cfg.loss_region == "fov",
    )
    meta = run_facts(source, cfg, train_samples, val_samples, steps, env, device, command)
    if init_sha is not None:
        meta.update(init_from=cfg.init_from, init_sha256=init_sha)

    epoch, start_step, history, best, best_epoch = 0, 0, [], None, None
    partial = EpochState()
    if resume:
        position = restore(run_dir, model, optimizer, scheduler, scaler)
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
            splits_record(train_samples, val_samples, cfg.seed, source.get("group_by")),
            overwrite=True,
        )
    bundle = BundleConfig(
        model=cfg.model,
        model_config=model.config.to_dict(),
        preprocessing=pre,
        metadata=meta,
        scale=scale,
    )
    total_done = epoch * steps + start_step
    done = TrainResult(
        run_dir,
        epoch,
        best,
        best_epoch,
        history=history,
        model=model,
        best_metric=meta["best_metric"],
        first_epoch=epoch + 1,
        total_epochs=cfg.epochs,
    )
    if resume and epoch >= cfg.epochs:  # finished: nothing to train (result.summary() says so)
        return done

    drawn = dropout_record(model)  # the drop rates the layers really use, recorded once

    def save(kind: str, epoch_: int, step_: int, part: EpochState | None) -> None:
        if not env.is_main:
            return
        files = [layout.LAST_WEIGHTS] + ([layout.BEST_WEIGHTS] if kind == "best" else [])
        for fname in files:
            bundle.sha256[fname] = save_weights(model, run_dir / fname)
        position = {
            "epoch": epoch_,
            "step": step_,
            "best": best,
            "best_epoch": best_epoch,
            "fingerprint": meta["fingerprint"],
            "partial": part.__dict__ if part is not None else None,
            "weights_sha256": bundle.sha256[layout.LAST_WEIGHTS],
            # CPU results depend on the intra-op thread count (reduction order): resume with it
            "threads": torch.get_num_threads(),
        }
        save_state(run_dir / STATE_NAME, optimizer, position, scheduler, scaler)
        bundle.metadata.update(
            {
                "best": best,
                "best_epoch": best_epoch,
                "train_config": cfg.to_dict(),
                "dropout": drawn,
            }
        )
        atomic.write_json(run_dir / CONFIG_NAME, bundle.to_dict())
        atomic.write_text(run_dir / layout.MODEL_CARD, _card(cfg, bundle.metadata, model, history))

    interrupted = False
    bar = tqdm(
        total=cfg.epochs * steps,
        initial=total_done,
        desc=f"train {cfg.model}",
        unit="step",
        disable=not (progress and env.is_main),
        dynamic_ncols=True,
    )
    on_step = StepProgress(bar, total_done, stop_after_steps)
    with stop_requests() as stop:
        if env.is_main:
            print(
                f"[train] {cfg.model}: {len(train_samples)} training / {len(val_samples)} validation images, "
                f"{steps} steps of {cfg.batch * env.world} crops per epoch, epochs {epoch + 1}-{cfg.epochs}, "
                f"device {device}, precision {cfg.precision}, seed {cfg.seed}{_dropout_note(drawn)}",
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

            on_step.epoch = epoch
            stopped = train_one_epoch(
                net, loader, optimizer, scheduler, scaler, cfg, device, env, state, on_step, stop
            )
            if (
                stopped and state.steps < steps
            ):  # state.steps counts the whole epoch, resumed or not
                save("last", epoch, state.steps, state)
                interrupted = True
                break
            row = epoch_row(
                state, epoch + 1, optimizer.param_groups[0]["lr"], t_epoch, cfg.crop, env.world
            )
            if val_samples:
                scores = (
                    validate(model, val_samples, pre, device, cfg.precision)
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
            value = row["loss" if meta["best_metric"] == "train_loss" else meta["best_metric"]]
            if cfg.scheduler == "plateau":  # its mode is "max": larger is better
                scheduler.step(value if BEST_METRICS[meta["best_metric"]] else -value)
            history.append(row)
            improved = improves(meta["best_metric"], value, best)
            if improved:
                best, best_epoch = value, epoch + 1
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
    return replace(
        done,
        epochs_done=epoch,
        best=best,
        best_epoch=best_epoch,
        interrupted=interrupted,
        stop_signal=stop["signal"] if interrupted else 0,
    )


__all__ = [
    "LOG_NAME",
    "RESUME_FREE",
    "SPLITS_NAME",
    "TRAIN_CONFIG_NAME",
    "EpochState",
    "TrainResult",
    "TrainingError",
    "autocast_for",
    "build_model",
    "evaluate",
    "init_bundle",
    "load_init_weights",
    "make_optimizer",
    "make_scheduler",
    "output_losses",
    "check_saved_split",
    "parse_dataset_spec",
    "saved_config",
    "saved_group_by",
    "split_variants",
    "stop_requests",
    "train",
    "train_one_epoch",
]
