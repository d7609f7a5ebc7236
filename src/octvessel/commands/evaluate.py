"""``octvessel evaluate``: metrics of predictions (or of a model) against labels."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "metrics of predictions or of a model against labels (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("--split")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-p", "--predictions")
    g.add_argument("-m", "--model")
    p.add_argument("-o", "--output", required=True)


run = not_implemented("evaluate")
