"""``octvessel report``: a self-contained HTML report of a run, evaluation or cv."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "self-contained HTML report of a run, evaluation or cv (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("-o", "--output")


run = not_implemented("report")
