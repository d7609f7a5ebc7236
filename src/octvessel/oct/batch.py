"""Reconstruct many volumes: carry on past bad ones, skip what is done, list failures.

A volume is done when its sidecar ``NAME_enface.json`` exists (it is written last, after
every image), so a rerun of an interrupted batch does only what is missing; outputs of a
volume that has no sidecar are incomplete and are replaced (and named in the log).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from octvessel.errors import InputError, OctvesselError

__all__ = ["BatchSummary", "output_prefixes", "reconstruct_batch"]


@dataclass
class BatchSummary:
    """What a batch did: written, skipped (done before) and failed (path, message)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def format(self) -> str:
        text = (
            f"{len(self.written)} reconstructed, {len(self.skipped)} already done, "
            f"{len(self.failed)} failed"
        )
        lines = [text] + [f"  failed: {m}" for _, m in self.failed]
        return "\n".join(lines)


def output_prefixes(paths: Sequence[Path]) -> list[str]:
    """The output prefix of each input (file stem or folder name), all different.

    Raises:
        InputError: two inputs would write the same files.
    """
    prefixes = [p.stem if p.is_file() else p.name for p in paths]
    seen: dict[str, Path] = {}
    for prefix, p in zip(prefixes, paths, strict=True):
        if prefix in seen:
            raise InputError(
                f"two inputs would write {prefix}_*: {seen[prefix].name} and {p.name}", p
            )
        seen[prefix] = p
    return prefixes


def reconstruct_batch(
    paths: Sequence[Path],
    out_dir: Path,
    one: Callable[[Path, str, bool], str],
    *,
    overwrite: bool = False,
    keep_going: bool = True,
    log: Callable[[str], None] = print,
) -> BatchSummary:
    """Run ``one(path, prefix)`` for every input not done yet.

    Args:
        paths: the inputs. out_dir: the output folder.
        one: ``one(path, prefix, overwrite)`` reconstructs one volume and returns a line
            to print. In batch mode, a volume without a sidecar whose other outputs exist
            (an interrupted run) is redone with ``overwrite=True``.
        overwrite: redo volumes that are done.
        keep_going: batch mode: skip volumes that are done, record a failing volume and
            carry on (else raise at once, and existing outputs are an error).
        log: where progress lines go.
    """
    summary = BatchSummary()
    for prefix, p in zip(output_prefixes(paths), paths, strict=True):
        if keep_going and not overwrite and (out_dir / f"{prefix}_enface.json").exists():
            summary.skipped.append(prefix)
            log(f"{p.name}: done already ({prefix}_enface.json exists); skipped")
            continue
        replace = overwrite
        if keep_going and not overwrite:
            left = sorted(q.name for q in out_dir.glob(f"{prefix}_*") if q.is_file())
            if left:  # an interrupted run: outputs without the sidecar written last
                log(f"{p.name}: replacing incomplete outputs without a sidecar: {', '.join(left)}")
                replace = True
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                line = one(p, prefix, replace)
        except OctvesselError as exc:
            if not keep_going:
                raise
            summary.failed.append((p, str(exc)))
            print(f"octvessel reconstruct: error: {exc}", file=sys.stderr)
            continue
        summary.written.append(prefix)
        log(f"{line} in {time.perf_counter() - start:.1f} s")
    return summary
