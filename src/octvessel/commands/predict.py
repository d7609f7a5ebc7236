"""``octvessel predict``: vessel maps for images (no labels needed)."""

from __future__ import annotations

import argparse
import sys

from octvessel.commands.options import (
    add_inference_arguments,
    inference_config,
    scale_options,
)
from octvessel.errors import InputError

HELP = "vessel maps for images, no labels needed"

EPILOG = """\
Per image NAME: NAME_prob.png (16-bit), NAME_prob.tif (float32), NAME_mask.png (at
--threshold) and NAME_overlay.png; prediction.json records per image its source,
variant, pixel size, model (weights sha256) and settings. A reconstruction folder
(octvessel reconstruct) or a CAVRI-C dataset gives every variant of every volume, named
NAME_fundus_P1, NAME_fundus_P2 ... (--variant picks some). Outputs that exist are kept
(an interrupted run continues) unless --overwrite; outputs of another model or other
settings are refused unless --overwrite, and a rerun of an interrupted --overwrite run
finishes it. Under `torchrun --nproc_per_node=N -m octvessel predict ...`
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
    p.add_argument(
        "--variant",
        help="comma-separated variants of reconstructions, e.g. P3 or P1,P2 "
        "(default: every variant present)",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="mask threshold (default 0.5)")
    add_inference_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none when stderr is not a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from octvessel.atomic import check_output_dir
    from octvessel.data.inputs import list_inputs, variants_of
    from octvessel.inference import Predictor

    config = inference_config(args)
    variants = args.variant.split(",") if args.variant is not None else None
    items = list_inputs(args.input, split=args.split, variants=variants)
    present = variants_of(items)
    if present:
        how = "asked for" if variants is not None else "all present; --variant picks some"
        print(f"variants: {', '.join(present)} ({how})")
    predictor = Predictor.from_pretrained(
        args.model, config=config, device=args.device, **scale_options(args)
    )
    check_output_dir(args.output)
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
