"""``octvessel predict``: vessel maps for images (no labels needed)."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "vessel maps for images, no labels needed (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True, help="image, folder or dataset")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-m", "--model", required=True, help="shipped name, run folder or .safetensors")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--tile", type=int)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--tta", action="store_true")
    p.add_argument("--overwrite", action="store_true")


run = not_implemented("predict")
