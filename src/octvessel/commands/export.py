"""``octvessel export``: ONNX export of a model."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "ONNX export of a model (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-o", "--output", required=True)


run = not_implemented("export")
