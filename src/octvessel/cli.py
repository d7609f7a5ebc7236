"""The ``octvessel`` command line: argument parsing only; the work is done by the API.

Each verb lives in :mod:`octvessel.commands` (one module per verb). Exit codes: 0
success, 2 bad usage or bad input (one line naming the file and the problem; ``--debug``
shows the traceback), 1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from octvessel import __version__
from octvessel.commands import VERBS
from octvessel.errors import OctvesselError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="octvessel",
        description="Retinal vessel segmentation for OCT fundus reconstructions and fundus photographs.",
    )
    parser.add_argument("--version", action="version", version=f"octvessel {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        module = importlib.import_module(f"octvessel.commands.{verb}")
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except OctvesselError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"octvessel {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"octvessel {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: say so plainly, traceback on --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"octvessel {args.verb}: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
