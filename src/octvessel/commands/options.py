"""Option groups shared by several verbs (so verb modules never import each other).

- :func:`add_training_arguments` / :func:`recipe_overrides`: ``train`` and ``cv``;
- :func:`add_inference_arguments` / :func:`inference_config`: ``predict`` and ``evaluate -m``
  (with :func:`add_scale_arguments` / :func:`scale_options`: ``--spacing``, ``--fov-px``).
"""

from __future__ import annotations

import argparse

from octvessel.training.config import (
    DEVICES,
    LOSS_REGIONS,
    OPTIMIZERS,
    PRECISION_CHOICES,
    SCHEDULERS,
)

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


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a training run (shared by train and cv)."""
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
        "--loss-region",
        choices=LOSS_REGIONS,
        help="all (default: every pixel of a crop) or fov (only the pixels inside the "
        "dataset's masks count: a weak label's unsure pixels, a photograph's surround)",
    )
    g.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="auto (default: bf16 on CPUs with AVX512-BF16/AMX and on CUDA, else fp32), "
        "fp32, bf16 autocast or fp16 AMP (CUDA)",
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
    g.add_argument(
        "--spacing",
        metavar="ROW,COL",
        help="pixel size of the training images in mm (row,col; one number for square "
        "pixels), for data that carry none; default: from each dataset (dataset.json, "
        "sidecars, HEYEX XML), else the FOV estimate (docs/scale.md)",
    )
    g.add_argument(
        "--fov-px",
        type=float,
        metavar="N",
        help="training photographs: FOV diameter in pixels (default: measured on each FOV mask)",
    )
    g.add_argument("--base-channels", type=int, help="network width k (IterNet)")
    g.add_argument("--iterations", type=int, help="IterNet mini-UNet passes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def recipe_overrides(args: argparse.Namespace) -> tuple[dict, dict]:
    """(recipe settings, network settings) given on the command line (None: not given)."""
    from octvessel.pixel_size import parse_spacing

    overrides = {name: getattr(args, name) for name in OVERRIDES}
    overrides.update(
        optimizer=args.optimizer,
        scheduler=args.scheduler,
        augment=args.augment,
        loss_region=args.loss_region,
        precision=args.precision,
        device=args.device,
        input_spacing_mm=parse_spacing(getattr(args, "spacing", None)),
        input_fov_px=getattr(args, "fov_px", None),
    )
    model_config = {
        k: v
        for k, v in (("base_channels", args.base_channels), ("iterations", args.iterations))
        if v is not None
    }
    return overrides, model_config


def add_inference_arguments(p: argparse.ArgumentParser) -> None:
    """The options that set how a model runs (shared by predict and evaluate -m)."""
    p.add_argument(
        "--method",
        choices=("auto", "whole", "tiles", "patches"),
        default="auto",
        help="auto (default: whole image when it fits --max-memory, else tiles), whole "
        "(refused when it would need more than --max-memory), tiles, or patches (the "
        "reference every-crop scheme; very slow)",
    )
    p.add_argument("--tile", type=int, help="tile side for --method tiles (default 512)")
    p.add_argument(
        "--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)"
    )
    p.add_argument(
        "--crop", type=int, default=128, help="patch side for --method patches (default 128)"
    )
    p.add_argument(
        "--stride", type=int, default=3, help="patch stride for --method patches (default 3)"
    )
    p.add_argument(
        "--batch-size", type=int, help="tiles/patches per forward pass (default: from --max-memory)"
    )
    p.add_argument("--tta", action="store_true", help="average over flips (4x slower)")
    p.add_argument(
        "--margin",
        type=int,
        default=32,
        metavar="PX",
        help="mirrored context added around the image before the network and cropped off "
        "after, in network pixels (default 32: fewer false vessels along image borders; 0: off)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto (default): bfloat16 autocast on CPUs with AVX512-BF16/AMX and on CUDA with "
        "bf16, float32 elsewhere; fp32 to opt out",
    )
    p.add_argument(
        "--bf16", action="store_const", const="bf16", dest="precision", help="= --precision bf16"
    )
    p.add_argument(
        "--max-memory",
        default="auto",
        metavar="SIZE",
        help="memory one forward pass may use, e.g. 4GB, 512MB (binary units), or auto "
        "(default: half the available memory, 512 MB to 16 GB)",
    )
    p.add_argument("--memory-mb", type=int, help=argparse.SUPPRESS)  # old spelling, in MB
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="run the network on the image resampled to H x W (the probability is resampled back)",
    )
    p.add_argument(
        "--input-scale",
        type=float,
        help="run the network on the image scaled by this factor (overrides the automatic "
        "physical scale; 1 = the image's own grid)",
    )
    add_scale_arguments(p)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    """``--spacing`` and ``--fov-px``: the inputs' pixel size when the data carry none."""
    p.add_argument(
        "--spacing",
        metavar="ROW,COL",
        help="pixel size of the inputs in mm (row,col; one number for square pixels); "
        "default: from the reconstruction sidecar, dataset.json or a HEYEX XML, else "
        "estimated (docs/scale.md)",
    )
    p.add_argument(
        "--fov-px",
        type=float,
        metavar="N",
        help="photographs: diameter of the field of view in pixels (default: measured on the "
        "FOV mask)",
    )


def scale_options(args: argparse.Namespace) -> dict:
    """``spacing`` and ``fov_px`` for :class:`~octvessel.inference.Predictor`, checked."""
    from octvessel.pixel_size import check_fov_px, parse_spacing

    fov_px = getattr(args, "fov_px", None)
    return {
        "spacing": parse_spacing(getattr(args, "spacing", None)),
        "fov_px": check_fov_px(fov_px) if fov_px is not None else None,
    }


def resolved_precision(args: argparse.Namespace) -> str:
    """``--precision`` with ``auto`` resolved for ``--device`` (default: CUDA when available)."""
    import torch

    from octvessel.precision import resolve_precision

    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):  # a bad --device is reported by the predictor
        device = torch.device("cpu")
    return resolve_precision(args.precision, device)


def inference_config(args: argparse.Namespace):
    """The :class:`InferenceConfig` of the command-line options shared by predict and evaluate."""
    from octvessel.inference import InferenceConfig, auto_memory_budget_mb, parse_memory

    if args.memory_mb is not None:
        budget = parse_memory(args.memory_mb)
    elif str(args.max_memory).strip().lower() == "auto":
        try:
            budget = auto_memory_budget_mb(args.device)
        except (RuntimeError, TypeError):  # a bad --device is reported by the predictor
            budget = auto_memory_budget_mb("cpu")
    else:
        budget = parse_memory(args.max_memory)
    values = {
        "method": args.method,
        "overlap": args.overlap,
        "crop": args.crop,
        "stride": args.stride,
        "batch_size": args.batch_size,
        "tta": args.tta,
        "margin": args.margin,
        "bf16": resolved_precision(args) == "bf16",
        "memory_budget_mb": budget,
        "input_size": tuple(args.input_size) if args.input_size else None,
        "input_scale": args.input_scale,
    }
    if args.tile is not None:
        values["tile"] = args.tile
    return InferenceConfig.from_dict(values)
