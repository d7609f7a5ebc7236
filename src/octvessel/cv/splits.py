"""Cross-validation folds (pure): contiguous, shuffled or grouped blocks of image names.

The paper's scripts cut the sorted names into contiguous blocks and drop a remainder; here
a remainder is spread over the first folds (one image each, as ``numpy.array_split``), the
order is natural (``im2`` before ``im10``), shuffling is seeded, and ``group_by`` keeps the
images of one subject or eye in one fold -- by the same rule (:func:`group_names`, from
:mod:`octvessel.data.groups`) as ``train --group-by`` uses for its validation split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.config import check_int
from octvessel.data.groups import compile_group_by, group_names
from octvessel.data.layouts import natural_key
from octvessel.errors import InputError, UsageError

__all__ = [
    "SCHEMA",
    "SPLITS_NAME",
    "Fold",
    "balanced_cuts",
    "compile_group_by",
    "group_names",
    "make_folds",
    "read_splits",
    "splits_document",
]

SPLITS_NAME = "splits.json"
SCHEMA = 1


@dataclass(frozen=True)
class Fold:
    """One fold: its 1-based ``index``, test names and training names (natural order)."""

    index: int
    test: tuple[str, ...]
    train: tuple[str, ...]


def balanced_cuts(sizes: Sequence[int], k: int) -> list[int]:
    """Boundaries ``0 = b0 < b1 < ... < bk = len(sizes)`` cutting groups of ``sizes`` into
    ``k`` contiguous blocks whose image counts are as close as the groups allow to
    ``numpy.array_split``'s (a remainder goes to the first blocks, one image each).

    With single images (all sizes 1) the blocks are exactly ``array_split``'s.
    """
    g, n = len(sizes), int(sum(sizes))
    if k < 1 or g < k:
        raise UsageError(f"cannot cut {g} group(s) into {k} non-empty folds")
    q, r = divmod(n, k)
    cum = np.concatenate([[0], np.cumsum(sizes)])
    cuts = [0]
    for i in range(1, k):
        target = i * q + min(i, r)
        lo, hi = cuts[-1] + 1, g - (k - i)  # leave a group for every later fold
        candidates = np.arange(lo, hi + 1)
        cuts.append(int(candidates[np.argmin(np.abs(cum[candidates] - target))]))
    return [*cuts, g]


def make_folds(
    names: Sequence[str],
    folds: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    group_by: str | None = None,
) -> list[Fold]:
    """Split image names into ``folds`` test folds (pure; same input -> same folds).

    Args:
        names: unique image names (any order; they are sorted in natural order first).
        folds: number of folds, >= 2 and at most the number of groups (images).
        shuffle: shuffle the groups (images) with ``seed`` before cutting blocks.
        group_by: regular expression naming each image's group (see :func:`group_names`);
            a group's images always share a fold.

    Returns:
        ``folds`` :class:`Fold` objects; their test sets partition ``names``.
    """
    check_int("folds", folds, minimum=2)
    check_int("seed", seed, minimum=0)
    ordered = sorted(names, key=natural_key)
    dup = sorted({n for n in ordered if ordered.count(n) > 1})
    if dup:
        raise UsageError(f"image names repeat: {', '.join(dup[:5])}; expected unique names")
    groups = group_names(ordered, group_by)
    order = list(dict.fromkeys(groups[n] for n in ordered))
    what = "groups (--group-by)" if group_by else "images"
    if len(order) < folds:
        raise UsageError(
            f"folds={folds} but there are only {len(order)} {what}; expected at most "
            f"{len(order)} folds"
        )
    if shuffle:
        order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    members = {g: [n for n in ordered if groups[n] == g] for g in order}
    cuts = balanced_cuts([len(members[g]) for g in order], folds)
    blocks = [
        sorted((n for g in order[a:b] for n in members[g]), key=natural_key)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    return [
        Fold(i + 1, tuple(test), tuple(n for n in ordered if n not in set(test)))
        for i, test in enumerate(blocks)
    ]


def splits_document(
    folds: Sequence[Fold],
    *,
    shuffle: bool,
    seed: int,
    group_by: str | None,
) -> dict[str, Any]:
    """The JSON-ready content of ``splits.json``."""
    names = sorted((n for f in folds for n in f.test), key=natural_key)
    method = "shuffled" if shuffle else "contiguous blocks of the names in natural order"
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "n_images": len(names),
        "folds": len(folds),
        "method": method + (f" (seed {seed})" if shuffle else ""),
        "shuffle": shuffle,
        "seed": seed,
        "group_by": group_by,
        "fold_sizes": [len(f.test) for f in folds],
        "names": names,
        "splits": [{"fold": f.index, "test": list(f.test), "train": list(f.train)} for f in folds],
    }
    if group_by:
        doc["groups"] = group_names(names, group_by)
    return doc


def read_splits(path: str | Path) -> list[Fold]:
    """The folds of a ``splits.json``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [Fold(int(s["fold"]), tuple(s["test"]), tuple(s["train"])) for s in doc["splits"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a valid splits file ({exc})", path) from None
