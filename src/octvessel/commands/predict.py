"""``octvessel predict``: vessel maps for images (no labels needed)."""

from __future__ import annotations

import argparse
import sys

from octvessel.errors import InputError

HELP = "vessel maps for images, no labels needed"

EPILOG = """\
Per image NAME: NAME_prob.png (16-bit), NAME_prob.tif (float32), NAME_mask.png (at
--threshold) and NAME_overlay.png. Outputs that exist are kept (an interrupted run
continues) unless --overwrite. Under `torchrun --nproc_per_node=N -m octvessel predict ...`
the processes share the images out by rank.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "-i", "--input", required=True, help="an image, a folder of images or a dataset folder"
    )
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument(
        "-m",
        "--model",
        required=True,
        help="shipped model name, run folder, or .safetensors with config.json beside it",
    )
    p.add_argument("--split", help="only this split of a dataset folder (e.g. test)")
    p.add_argument("--threshold", type=float, default=0.5, help="mask threshold (default 0.5)")
    add_inference_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none when stderr is not a terminal)",
    )


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
        "--input-scale", type=float, help="run the network on the image scaled by this factor"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")


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


def inference_config(args: argparse.Namespace):  # noqa: ANN201 (InferenceConfig, imported lazily)
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
        "bf16": resolved_precision(args) == "bf16",
        "memory_budget_mb": budget,
        "input_size": tuple(args.input_size) if args.input_size else None,
        "input_scale": args.input_scale,
    }
    if args.tile is not None:
        values["tile"] = args.tile
    return InferenceConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from octvessel.atomic import check_output_dir
    from octvessel.predictor import Predictor, list_inputs

    config = inference_config(args)
    items = list_inputs(args.input, split=args.split)
    check_output_dir(args.output)
    predictor = Predictor.from_pretrained(args.model, config=config, device=args.device)
    summary = predictor.predict_folder(
        items,
        args.output,
        threshold=args.threshold,
        overwrite=args.overwrite,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(summary.format())
    if summary.failed:
        path, msg = summary.failed[0]
        more = f" ({len(summary.failed) - 1} more above)" if len(summary.failed) > 1 else ""
        print(f"octvessel predict: error: {InputError(msg, path)}{more}", file=sys.stderr)
        return InputError.exit_code
    return 0
