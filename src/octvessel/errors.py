"""Exceptions that carry the command line's exit-code policy.

0 success, 2 bad usage or bad input (one clear line naming the file and the problem),
1 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Library code raises :class:`InputError` (or a subclass) for anything a
user can fix by handing over different files or arguments; everything else is a bug.
"""

from __future__ import annotations

import re
from pathlib import Path

#: ``--flag (keyword=value)`` in a message: the command-line and the Python spelling
_FLAG_AND_KEYWORD = re.compile(r"(--[a-z][\w-]*) \(([a-z_]\w*=[^()]*)\)")
#: `` (in Python: ...)``: a hint for library users only
_PYTHON_ONLY = re.compile(r" \(in Python: (?:[^()]|\([^()]*\))*\)")


def command_line_form(message: str) -> str:
    """``message`` as the command line shows it: ``--flag (keyword=value)`` -> ``--flag``,
    `` (in Python: ...)`` dropped.

    >>> command_line_form("exists already; pass --overwrite (overwrite=True) to replace it")
    'exists already; pass --overwrite to replace it'
    >>> command_line_form("not binary (in Python: read_mask(p, threshold=0.5) reads it)")
    'not binary'
    """
    return _PYTHON_ONLY.sub("", _FLAG_AND_KEYWORD.sub(r"\1", message))


def python_form(message: str) -> str:
    """``message`` for library users: ``--flag (keyword=value)`` -> ``keyword=value``,
    `` (in Python: X)`` -> `` (X)``.

    >>> python_form("exists already; pass --overwrite (overwrite=True) to replace it")
    'exists already; pass overwrite=True to replace it'
    """
    text = _FLAG_AND_KEYWORD.sub(r"\2", message)
    return _PYTHON_ONLY.sub(lambda m: " (" + m.group(0)[len(" (in Python: ") :], text)


class OctvesselError(Exception):
    """Base class of the package's own errors. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(OctvesselError, ValueError):
    """Bad input: a file that cannot be read, a layout that is not understood, a bad value.

    The message is one line that names the file (or parameter), what was found and what
    was expected. Hints name command-line flags; a message may add the Python spelling of
    a flag as ``--overwrite (overwrite=True)``, or a hint for library users as
    `` (in Python: ...)``: ``str(exc)`` -- what the command line prints -- keeps the flag
    form (:func:`command_line_form`), ``exc.python_message`` the Python one.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        where = f"{path}: " if path is not None else ""
        self.python_message = where + python_form(message)
        super().__init__(where + command_line_form(message))


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
