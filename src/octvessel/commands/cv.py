"""``octvessel cv``: k-fold cross-validation."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "k-fold cross-validation (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--model", default="iternet")


run = not_implemented("cv")
