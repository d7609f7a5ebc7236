"""``octvessel reconstruct``: OCT volume(s) -> en-face image(s)."""

from __future__ import annotations

import argparse

from octvessel.commands import not_implemented

HELP = "OCT volume(s) -> en-face image(s) (not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True, help="volume file or folder")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--variant", default="P1,P2,P3", help="comma-separated variants")
    p.add_argument(
        "--isotropic", action="store_true", help="resample the slow axis to the physical spacing"
    )


run = not_implemented("reconstruct")
