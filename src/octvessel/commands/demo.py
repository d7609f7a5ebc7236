"""``octvessel demo``: the main job on embedded defaults."""

from __future__ import annotations

import argparse

HELP = "the main job on embedded defaults: synthetic data -> train -> predict -> metrics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", default="demo-output", help="output folder (default: ./demo-output)"
    )
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--n-train", type=int, default=12, help="synthetic training images")
    p.add_argument("--n-test", type=int, default=4, help="synthetic test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-bf16", action="store_true", help="train and predict in float32")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--overwrite", action="store_true", help="redo a finished demo in the same folder"
    )


def run(args: argparse.Namespace) -> int:
    from octvessel.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        steps=args.steps,
        seed=args.seed,
        n_train=args.n_train,
        n_test=args.n_test,
        bf16=not args.no_bf16,
    )
    run_demo(args.output, cfg, overwrite=args.overwrite, progress=not args.no_progress)
    return 0
