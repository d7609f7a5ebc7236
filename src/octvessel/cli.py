"""The ``octvessel`` command line: argument parsing only; the work is done by the API.

Each verb lives in :mod:`octvessel.commands` (one module per verb). Exit codes: 0
success, 2 bad usage or bad input (one line naming the file and the problem; ``--debug``
shows the traceback), 1 internal error, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM; both leave no half-written file: temporary files are removed on the way out).
A command that fails (any exit status but 0) leaves no empty output folder: the folders
it created and never wrote into are removed (:func:`octvessel.atomic.remove_empty_created`,
plus the ``-o`` folder when it did not exist before).
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
from pathlib import Path

from octvessel import __version__, atomic
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


#: argument names that hold a verb's output folder
OUTPUT_ARGS = ("output", "out", "output_dir")


def _new_output_folders(args: argparse.Namespace) -> list[Path]:
    """The output folders named on the command line that do not exist yet."""
    paths = [getattr(args, k, None) for k in OUTPUT_ARGS]
    return [Path(p) for p in paths if isinstance(p, str) and p and not Path(p).exists()]


def _take_back_empty(new_outputs: list[Path]) -> None:
    """After a failure: remove the folders the command made and left empty."""
    atomic.remove_empty_created()
    for folder in new_outputs:
        with contextlib.suppress(OSError):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    args = build_parser().parse_args(argv)
    atomic.forget_created()
    new_outputs = _new_output_folders(args)
    code = 1
    try:
        code = _run(args)
        return code
    finally:
        if code != 0:
            _take_back_empty(new_outputs)


def _run(args: argparse.Namespace) -> int:
    """Run the verb; errors become one line and an exit status."""
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
