"""Atomic file output: write to a temporary file beside the target, then ``os.replace``.

A crash, a full disk or an exception half-way leaves the old file (or no file), never a
truncated one: the temporary file is flushed to disk (``fsync``) before it is renamed, and
the folder after, so even a power cut cannot leave a half-written file under the final
name. Existing files are refused unless ``overwrite`` is set. Errors of the file system
(full disk, no permission, a file where a folder should be) become :class:`InputError`
naming the path.

Folders made here are remembered (:func:`created_folders`); when a command fails,
:func:`remove_empty_created` takes back the ones that are still empty, so a failed
command leaves no empty output folder behind (``octvessel.cli`` calls it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from octvessel.errors import InputError

#: folders this process created (outermost first), for :func:`remove_empty_created`
_CREATED: list[Path] = []


def _make_dirs(folder: Path) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``, remembering the folders it made."""
    new = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    _CREATED.extend(p for p in reversed(new) if p not in _CREATED)


def created_folders() -> list[Path]:
    """The folders made by this module's functions since the last :func:`forget_created`."""
    return list(_CREATED)


def forget_created() -> None:
    """Start a new command: folders made so far are no longer taken back on failure."""
    _CREATED.clear()


def remove_empty_created() -> list[Path]:
    """Remove the folders made here that are (still) empty, innermost first; return them.

    Called when a command fails: a folder it created and never wrote into is taken back.
    Folders that hold anything, or that existed before, are left alone.
    """
    removed = []
    for folder in sorted(_CREATED, key=lambda p: len(p.parts), reverse=True):
        try:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                removed.append(folder)
        except OSError:
            continue
    _CREATED.clear()
    return removed


def check_output_dir(folder: str | Path) -> Path:
    """Make sure ``folder`` is (or can be made) a folder we may write in; create it.

    Raises :class:`InputError` naming the offending path: a file where a folder should be,
    no permission (checked by creating and removing a temporary file), a read-only disk.
    """
    folder = Path(folder)
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise InputError("is a file, not a folder; expected an output folder here", parent)
            break
    try:
        _make_dirs(folder)
        fd, probe = tempfile.mkstemp(prefix=".octvessel-write-test.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write in this folder: {exc.strerror or exc}", folder) from exc
    os.close(fd)
    os.unlink(probe)
    return folder


def check_writable(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; create its parent folder."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError("exists already; pass --overwrite (overwrite=True) to replace it", path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError("is a file, not a folder; expected an output folder here", parent)
            break
    try:
        _make_dirs(path.parent)
    except OSError as exc:
        raise InputError(
            f"cannot create the output folder: {exc.strerror or exc}", path.parent
        ) from exc
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success move it onto ``path``.

    The temporary file keeps ``path``'s suffix so writers that pick a format from the name
    still work. On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = check_writable(path, overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as exc:
        raise InputError(
            f"cannot write in this folder: {exc.strerror or exc}", path.parent
        ) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        # mkstemp makes 0600 and some writers recreate the file: give it the usual permissions
        os.chmod(tmp, 0o666 & ~umask)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"could not be written: {exc.strerror or exc}", path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to disk; a file system without fsync is tolerated."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, overwrite: bool = True) -> Path:
    """UTF-8 text; characters that cannot be encoded (file names that are not valid UTF-8)
    are written as backslash escapes."""
    return write_bytes(path, text.encode("utf-8", errors="backslashreplace"), overwrite)


def write_json(path: str | Path, obj: Any, overwrite: bool = True) -> Path:
    return write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", overwrite
    )
