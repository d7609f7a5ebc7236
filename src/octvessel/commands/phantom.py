"""``octvessel phantom``: synthetic OCT volumes and a CAVRI-C-style labelled dataset."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "write synthetic OCT volumes and a CAVRI-C-style dataset (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)


run = not_implemented("phantom")
