"""Which images must stay on one side of a split: one rule for validation splits and cv folds.

An image belongs to a *scan*: the image's name in its dataset, before pooling prefixes
(``PATH:P1,P2,P3`` pools three reconstructions of every scan under ``folder/P1/NAME`` ...;
all three are scan ``NAME``). With ``group_by`` (a regular expression) the scan names are
grouped further, e.g. by subject or eye: the first capture group of the expression's
search in the scan name names the group (the whole match when it has no group).

:func:`group_names` is the one function both :func:`octvessel.training.samples.split_holdout`
(``train --val-fraction``) and :func:`octvessel.cv.splits.make_folds` (``cv``) use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from octvessel.data.sample import Sample
from octvessel.errors import UsageError

#: ``Sample.meta`` key holding the scan name of a pooled sample
SCAN_KEY = "scan"


def compile_group_by(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled; a bad expression is a :class:`UsageError` naming it."""
    if not isinstance(pattern, str) or not pattern:
        raise UsageError(f"--group-by {pattern!r}: expected a non-empty regular expression")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"--group-by {pattern!r} is not a valid regular expression ({exc})"
        ) from None


def group_names(names: Sequence[str], pattern: str | None) -> dict[str, str]:
    """name -> group: the first capture group of ``pattern``'s search in the name (the whole
    match when the pattern has no group); every name its own group when ``pattern`` is None.
    Every name must match.

    >>> group_names(["s01_OD", "s01_OS", "s02_OD"], r"^(s\\d+)_")
    {'s01_OD': 's01', 's01_OS': 's01', 's02_OD': 's02'}
    """
    if pattern is None:
        return {n: n for n in names}
    rx = compile_group_by(pattern)
    groups, unmatched = {}, []
    for name in names:
        m = rx.search(name)
        if m is None:
            unmatched.append(name)
            continue
        value = m.group(1) if rx.groups else m.group(0)
        groups[name] = value if value is not None else m.group(0)
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        raise UsageError(
            f"--group-by {pattern!r} does not match {len(unmatched)} image name(s): {shown}; "
            "expected a pattern found in every name (its first group names the subject or eye)"
        )
    return groups


def scan_of(sample: Sample) -> str:
    """The scan an image was made from: ``meta["scan"]`` of a pooled sample, else its name."""
    return str(sample.meta.get(SCAN_KEY, sample.name))


def sample_groups(samples: Sequence[Sample], group_by: str | None = None) -> list[str]:
    """The group of every sample (same order): its scan, or the scan's ``group_by`` group."""
    scans = [scan_of(s) for s in samples]
    groups = group_names(list(dict.fromkeys(scans)), group_by)
    return [groups[s] for s in scans]


__all__ = ["SCAN_KEY", "compile_group_by", "group_names", "sample_groups", "scan_of"]
