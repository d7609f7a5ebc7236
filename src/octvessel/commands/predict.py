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


def run(args: argparse.Namespace) -> int:
    from octvessel.atomic import check_output_dir
    from octvessel.data.inputs import list_inputs
    from octvessel.inference import Predictor

    config = inference_config(args)
    items = list_inputs(args.input, split=args.split)
    check_output_dir(args.output)
    predictor = Predictor.from_pretrained(
        args.model, config=config, device=args.device, **scale_options(args)
    )
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
