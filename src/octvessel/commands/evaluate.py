"""``octvessel evaluate``: metrics of predictions (or of a model) against labels."""

from __future__ import annotations

import argparse
import sys

from octvessel.commands.options import add_inference_arguments, inference_config, scale_options

HELP = "metrics of predictions or of a model against labels"

EPILOG = """\
Protocol (one for every model): all pixels inside the FOV masks of all images, at the
label's native grid, pooled (headline) and per image (mean +- std): AUC-ROC, AUC-PR
(average precision), accuracy, sensitivity, specificity, precision, F1 (= Dice), IoU, MCC
at --threshold; plus the F1-optimal threshold (reported, not used). Writes metrics.json,
metrics.csv, roc.png and pr.png. The reference scripts' "Jaccard" is accuracy.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-d", "--dataset", required=True, help="labelled dataset folder (any layout)")
    p.add_argument(
        "--split", help="split to score (default: test when the dataset has one, else all)"
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "-p", "--predictions", help="folder of probability maps (NAME_prob.tif/.png, NAME.png)"
    )
    g.add_argument("-m", "--model", help="shipped model name, run folder or .safetensors")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--threshold", type=float, default=0.5, help="headline threshold (default 0.5)")
    p.add_argument(
        "--observer", type=int, choices=(1, 2), default=1, help="whose labels (default 1)"
    )
    p.add_argument(
        "--variant",
        help="CAVRI-C reconstruction variants, comma-separated (default: every variant "
        "present; several go to OUTPUT/P1, OUTPUT/P2 ... and OUTPUT/variants.json)",
    )
    p.add_argument("--format", default="auto", help="dataset layout (default: detect)")
    p.add_argument(
        "--no-resample",
        action="store_true",
        help="refuse predictions whose size differs from the label (default: resample them)",
    )
    p.add_argument(
        "--save-predictions",
        action="store_true",
        help="with -m: also write the probability maps, masks and overlays to OUTPUT/predictions",
    )
    add_inference_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none when stderr is not a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from octvessel.evaluation import evaluate_variants, format_report, format_variants

    predictor = None
    if args.model is not None:
        from octvessel.inference.predictor import Predictor

        predictor = Predictor.from_pretrained(
            args.model, config=inference_config(args), device=args.device, **scale_options(args)
        )
    results = evaluate_variants(
        args.dataset,
        args.output,
        variants=args.variant.split(",") if args.variant is not None else None,
        predictions=args.predictions,
        predictor=predictor,
        split=args.split,
        format=args.format,
        observer=args.observer,
        threshold=args.threshold,
        allow_resample=not args.no_resample,
        save_predictions=args.save_predictions,
        overwrite=args.overwrite,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    for variant, result in results.items():
        if len(results) > 1:
            print(f"--- variant {variant}")
        print(format_report(result))
    if predictor is not None:
        print(predictor.scale_line())
    if len(results) > 1:
        print(f"--- variants side by side (pooled)\n{format_variants(results)}")
        print(f"wrote {', '.join(results)}/metrics.json ... and variants.json -> {args.output}")
    else:
        print(f"wrote metrics.json, metrics.csv, roc.png, pr.png -> {args.output}")
    return 0
