"""One module per ``octvessel`` verb: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``.

A verb module only translates arguments into an API call; the work lives in the library.
``VERBS`` fixes the order in ``octvessel -h``. Option groups used by several verbs live in
:mod:`octvessel.commands.options`; verbs never import each other.
"""

from __future__ import annotations

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
