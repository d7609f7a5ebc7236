"""``octvessel demo``: the main job on embedded defaults."""

from __future__ import annotations

import argparse

HELP = (
    "the main job on embedded defaults: synthetic OCT volume -> layer boundaries -> "
    "P1/P2/P3 en-face images -> vessel maps (iternet-oct) -> metrics, pictures, report"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", default="demo-output", help="output folder (default: ./demo-output)"
    )
    p.add_argument(
        "-m", "--model", default="iternet-oct", help="vessel model (default: shipped iternet-oct)"
    )
    p.add_argument("--seed", type=int, default=0, help="the synthetic volume's seed (default 0)")
    p.add_argument("--threshold", type=float, default=0.5, help="mask threshold (default 0.5)")
    p.add_argument("--no-bf16", action="store_true", help="predict in float32")
    p.add_argument("--no-progress", action="store_true", help="(kept for scripts; no effect)")
    p.add_argument(
        "--overwrite", action="store_true", help="redo a finished demo in the same folder"
    )


def run(args: argparse.Namespace) -> int:
    from octvessel.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        model=args.model, seed=args.seed, bf16=not args.no_bf16, threshold=args.threshold
    )
    run_demo(args.output, cfg, overwrite=args.overwrite, progress=not args.no_progress)
    return 0
