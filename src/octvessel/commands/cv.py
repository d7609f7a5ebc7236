"""``octvessel cv``: k-fold cross-validation (the paper's protocol), one or several arms."""

from __future__ import annotations

import argparse
import signal
import sys

from octvessel.commands.options import add_training_arguments, recipe_overrides
from octvessel.errors import UsageError

HELP = "k-fold cross-validation of one or several models / dataset variants"

EPILOG = """\
Folds: contiguous blocks of the image names in natural order (as the paper's scripts cut
them, but a remainder is spread over the first folds instead of dropped); --shuffle
shuffles first (seeded by --split-seed, else --seed); --group-by REGEX keeps the images
whose names give the same match (its first group) in one fold. splits.json is written
first. Every fold trains with the same recipe options as `octvessel train` on the other
folds' images and is scored with the common protocol; cv_metrics.json/.csv hold the
pooled pixels of all folds' test images and the mean +- std over folds (and over images),
comparison.json/.csv one row per arm. Run the same command again after an interruption:
finished folds are skipped, an interrupted one resumes. See docs/cv-report.md.
"""

#: options of `octvessel train` whose meaning changes here
_HELP_CHANGES = {
    "dataset": "labelled dataset folder (any supported layout; one); PATH:P1,P3 is PATH "
    "with --variant P1,P3 (one arm per variant)",
    "model": "architecture(s): NAME, NAME,NAME... or 'all' (every registered network); "
    "default: the recipe's (iternet)",
    "variant": "CAVRI-C reconstruction variant(s): P1, or P1,P2,P3 to compare them",
    "resume": "accepted for symmetry with train: cv always continues a folder it finds",
    "overwrite": "redo every fold from scratch in a folder that holds a cross-validation",
    "output": "cross-validation folder",
    "seed": "training seed (also the shuffle's, unless --split-seed)",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_training_arguments(p)
    for action in p._actions:  # the train options, re-described where cv reads them differently
        if action.dest in _HELP_CHANGES:
            action.help = _HELP_CHANGES[action.dest]
    g = p.add_argument_group("cross-validation")
    g.add_argument("--folds", type=int, default=6, help="number of folds (default 6, as the paper)")
    g.add_argument("--shuffle", action="store_true", help="shuffle the images before cutting folds")
    g.add_argument("--split-seed", type=int, help="seed of --shuffle (default: --seed, else 0)")
    g.add_argument(
        "--group-by",
        metavar="REGEX",
        help="keep images of one subject/eye together: the first group of REGEX's match in "
        r"the name names it (e.g. '^(\d+)_' or '^(.+)_O[DS]')",
    )
    g.add_argument("--threshold", type=float, default=0.5, help="headline threshold (default 0.5)")


def run(args: argparse.Namespace) -> int:
    from octvessel.cv import CVConfig, format_result, parse_names, recipes_for, run_cv
    from octvessel.training.samples import parse_dataset_spec

    if len(args.dataset) != 1:
        raise UsageError("cv takes one dataset (-d) at a time")
    variants = tuple(v.upper() for v in parse_names(args.variant, "variant"))
    dataset, spec_variants = parse_dataset_spec(args.dataset[0], list(variants))
    if list(spec_variants) != list(variants):
        if args.variant.upper() != "P1":  # --variant given, and other than the -d suffix
            raise UsageError(
                f"-d {args.dataset[0]} names variants {','.join(spec_variants)} but --variant "
                f"is {args.variant}; give the variants once"
            )
        variants = tuple(spec_variants)
    overrides, model_config = recipe_overrides(args)
    recipes = recipes_for(
        parse_names(args.model, "model"),
        args.preset,
        args.config,
        overrides,
        model_config,
        args.color,
    )
    split_seed = args.split_seed if args.split_seed is not None else (args.seed or 0)
    config = CVConfig(
        folds=args.folds,
        shuffle=args.shuffle,
        split_seed=split_seed,
        group_by=args.group_by,
        models=tuple(recipes),
        variants=variants,
        format=args.format,
        observer=args.observer,
        threshold=args.threshold,
    )
    result = run_cv(
        dataset,
        args.output,
        config,
        recipes,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        command="octvessel " + " ".join(sys.argv[1:]),
    )
    if result.interrupted:
        print(
            f"octvessel cv: interrupted; finished folds and a resumable checkpoint are in "
            f"{result.out_dir} (run the same command again to continue)",
            file=sys.stderr,
        )
        return 128 + (result.stop_signal or signal.SIGINT)
    print(format_result(result))
    print(
        f"{len(result.trained)} fold(s) trained, {len(result.skipped)} skipped (finished "
        f"earlier) in {result.seconds:.1f} s; wrote splits.json, cv_metrics.json/.csv, "
        f"comparison.json/.csv -> {result.out_dir}"
    )
    return 0
