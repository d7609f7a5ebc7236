"""``octvessel train``: train one model."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "train one model (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("-o", "--output", required=True, help="run folder")
    p.add_argument("--model", default="iternet")
    p.add_argument("--preset")
    p.add_argument("--config", help="TOML recipe file")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


run = not_implemented("train")
