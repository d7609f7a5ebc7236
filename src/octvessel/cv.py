"""k-fold cross-validation as in the OCT paper, done properly (``octvessel cv``).

The paper's numbers come from 6-fold cross-validation over 24 scans (4 test images per
fold); the authors' scripts cut the sorted names into contiguous blocks, silently drop a
remainder and never combine the folds. Here:

- :func:`make_folds` (pure): contiguous blocks of the names in natural order by default
  (a remainder is spread over the first folds, never dropped), optionally shuffled with a
  seed, and with ``group_by`` a regular expression whose match (first group, if any) names
  the subject or eye an image belongs to, so one group never straddles two folds;
- :func:`run_cv`: for every arm (model x CAVRI-C variant) and fold, trains with the common
  trainer (:func:`octvessel.training.train`) on the other folds' images and scores the
  fold's test images with the common protocol (:func:`octvessel.evaluation.evaluate_dataset`);
  a finished fold is skipped on rerun, an interrupted one resumes where it stopped;
- :func:`aggregate_folds` (pure): pooled FOV pixels of all folds' test images (the
  headline), the mean and (population) std of the per-fold pooled metrics, and the mean
  and std over all test images.

Output folder::

    splits.json                 the folds (written first, atomically)
    cv.json                     the cross-validation settings, recipes, command, versions
    cv_metrics.json / .csv      every arm: per fold, pooled, fold mean/std, image mean/std
    comparison.json / .csv      one row per arm (the paper-style side-by-side table)
    <arm>/fold_<i>/run/         the fold's training run (weights, log.csv, ...)
    <arm>/fold_<i>/eval/        metrics.json/.csv, predictions/ (NAME_prob.tif ...)
    <arm>/fold_<i>/fold.json    written last: the fold is finished
    <arm>/cv_metrics.json, roc.png, pr.png   the arm's aggregate and curves per fold

An arm is named after its model (``iternet``) and, for CAVRI-C datasets, its
reconstruction variant (``iternet-P2``).
"""

from __future__ import annotations

import csv
import io
import json
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__, atomic
from octvessel.config import JsonConfig
from octvessel.data.datasets import VARIANTS, detect_format, index_dataset
from octvessel.data.layouts import FORMATS, natural_key
from octvessel.errors import InputError, UsageError
from octvessel.metrics import METRICS, curves, evaluate, json_safe

SPLITS_NAME = "splits.json"
CV_CONFIG_NAME = "cv.json"
CV_METRICS_JSON = "cv_metrics.json"
CV_METRICS_CSV = "cv_metrics.csv"
COMPARISON_JSON = "comparison.json"
COMPARISON_CSV = "comparison.csv"
FOLD_DONE_NAME = "fold.json"
SCHEMA = 1
#: rows of the per-arm CSV besides one per fold
SUMMARY_ROWS = ("pooled", "fold_mean", "fold_std", "image_mean", "image_std")


# ----------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Fold:
    """One fold: its 1-based ``index``, test names and training names (natural order)."""

    index: int
    test: tuple[str, ...]
    train: tuple[str, ...]


def compile_group_by(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled; a bad expression is a :class:`UsageError` naming it."""
    if not isinstance(pattern, str) or not pattern:
        raise UsageError(f"group_by={pattern!r}: expected a non-empty regular expression")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"--group-by {pattern!r} is not a valid regular expression ({exc})"
        ) from None


def group_names(names: Sequence[str], pattern: str) -> dict[str, str]:
    """name -> group: the first capture group of ``pattern``'s search in the name (the whole
    match when the pattern has no group). Every name must match.

    >>> group_names(["s01_OD", "s01_OS", "s02_OD"], r"^(s\\d+)_")
    {'s01_OD': 's01', 's01_OS': 's01', 's02_OD': 's02'}
    """
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
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise UsageError(f"folds={folds!r}: expected an integer >= 2")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed={seed!r}: expected an integer >= 0")
    ordered = sorted(names, key=natural_key)
    dup = sorted({n for n in ordered if ordered.count(n) > 1})
    if dup:
        raise UsageError(f"image names repeat: {', '.join(dup[:5])}; expected unique names")
    groups = group_names(ordered, group_by) if group_by else {n: n for n in ordered}
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


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CVConfig(JsonConfig):
    """What a cross-validation does besides each model's training recipe.

    Attributes:
        folds: number of folds (the paper: 6 over 24 scans).
        shuffle, split_seed: shuffle the images (groups) with this seed before cutting.
        group_by: regular expression naming an image's subject or eye (see :func:`group_names`).
        models: registered network names, one arm each (times ``variants``).
        variants: CAVRI-C reconstruction variants (P1, P2, P3); other layouts take P1 only.
        format, observer: how to read the dataset (:func:`octvessel.data.index_dataset`).
        threshold: probability at or above which a pixel is vessel (headline metrics).
    """

    folds: int = 6
    shuffle: bool = False
    split_seed: int = 0
    group_by: str | None = None
    models: tuple[str, ...] = ("iternet",)
    variants: tuple[str, ...] = ("P1",)
    format: str = "auto"
    observer: int = 1
    threshold: float = 0.5

    def __post_init__(self) -> None:
        from octvessel.models import list_models

        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "variants", tuple(str(v).upper() for v in self.variants))
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise UsageError(f"folds={self.folds!r}: expected an integer >= 2")
        if (
            isinstance(self.split_seed, bool)
            or not isinstance(self.split_seed, int)
            or self.split_seed < 0
        ):
            raise UsageError(f"split_seed={self.split_seed!r}: expected an integer >= 0")
        if self.group_by is not None:
            compile_group_by(self.group_by)
        if not self.models:
            raise UsageError("models: expected at least one model name")
        for m in self.models:
            if m not in list_models():
                raise UsageError(f"unknown model {m!r}; available: {', '.join(list_models())}")
        for name, values in (("models", self.models), ("variants", self.variants)):
            if len(set(values)) != len(values):
                raise UsageError(f"{name}={','.join(values)}: names repeat")
        if not self.variants:
            raise UsageError("variants: expected at least one of P1, P2, P3")
        for v in self.variants:
            if v not in VARIANTS:
                raise UsageError(
                    f"variant {v!r} is not valid; expected one of: {', '.join(VARIANTS)}"
                )
        if self.format not in ("auto", *FORMATS):
            raise UsageError(
                f"format={self.format!r} is not valid; expected one of: auto, {', '.join(FORMATS)}"
            )
        if isinstance(self.observer, bool) or self.observer not in (1, 2):
            raise UsageError(f"observer={self.observer!r} is not valid; expected 1 or 2")
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"threshold={self.threshold!r}: expected a number in [0, 1]")


def parse_names(text: str | None, what: str = "model") -> tuple[str, ...] | None:
    """``"a,b"`` -> ("a", "b"); ``"all"`` models -> every registered network; None stays None."""
    if text is None:
        return None
    if what == "model" and text.strip().lower() == "all":
        from octvessel.models import list_models

        return tuple(list_models())
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise UsageError(f"--{what} {text!r}: expected one or more names, comma-separated")
    return values


def recipes_for(
    models: Sequence[str] | None,
    preset: str | None = None,
    toml_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    color: str | None = None,
) -> dict[str, Any]:
    """model name -> validated :class:`~octvessel.training.TrainConfig`, one per arm model.

    Settings flow as in ``octvessel train``: preset (default ``iternet-reference`` unless a
    TOML file is given) -> TOML -> ``overrides`` (None ignored) -> ``model`` per arm.
    ``models=None`` takes the recipe's own model. ``model_config`` keys (base_channels,
    iterations ...) go to every model whose config has them; a key no model has is an error.
    """
    import dataclasses

    from octvessel.models import get_spec
    from octvessel.training import resolve_config

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    base = preset or (None if toml_path else "iternet-reference")
    if models is None:
        models = (resolve_config(base, toml_path, overrides).model,)
    model_config = dict(model_config or {})
    used: set[str] = set()
    out = {}
    for m in models:
        cfg = resolve_config(base, toml_path, {**overrides, "model": m})
        fields = {f.name for f in dataclasses.fields(get_spec(m).model_class.config_class)}
        mine = {k: v for k, v in model_config.items() if k in fields}
        used |= set(mine)
        if mine or color:
            cfg = replace(
                cfg,
                model_config={**cfg.model_config, **mine},
                preprocessing={**cfg.preprocessing, **({"color": color} if color else {})},
            )
        if cfg.train_split or cfg.val_split:
            raise UsageError(
                "train_split/val_split do not apply to cross-validation (each fold trains on "
                "the other folds' images); use val_fraction to hold out validation images"
            )
        out[m] = cfg
    unused = sorted(set(model_config) - used)
    if unused:
        raise UsageError(
            f"model setting(s) {', '.join(unused)} apply to none of the models {', '.join(models)}"
        )
    return out


@dataclass(frozen=True)
class Arm:
    """One model on one dataset variant; ``name`` is its folder."""

    name: str
    model: str
    variant: str


def make_arms(config: CVConfig, fmt: str) -> list[Arm]:
    """The arms of a cross-validation: model x variant (variants only for CAVRI-C)."""
    if fmt != "cavri" and config.variants != ("P1",):
        raise UsageError(
            f"variants {','.join(config.variants)} apply to CAVRI-C datasets only; this "
            f"dataset's format is {fmt}"
        )
    return [
        Arm(f"{m}-{v}" if fmt == "cavri" else m, m, v)
        for m in config.models
        for v in config.variants
    ]


# ----------------------------------------------------------------------------- aggregation


def _mean_std(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-metric mean and population std over ``rows`` (NaN/None left out)."""
    table = np.array(
        [[np.nan if r.get(m) is None else r[m] for m in METRICS] for r in rows], np.float64
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(table, axis=0).tolist()
        std = np.nanstd(table, axis=0).tolist()
    return dict(zip(METRICS, mean, strict=True)), dict(zip(METRICS, std, strict=True))


def aggregate_folds(
    fold_results: Sequence[Mapping[str, Any]], pooled: Mapping[str, Any]
) -> dict[str, Any]:
    """Combine the folds of one arm (pure).

    Args:
        fold_results: per fold (in order), the evaluation dict of its test images
            (:func:`octvessel.evaluation.evaluate_dataset` or :func:`octvessel.metrics.evaluate`:
            ``pooled``, ``confusion``, ``per_image``, ``n_images``).
        pooled: :func:`octvessel.metrics.evaluate` of all folds' test images together
            (their FOV pixels), in fold order.

    Returns:
        ``{"n_folds", "n_images", "n_pixels", "threshold", "pooled", "confusion",
        "fold_mean", "fold_std", "image_mean", "image_std", "folds": [...],
        "per_image": [... with "fold"], "auc_undefined"}``.

    Raises:
        ValueError: the pooled evaluation does not hold the folds' images, or its
            confusion counts are not the folds' sums (a bug, not a user error).
    """
    if not fold_results:
        raise ValueError("no folds to aggregate")
    names = [r["name"] for f in fold_results for r in f["per_image"]]
    if [r["name"] for r in pooled["per_image"]] != names:
        raise ValueError("the pooled evaluation does not hold the folds' test images in order")
    total = {k: sum(int(f["confusion"][k]) for f in fold_results) for k in ("tp", "fp", "fn", "tn")}
    if total != {k: int(pooled["confusion"][k]) for k in total}:
        raise ValueError(f"pooled confusion {pooled['confusion']} != sum over folds {total}")
    fold_mean, fold_std = _mean_std([f["pooled"] for f in fold_results])
    fold_of = {r["name"]: i + 1 for i, f in enumerate(fold_results) for r in f["per_image"]}
    per_image = [{"fold": fold_of[r["name"]], **r} for r in pooled["per_image"]]
    for row, src in zip(per_image, (r for f in fold_results for r in f["per_image"]), strict=True):
        row.update({k: src[k] for k in ("tp", "fp", "fn", "tn") if k in src})
    return {
        "n_folds": len(fold_results),
        "n_images": int(pooled["n_images"]),
        "n_pixels": int(pooled["n_pixels"]),
        "threshold": pooled["threshold"],
        "pooled": dict(pooled["pooled"]),
        "confusion": total,
        "fold_mean": fold_mean,
        "fold_std": fold_std,
        "image_mean": dict(pooled["mean"]),
        "image_std": dict(pooled["std"]),
        "folds": [
            {
                "fold": i + 1,
                "n_images": int(f["n_images"]),
                "names": [r["name"] for r in f["per_image"]],
                "pooled": dict(f["pooled"]),
                "confusion": {k: int(f["confusion"][k]) for k in ("tp", "fp", "fn", "tn")},
            }
            for i, f in enumerate(fold_results)
        ],
        "per_image": per_image,
        "auc_undefined": list(pooled.get("auc_undefined", [])),
    }


def _cell(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.6g}"


def arm_csv(
    name: str, model: str, variant: str, agg: Mapping[str, Any], header: bool = True
) -> str:
    """CSV rows of one arm: one per fold, then pooled, fold_mean/std, image_mean/std."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    counts = ("tp", "fp", "fn", "tn")
    if header:
        w.writerow(["arm", "model", "variant", "row", "n_images", *METRICS, *counts])
    for f in agg["folds"]:
        w.writerow(
            [
                name,
                model,
                variant,
                f"fold_{f['fold']}",
                f["n_images"],
                *(_cell(f["pooled"][m]) for m in METRICS),
                *(f["confusion"][k] for k in counts),
            ]
        )
    c = agg["confusion"]
    for row in SUMMARY_ROWS:
        values = agg[row]
        tail = [c[k] for k in counts] if row == "pooled" else [""] * 4
        w.writerow(
            [
                name,
                model,
                variant,
                row,
                agg["n_images"],
                *(_cell(values[m]) for m in METRICS),
                *tail,
            ]
        )
    return buf.getvalue()


def comparison_rows(arms: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per arm: pooled value, fold mean and fold std of every metric."""
    rows = []
    for a in arms:
        agg = a["metrics"]
        row = {"arm": a["name"], "model": a["model"], "variant": a["variant"]}
        row.update(n_folds=agg["n_folds"], n_images=agg["n_images"])
        for m in METRICS:
            row[m] = agg["pooled"][m]
            row[f"{m}_fold_mean"] = agg["fold_mean"][m]
            row[f"{m}_fold_std"] = agg["fold_std"][m]
        rows.append(row)
    return rows


def comparison_csv(arms: Sequence[Mapping[str, Any]]) -> str:
    rows = comparison_rows(arms)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (_cell(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _f(v: Any, width: int = 6) -> str:
    return f"{v:.4f}".rjust(width) if v is not None and np.isfinite(v) else "n/a".rjust(width)


def format_arm_table(agg: Mapping[str, Any]) -> str:
    """Terminal table of one arm: pooled, fold mean +- std, image mean +- std, each fold."""
    folds = agg["folds"]
    head = f"{'metric':<12} {'pooled':>7} {'fold mean±std':>16} {'image mean±std':>16}"
    head += "".join(f" {'fold ' + str(f['fold']):>7}" for f in folds)
    lines = [head]
    for m in METRICS:
        line = f"{m:<12} {_f(agg['pooled'][m], 7)} "
        line += f"{_f(agg['fold_mean'][m], 7)}±{_f(agg['fold_std'][m], 0):<8} "
        line += f"{_f(agg['image_mean'][m], 7)}±{_f(agg['image_std'][m], 0):<8}"
        line += "".join(f" {_f(f['pooled'][m], 7)}" for f in folds)
        lines.append(line)
    lines.append(
        f"({agg['n_folds']} folds, {agg['n_images']} test images, {agg['n_pixels']:,} FOV "
        f"pixels, threshold {agg['threshold']}; pooled = all folds' test pixels together)"
    )
    return "\n".join(lines)


def format_comparison(arms: Sequence[Mapping[str, Any]]) -> str:
    """Side-by-side table: a column per arm, 'pooled (fold mean±std)' per metric."""
    width = max(24, *(len(a["name"]) + 2 for a in arms))
    lines = [f"{'metric':<12}" + "".join(f"{a['name']:>{width}}" for a in arms)]
    for m in METRICS:
        cells = []
        for a in arms:
            g = a["metrics"]
            cells.append(
                f"{_f(g['pooled'][m])} ({_f(g['fold_mean'][m], 0)}±{_f(g['fold_std'][m], 0)})"
            )
        lines.append(f"{m:<12}" + "".join(c.rjust(width) for c in cells))
    lines.append("(pooled FOV pixels of all folds' test images; in brackets mean ± std over folds)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running


@dataclass
class CVResult:
    """What :func:`run_cv` did. ``arms``: name, model, variant, dir, metrics (aggregate)."""

    out_dir: Path
    folds: list[Fold]
    arms: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def versions() -> dict[str, str]:
    import torch

    return {
        "octvessel": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_splits(out: Path, folds: list[Fold], config: CVConfig, overwrite: bool) -> None:
    doc = splits_document(
        folds, shuffle=config.shuffle, seed=config.split_seed, group_by=config.group_by
    )
    path = out / SPLITS_NAME
    if path.is_file() and not overwrite:
        saved = read_splits(path)
        if [(f.test, f.train) for f in saved] != [(f.test, f.train) for f in folds]:
            raise InputError(
                "the folds saved here differ from the ones these options and this dataset "
                "give; use another output folder, the same options, or --overwrite to start over",
                path,
            )
        return
    atomic.write_json(path, doc, overwrite=True)


def _fold_finished(
    fold_dir: Path, fold: Fold, recipe: Any, train_samples: list[Any]
) -> dict[str, Any] | None:
    """The fold's record when it finished with this recipe and these data, else None."""
    from octvessel.training.data import fingerprint
    from octvessel.training.trainer import RESUME_FREE, saved_config

    path = fold_dir / FOLD_DONE_NAME
    if not path.is_file() or not (fold_dir / "eval" / "metrics.json").is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = saved_config(fold_dir / "run").to_dict()
    diff = [k for k, v in recipe.to_dict().items() if k not in RESUME_FREE and saved.get(k) != v]
    if diff:
        raise InputError(
            f"fold {fold.index} was trained with another recipe (differs in: {', '.join(diff)}); "
            "use another output folder or --overwrite",
            fold_dir,
        )
    if record.get("test") != list(fold.test) or record.get("fingerprint") != fingerprint(
        train_samples
    ):
        raise InputError(
            f"fold {fold.index} was trained on other images or files that changed since; "
            "use another output folder or --overwrite",
            fold_dir,
        )
    return record


def _fold_pixels(
    eval_dir: Path, samples: Mapping[str, Any], names: Sequence[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """FOV probabilities (float32) and labels (bool) of a fold's saved predictions."""
    from octvessel.evaluation import find_prediction, read_probability
    from octvessel.inference import resample

    probs, labels = [], []
    for name in names:
        s = samples[name]
        path = find_prediction(eval_dir / "predictions", [name])
        if path is None:
            raise InputError(f"the prediction of {name} is missing; rerun the cv", eval_dir)
        prob = read_probability(path)
        if prob.shape != s.label.shape:
            prob = resample(prob, s.label.shape)
        probs.append(np.clip(prob[s.fov], 0.0, 1.0).astype(np.float32))
        labels.append(s.label[s.fov])
    return probs, labels


def arm_curves(
    fold_pixels: Sequence[tuple[list[np.ndarray], list[np.ndarray]]],
) -> tuple[Any, list[Any]]:
    """Pooled and per-fold :class:`~octvessel.metrics.Curves` (None for one class)."""
    per_fold = [curves(np.concatenate(p), np.concatenate(lab)) for p, lab in fold_pixels]
    all_p = np.concatenate([np.concatenate(p) for p, _ in fold_pixels])
    all_l = np.concatenate([np.concatenate(lab) for _, lab in fold_pixels])
    return curves(all_p, all_l), per_fold


def write_arm_figures(arm_dir: Path, agg: Mapping[str, Any], pooled_c: Any, fold_c: list) -> None:
    """``roc.png`` and ``pr.png`` of an arm: each fold thin, all folds pooled bold."""
    from octvessel.visualize import fold_curves_figure, save_figure

    for kind, key in (("roc", "auc_roc"), ("pr", "auc_pr")):
        parts = [
            (f"fold {f['fold']}", c, f["pooled"][key])
            for f, c in zip(agg["folds"], fold_c, strict=True)
        ]
        fig = fold_curves_figure(kind, pooled_c, agg["pooled"][key], parts, title=arm_dir.name)
        save_figure(fig, arm_dir / f"{kind}.png")


def run_cv(
    dataset: str | Path,
    out_dir: str | Path,
    config: CVConfig,
    recipes: Mapping[str, Any],
    *,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    stop_after_steps: Mapping[tuple[str, int], int] | None = None,
) -> CVResult:
    """Cross-validate every arm (model x variant) of ``config`` on ``dataset``.

    Args:
        dataset: a labelled dataset folder (any layout); every labelled image takes part.
        out_dir: the cross-validation folder (layout in the module docstring).
        config: folds, split options, models, variants, threshold.
        recipes: model name -> TrainConfig (see :func:`recipes_for`).
        overwrite: redo every fold from scratch (and rewrite ``splits.json``).
        log: where progress lines go (default: print to stdout).
        stop_after_steps: ``{(arm name, fold index): steps}`` stops that fold's training as
            if interrupted (for tests).

    Returns:
        a :class:`CVResult`; ``interrupted`` is True when SIGINT/SIGTERM stopped it (the
        folder then resumes when the same command runs again).

    Raises:
        UsageError: bad options, more folds than images (groups), variants on a non-CAVRI
            dataset.
        InputError: unreadable dataset, a folder holding another cross-validation.
    """
    from octvessel.data import load_dataset
    from octvessel.training.trainer import stop_requests

    t0 = time.perf_counter()
    say = log or (lambda s: print(s, flush=True))
    missing = [m for m in config.models if m not in recipes]
    if missing:
        raise UsageError(f"no training recipe for model(s) {', '.join(missing)}")
    out = Path(out_dir)
    fmt = detect_format(dataset) if config.format == "auto" else config.format
    arms = make_arms(config, fmt)
    names_by_variant = {
        v: [
            r.name
            for r in index_dataset(
                dataset, fmt, None, observer=config.observer, variant=v, require_labels=True
            )
        ]
        for v in config.variants
    }
    names = names_by_variant[config.variants[0]]
    for v, other in names_by_variant.items():
        if sorted(other) != sorted(names):
            raise InputError(f"variant {v} has other images than {config.variants[0]}", dataset)
    folds = make_folds(
        names,
        config.folds,
        shuffle=config.shuffle,
        seed=config.split_seed,
        group_by=config.group_by,
    )
    if out.exists() and not out.is_dir():
        raise InputError("expected an output folder, found a file", out)
    _write_splits(out, folds, config, overwrite)
    atomic.write_json(
        out / CV_CONFIG_NAME,
        json_safe(
            {
                "schema": SCHEMA,
                "dataset": str(Path(dataset).resolve()),
                "format": fmt,
                "config": config.to_dict(),
                "arms": [{**a.__dict__, "recipe": recipes[a.model].to_dict()} for a in arms],
                "command": command or " ".join(sys.argv),
                "versions": versions(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        ),
    )
    sizes = ", ".join(str(len(f.test)) for f in folds)
    say(
        f"[cv] {len(names)} images, {len(folds)} folds (test images per fold: {sizes}), "
        f"{len(arms)} arm(s): {', '.join(a.name for a in arms)} -> {out}"
    )
    result = CVResult(out, folds)
    with stop_requests() as stop:
        for arm in arms:
            samples = {
                s.name: s
                for s in load_dataset(
                    dataset,
                    fmt,
                    None,
                    observer=config.observer,
                    variant=arm.variant,
                    require_labels=True,
                )
            }
            arm_dir = out / arm.name
            fold_results, fold_pixels = [], []
            for fold in folds:
                tag = f"{arm.name} fold {fold.index}/{len(folds)}"
                record = _run_fold(
                    dataset,
                    fmt,
                    arm,
                    fold,
                    arm_dir / f"fold_{fold.index}",
                    recipes[arm.model],
                    samples,
                    config,
                    overwrite=overwrite,
                    progress=progress,
                    command=command,
                    stop=stop,
                    say=say,
                    tag=tag,
                    stop_after=(stop_after_steps or {}).get((arm.name, fold.index)),
                )
                if record is None:
                    result.interrupted = True
                    say(f"[cv] interrupted in {tag}; run the same command again to continue")
                    result.seconds = time.perf_counter() - t0
                    return result
                (result.skipped if record["skipped"] else result.trained).append(tag)
                eval_dir = arm_dir / f"fold_{fold.index}" / "eval"
                fold_results.append(json.loads((eval_dir / "metrics.json").read_text()))
                fold_pixels.append(_fold_pixels(eval_dir, samples, fold.test))
            all_p = [p for ps, _ in fold_pixels for p in ps]
            all_l = [lab for _, ls in fold_pixels for lab in ls]
            pooled = evaluate(
                all_p, all_l, None, config.threshold, [n for f in folds for n in f.test]
            )
            agg = aggregate_folds(fold_results, pooled)
            pooled_c, fold_c = arm_curves(fold_pixels)
            atomic.write_json(arm_dir / CV_METRICS_JSON, json_safe(agg))
            write_arm_figures(arm_dir, agg, pooled_c, fold_c)
            result.arms.append(
                {
                    "name": arm.name,
                    "model": arm.model,
                    "variant": arm.variant,
                    "dir": str(arm_dir),
                    "metrics": agg,
                }
            )
    _write_summaries(out, dataset, fmt, config, result)
    result.seconds = time.perf_counter() - t0
    return result


def _run_fold(
    dataset: str | Path,
    fmt: str,
    arm: Arm,
    fold: Fold,
    fold_dir: Path,
    recipe: Any,
    samples: Mapping[str, Any],
    config: CVConfig,
    *,
    overwrite: bool,
    progress: bool,
    command: str | None,
    stop: dict[str, bool],
    say: Callable[[str], None],
    tag: str,
    stop_after: int | None,
) -> dict[str, Any] | None:
    """Train and score one fold; its record, or None when interrupted."""
    from octvessel.evaluation import evaluate_dataset
    from octvessel.predictor import Predictor
    from octvessel.training import train
    from octvessel.training.checkpoint import STATE_NAME
    from octvessel.training.data import fingerprint
    from octvessel.training.trainer import TRAIN_CONFIG_NAME, select_device

    train_samples = [samples[n] for n in fold.train]
    run_dir, eval_dir = fold_dir / "run", fold_dir / "eval"
    if overwrite:
        (fold_dir / FOLD_DONE_NAME).unlink(missing_ok=True)
    else:
        record = _fold_finished(fold_dir, fold, recipe, train_samples)
        if record is not None:
            say(f"[cv] {tag}: finished earlier, skipped")
            return {**record, "skipped": True}
    if stop["stop"]:
        return None
    resume = not overwrite and (run_dir / STATE_NAME).is_file()
    fresh_over = (run_dir / TRAIN_CONFIG_NAME).exists() and not resume
    say(
        f"[cv] {tag}: {'resuming' if resume else 'training'} {arm.model} on "
        f"{len(fold.train)} images, testing on {', '.join(fold.test)}"
    )
    t0 = time.perf_counter()
    res = train(
        train_samples,
        run_dir,
        recipe,
        resume=resume,
        overwrite=overwrite or fresh_over,
        progress=progress,
        stop_after_steps=stop_after,
        command=command,
    )
    if res.interrupted or stop["stop"]:
        return None
    predictor = Predictor.from_pretrained(run_dir, device=select_device(recipe.device))
    scores = evaluate_dataset(
        dataset,
        eval_dir,
        predictor=predictor,
        names=fold.test,
        format=fmt,
        observer=config.observer,
        variant=arm.variant,
        threshold=config.threshold,
        save_predictions=True,
        overwrite=True,
        progress=progress,
        figures=False,  # the arm's roc.png / pr.png show every fold
    )
    if stop["stop"]:  # a signal during evaluation: the fold is redone (scored) next time
        return None
    record = {
        "fold": fold.index,
        "arm": arm.name,
        "model": arm.model,
        "variant": arm.variant,
        "test": list(fold.test),
        "train": list(fold.train),
        "fingerprint": fingerprint(train_samples),
        "epochs": res.epochs_done,
        "best": res.best,
        "best_epoch": res.best_epoch,
        "weights": "best.safetensors",
        "seconds": time.perf_counter() - t0,
    }
    atomic.write_json(fold_dir / FOLD_DONE_NAME, json_safe(record))
    p = scores["pooled"]
    say(
        f"[cv] {tag}: AUC {_f(p['auc_roc'], 0)}, accuracy {_f(p['accuracy'], 0)}, "
        f"F1 {_f(p['f1'], 0)} ({record['seconds']:.1f} s)"
    )
    return {**record, "skipped": False}


def _write_summaries(
    out: Path, dataset: str | Path, fmt: str, config: CVConfig, result: CVResult
) -> None:
    doc = {
        "schema": SCHEMA,
        "dataset": str(dataset),
        "format": fmt,
        "folds": config.folds,
        "threshold": config.threshold,
        "notes": [
            "pooled: all FOV pixels of all folds' test images at the labels' native grid",
            "fold_mean/fold_std: mean and population std of the per-fold pooled metrics",
            "image_mean/image_std: over all test images (undefined AUCs left out)",
        ],
        "arms": [{k: v for k, v in a.items()} for a in result.arms],
    }
    atomic.write_json(out / CV_METRICS_JSON, json_safe(doc))
    text = "".join(
        arm_csv(a["name"], a["model"], a["variant"], a["metrics"], header=i == 0)
        for i, a in enumerate(result.arms)
    )
    atomic.write_text(out / CV_METRICS_CSV, text)
    atomic.write_json(out / COMPARISON_JSON, json_safe(comparison_rows(result.arms)))
    atomic.write_text(out / COMPARISON_CSV, comparison_csv(result.arms))


def format_result(result: CVResult) -> str:
    """The terminal summary: one table per arm, and the side-by-side one for several arms."""
    parts = []
    for a in result.arms:
        parts.append(f"{a['name']}:\n{format_arm_table(a['metrics'])}")
    if len(result.arms) > 1:
        parts.append("comparison:\n" + format_comparison(result.arms))
    return "\n\n".join(parts)


__all__ = [
    "Arm",
    "CVConfig",
    "CVResult",
    "Fold",
    "aggregate_folds",
    "arm_csv",
    "balanced_cuts",
    "comparison_csv",
    "compile_group_by",
    "format_arm_table",
    "format_comparison",
    "format_result",
    "group_names",
    "make_arms",
    "make_folds",
    "parse_names",
    "read_splits",
    "recipes_for",
    "run_cv",
    "splits_document",
]
