"""The ``octvessel`` command line: argument parsing only; the work is done by the API.

Each verb lives in :mod:`octvessel.commands` (one module per verb). Exit codes: 0
success, 2 bad usage or bad input (one line naming the file and the problem; ``--debug``
shows the traceback), 1 internal error, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM; both leave no half-written file: temporary files are removed on the way out).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence

from octvessel import __version__
from octvessel.commands import VERBS
from octvessel.errors import OctvesselError, Terminated


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _tolerant_streams() -> None:
    """File names that are not valid UTF-8 (or not in the terminal's encoding) print as
    escapes instead of failing the command with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (temporary files get cleaned up) while a verb runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_raises():
            return int(args.handler(args) or 0)
    except OctvesselError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"octvessel {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        name = "terminated" if signum == signal.SIGTERM else "interrupted"
        print(f"octvessel {args.verb}: {name}", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:  # e.g. `octvessel models | head -1`: not an error of ours
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return 1
    except MemoryError as exc:
        if args.debug:
            traceback.print_exc()
        print(
            f"octvessel {args.verb}: error: out of memory ({_one_line(exc) or 'MemoryError'}); "
            "try smaller inputs, --method tiles or a lower --max-memory",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # an internal error: say so plainly, traceback on --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"octvessel {args.verb}: internal error: {type(exc).__name__}: {_one_line(exc)} "
                "(rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
