"""``octvessel train``: train one model (recipe from a preset, a TOML file and flags)."""

from __future__ import annotations

import argparse
import signal
import sys

from octvessel.commands.options import (  # noqa: F401  (recipe_overrides: public name)
    OVERRIDES,
    add_training_arguments,
    recipe_overrides,
)

HELP = "train one model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_arguments(p)
    p.add_argument(
        "--group-by",
        metavar="REGEX",
        help="with --val-fraction: keep the images of one subject/eye on one side: the first "
        r"group of REGEX's match in the scan name names it (e.g. '^(\d+)_'); every variant of "
        "one scan (PATH:P1,P2,P3) is always kept together; recorded in splits.json",
    )


def run(args: argparse.Namespace) -> int:
    from octvessel.atomic import check_output_dir
    from octvessel.training import resolve_config, train

    if not args.resume:
        check_output_dir(args.output)  # before minutes of loading: a file there, no permission
    overrides, model_config = recipe_overrides(args)
    overrides["model"] = args.model
    if args.resume and not (args.preset or args.config):
        from octvessel.training import saved_config

        # continue the saved recipe: only settings given on the command line are checked
        base = saved_config(args.output).to_dict()
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = resolve_config(None, None, {**base, **given})
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
    if args.group_by and not cfg.val_fraction:
        from octvessel.errors import UsageError

        raise UsageError(
            "--group-by groups the images of a held-out validation split; give --val-fraction"
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
        group_by=args.group_by,
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
    print(result.summary())
    return 0
