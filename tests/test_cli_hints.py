"""Issue 16 case 11: hints in error messages name command-line flags; a Python spelling
appears only in the form errors.py renders away on the command line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from octvessel.errors import InputError, UsageError, command_line_form, python_form

SRC = Path(__file__).resolve().parents[1] / "src" / "octvessel"
#: a keyword argument in parentheses, as in "(overwrite=True)"
KEYWORD_HINT = re.compile(r"\(\s*[a-z_]\w*=(?:True|False|None|\d[\w.]*)\s*\)")
#: a Python call with a keyword argument, as in "read_mask(..., threshold=0.5)"
CALL_HINT = re.compile(r"\b[a-z_]\w*\((?:[^()]*,\s*)?[a-z_]\w*=[^()]*\)")


def _messages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string in a ``raise`` of a module (f-strings with ``{}``)."""
    out = []
    raised = [n.exc for n in ast.walk(tree) if isinstance(n, ast.Raise) and n.exc is not None]
    for node in (sub for exc in raised for sub in ast.walk(exc)):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def test_python_spellings_in_messages_follow_the_flag_convention():
    """Every "(keyword=value)" in an error message of the source follows a "--flag ", or
    sits in an "(in Python: ...)" aside: both are dropped from what the command line prints."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for line, text in _messages(ast.parse(path.read_text(encoding="utf-8"))):
            hints = [*KEYWORD_HINT.finditer(text), *CALL_HINT.finditer(text)]
            for m in hints:
                before = text[: m.start()]
                if re.search(r"--[a-z][\w-]* $", before) or "(in Python:" in before:
                    continue
                offenders.append(f"{path.relative_to(SRC)}:{line}: {text[:80]!r}")
    assert offenders == []


def test_the_command_line_prints_flags_and_python_users_get_keywords():
    exc = InputError("exists already; pass --overwrite (overwrite=True) to replace it", "a.json")
    assert str(exc) == "a.json: exists already; pass --overwrite to replace it"
    assert exc.python_message == "a.json: exists already; pass overwrite=True to replace it"
    soft = "not binary (in Python: read_mask(p, threshold=0.5) reads soft masks)"
    assert str(UsageError(soft)) == "not binary"
    assert python_form(soft) == "not binary (read_mask(p, threshold=0.5) reads soft masks)"
    assert command_line_form("plain (no hint)") == "plain (no hint)"
