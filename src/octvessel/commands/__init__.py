"""One module per ``octvessel`` verb: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``.

A verb module only translates arguments into an API call; the work lives in the library.
``VERBS`` fixes the order in ``octvessel -h``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from octvessel import __version__
from octvessel.errors import NotImplementedYet

VERBS = (
    "reconstruct",
    "phantom",
    "octify",
    "train",
    "predict",
    "evaluate",
    "cv",
    "report",
    "models",
    "demo",
    "export",
    "measure",
)


def not_implemented(verb: str) -> Callable[[argparse.Namespace], int]:
    """A ``run`` for a documented verb this version does not implement yet (exit 2)."""

    def run(args: argparse.Namespace) -> int:
        raise NotImplementedYet(
            f"'octvessel {verb}' is not implemented in octvessel {__version__} yet"
        )

    return run
