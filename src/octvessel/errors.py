"""Exceptions that carry the command line's exit-code policy.

0 success, 2 bad usage or bad input (one clear line naming the file and the problem),
1 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Library code raises :class:`InputError` (or a subclass) for anything a
user can fix by handing over different files or arguments; everything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class OctvesselError(Exception):
    """Base class of the package's own errors. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(OctvesselError, ValueError):
    """Bad input: a file that cannot be read, a layout that is not understood, a bad value.

    The message is one line that names the file (or parameter), what was found and what
    was expected.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class UsageError(InputError):
    """A bad argument value or combination (no file involved)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another stop signal) turned into an exception, so that ``finally`` blocks
    and :mod:`octvessel.atomic` remove their temporary files before the process ends.
    The command line exits with 128 + the signal number (143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class NotImplementedYet(OctvesselError):
    """A documented verb or option that this version does not implement yet."""

    exit_code = 2


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise :class:`UsageError`."""
    if value not in choices:
        raise UsageError(f"{name}={value!r} is not valid; expected one of: {', '.join(choices)}")
    return value
