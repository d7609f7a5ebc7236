"""``octvessel train``: train one model (recipe from a preset, a TOML file and flags)."""

from __future__ import annotations

import argparse
import signal
import sys

from octvessel.training.config import DEVICES, OPTIMIZERS, PRECISION_CHOICES, SCHEDULERS

HELP = "train one model"

#: flag -> TrainConfig field, for every scalar recipe setting
OVERRIDES = {
    "epochs": int,
    "steps_per_epoch": int,
    "images_per_batch": int,
    "crops_per_image": int,
    "crop": int,
    "lr": float,
    "weight_decay": float,
    "momentum": float,
    "plateau_patience": int,
    "val_fraction": float,
    "val_split": str,
    "train_split": str,
    "seed": int,
    "workers": int,
    "init_from": str,
}
HELPS = {
    "init_from": "fine-tune: start from these weights (shipped name, run folder or .safetensors)"
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-d",
        "--dataset",
        required=True,
        action="append",
        help="dataset folder (any supported layout); repeat to pool several; "
        "PATH:P1,P2,P3 takes those variants of a CAVRI-C-style folder",
    )
    p.add_argument("-o", "--output", required=True, help="run folder")
    p.add_argument("--model", help="architecture (see `octvessel models`; default iternet)")
    p.add_argument(
        "--preset",
        help="named recipe: iternet-reference (default), iternet-oct, quick, <model>-oct",
    )
    p.add_argument("--config", help="TOML recipe file (keys as in train_config.json)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in -o exactly where it stopped"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="start afresh in a folder that holds a run"
    )
    p.add_argument("--device", choices=DEVICES, help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--format", default="auto", help="dataset layout (default: detect)")
    p.add_argument("--observer", type=int, default=1, help="label observer where a dataset has two")
    p.add_argument("--variant", default="P1", help="CAVRI-C reconstruction variant P1/P2/P3")
    g = p.add_argument_group("recipe overrides (default: the preset's value)")
    for name, kind in OVERRIDES.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=kind, dest=name, help=HELPS.get(name))
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--scheduler", choices=SCHEDULERS)
    g.add_argument("--augment", choices=("reference", "flips", "none"))
    g.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="auto (default: bf16 on CPUs with AVX512-BF16/AMX and on CUDA, else fp32), fp32, bf16 autocast or fp16 AMP (CUDA)",
    )
    g.add_argument(
        "--bf16",
        action="store_const",
        const="bf16",
        dest="precision",
        help="same as --precision bf16",
    )
    g.add_argument(
        "--color", choices=("rgb", "gray", "green"), help="input colour mode (preprocessing)"
    )
    g.add_argument("--base-channels", type=int, help="network width k (IterNet)")
    g.add_argument("--iterations", type=int, help="IterNet mini-UNet passes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def recipe_overrides(args: argparse.Namespace) -> tuple[dict, dict]:
    """(recipe settings, network settings) given on the command line (None: not given)."""
    overrides = {name: getattr(args, name) for name in OVERRIDES}
    overrides.update(
        optimizer=args.optimizer,
        scheduler=args.scheduler,
        augment=args.augment,
        precision=args.precision,
        device=args.device,
    )
    model_config = {
        k: v
        for k, v in (("base_channels", args.base_channels), ("iterations", args.iterations))
        if v is not None
    }
    return overrides, model_config


def run(args: argparse.Namespace) -> int:
    from octvessel.atomic import check_output_dir
    from octvessel.training import resolve_config, train

    if not args.resume:
        check_output_dir(args.output)  # before minutes of loading: a file there, no permission
    overrides, model_config = recipe_overrides(args)
    overrides["model"] = args.model
    if args.resume and not (args.preset or args.config):
        from octvessel.training.trainer import saved_config

        base = saved_config(
            args.output
        ).to_dict()  # continue the saved recipe; flags may only confirm it
        cfg = resolve_config(None, None, {**base, **overrides})
    else:
        cfg = resolve_config(
            args.preset or (None if args.config else "iternet-reference"), args.config, overrides
        )
    if model_config or args.color:
        from dataclasses import replace

        cfg = replace(
            cfg,
            model_config={**cfg.model_config, **model_config},
            preprocessing={**cfg.preprocessing, **({"color": args.color} if args.color else {})},
        )
    result = train(
        args.dataset[0] if len(args.dataset) == 1 else args.dataset,
        args.output,
        cfg,
        resume=args.resume,
        overwrite=args.overwrite,
        format=args.format,
        observer=args.observer,
        variant=args.variant,
        progress=not args.no_progress and sys.stderr.isatty(),
        command="octvessel " + " ".join(sys.argv[1:]),
    )
    if result.interrupted:
        print(
            f"octvessel train: interrupted after epoch {result.epochs_done}; a resumable checkpoint is in "
            f"{result.run_dir} (continue with --resume)",
            file=sys.stderr,
        )
        return 128 + (result.stop_signal or signal.SIGINT)
    print(
        f"trained {result.epochs_done} epochs; best {result.best} at epoch {result.best_epoch}; weights in {result.run_dir}"
    )
    return 0
