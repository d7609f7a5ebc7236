"""Train the short DRIVE recipe with IterNet's cheap fused dropout or with torch's, then evaluate.

The cheap ReLU + dropout of ``octvessel.models.dropout`` gives the same gradients as
``F.relu`` then ``x * mask`` for the same mask (checked bit for bit); this script measures
what the *masks* do to accuracy. ``--dropout torch`` swaps ``iternet.relu_dropout`` for
``F.dropout(F.relu(x))`` (torch's generator, one draw per element; ~1.6x slower training).
Everything else (crops: a pure function of seed, epoch and item; init; optimiser) is the same.

    python benchmarks/dropout_accuracy.py --dropout torch --seed 0 -o runs/drive-short-torchdrop
    python benchmarks/dropout_accuracy.py --dropout cheap --seed 0 -o runs/drive-short-cheap

Prints the run's training minutes (sum of epoch times) and DRIVE test AUC / F1 (pooled FOV
pixels, threshold 0.5), read from the run's log.csv and the evaluation's metrics.json.
Needs ``../shared/data/DRIVE`` (or ``$OCTVESSEL_SHARED_DATA``); ~8 (cheap) or ~13 (torch)
minutes on the project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from shared_data import shared_data

import octvessel.models.iternet as iternet
from octvessel.cli import main as cli

RECIPE = Path(__file__).resolve().parent / "recipes" / "drive-cpu-short.toml"


def torch_relu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(F.relu(x))``: torch's generator, one draw per element."""
    return F.dropout(F.relu(x), p, training)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dropout", choices=("cheap", "torch"), default="cheap")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True, help="run folder (must not exist)")
    args = ap.parse_args()
    drive = shared_data() / "DRIVE"
    if args.dropout == "torch":
        iternet.relu_dropout = torch_relu_dropout
    run = Path(args.out)
    rc = cli(["train", "-d", str(drive), "-o", str(run), "--config", str(RECIPE),
              "--seed", str(args.seed), "--no-progress"])  # fmt: skip
    if rc:
        raise SystemExit(rc)
    ev = run.parent / f"{run.name}-eval"
    rc = cli(["evaluate", "-d", str(drive), "-m", str(run), "-o", str(ev), "--overwrite"])
    if rc:
        raise SystemExit(rc)
    rows = list(csv.DictReader((run / "log.csv").open()))
    minutes = sum(float(r["seconds"]) for r in rows) / 60.0
    pooled = json.loads((ev / "metrics.json").read_text())["pooled"]
    print(
        f"dropout {args.dropout}, seed {args.seed}: {minutes:.1f} training min, "
        f"DRIVE test AUC {pooled['auc_roc']:.4f}, F1 {pooled['f1']:.4f}"
    )


if __name__ == "__main__":
    main()
