"""Peak memory (RSS) of inference on a 3504 x 2336 image under ``--max-memory`` budgets.

Each setting runs in a fresh process (peak RSS is per process): the model is built (random
weights: memory does not depend on their values), the image is made, and then
``predict_image`` runs with ``memory_budget_mb`` = the budget. Printed per setting: the
method ``auto`` chose (or the refusal of ``whole`` above the budget), the estimated
forward-pass memory, seconds, the process's RSS before inference (model + image) and its
peak RSS (``VmHWM``).

    python benchmarks/memory.py [--budgets 512MB,2GB,auto] [--methods auto,whole]
                                [--size 2336x3504] [--base-channels 32] [--iterations 3]

The full IterNet (k = 32, 3 iterations) takes minutes per setting on a small CPU; for a
quick check pass ``--base-channels 8 --iterations 1`` (a small network of the same
architecture; the memory model scales with k and the iterations, see
``octvessel.inference.activation_bytes_per_pixel``). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def vm_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM ...) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from octvessel.errors import UsageError
    from octvessel.inference import (
        auto_memory_budget_mb,
        choose_method,
        estimate_memory,
        parse_memory,
        predict_image,
    )
    from octvessel.models import create_model
    from octvessel.preprocessing import Preprocessing

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = (int(v) for v in args.size.lower().split("x"))
    model = create_model(
        "iternet", base_channels=args.base_channels, iterations=args.iterations
    ).eval()
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    budget = auto_memory_budget_mb("cpu") if args.budget == "auto" else parse_memory(args.budget)
    from octvessel.inference import InferenceConfig

    cfg = InferenceConfig(method=args.method, memory_budget_mb=budget)
    chosen = choose_method(model, (h, w), cfg)
    before = vm_mb("VmRSS")
    start = time.perf_counter()
    try:
        predict_image(model, image, preprocessing=Preprocessing(color="rgb"), config=cfg)
        outcome = chosen
    except UsageError as exc:
        outcome = f"refused: {exc}"
    print(
        json.dumps(
            {
                "budget": args.budget,
                "budget_mb": budget,
                "method": args.method,
                "outcome": outcome,
                "estimate_mb": estimate_memory(model, (h, w)) / 2**20,
                "seconds": time.perf_counter() - start,
                "rss_before_mb": before,
                "peak_rss_mb": vm_mb("VmHWM"),
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--budgets", default="512MB,2GB,auto", help="comma-separated --max-memory values"
    )
    ap.add_argument("--methods", default="auto,whole", help="comma-separated methods")
    ap.add_argument("--size", default="2336x3504", help="HxW of the image (default HRF size)")
    ap.add_argument("--base-channels", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--budget", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    print(
        f"image {args.size}, IterNet k={args.base_channels}, {args.iterations} iterations, "
        f"{args.threads} thread(s)"
    )
    print(
        f"{'method':<7} {'budget':>8} {'outcome':<10} {'estimate':>9} {'seconds':>8} "
        f"{'RSS before':>11} {'peak RSS':>9}"
    )
    for method in args.methods.split(","):
        for budget in args.budgets.split(","):
            cmd = [
                sys.executable, __file__, "--child", "--budget", budget, "--method", method,
                "--size", args.size, "--base-channels", str(args.base_channels),
                "--iterations", str(args.iterations), "--threads", str(args.threads),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{method:<7} {budget:>8} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            outcome = "refused" if r["outcome"].startswith("refused") else r["outcome"]
            print(
                f"{method:<7} {budget:>8} {outcome:<10} {r['estimate_mb']:>7.0f}MB "
                f"{r['seconds']:>8.1f} {r['rss_before_mb']:>9.0f}MB {r['peak_rss_mb']:>7.0f}MB"
            )
            if outcome == "refused":
                print(f"        {r['outcome']}")


if __name__ == "__main__":
    main()
