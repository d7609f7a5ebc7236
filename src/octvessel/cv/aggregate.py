"""Combining folds (pure): pooled pixels of all folds' test images, fold and image mean +- std,
and the CSV / terminal tables of one arm or of several side by side."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from octvessel.metrics import METRICS, fmt_metric, mean_std

#: rows of the per-arm CSV besides one per fold
SUMMARY_ROWS = ("pooled", "fold_mean", "fold_std", "image_mean", "image_std")


def _mean_std(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-metric mean and population std over ``rows`` (NaN/None left out; a std of fewer
    than two values is NaN): :func:`octvessel.metrics.mean_std`."""
    return mean_std(rows)


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


def fmt_value(v: Any, width: int = 6) -> str:
    return fmt_metric(v, width)


def format_arm_table(agg: Mapping[str, Any]) -> str:
    """Terminal table of one arm: pooled, fold mean +- std, image mean +- std, each fold."""
    folds = agg["folds"]
    head = f"{'metric':<12} {'pooled':>7} {'fold mean±std':>16} {'image mean±std':>16}"
    head += "".join(f" {'fold ' + str(f['fold']):>7}" for f in folds)
    lines = [head]
    for m in METRICS:
        line = f"{m:<12} {fmt_value(agg['pooled'][m], 7)} "
        line += f"{fmt_value(agg['fold_mean'][m], 7)}±{fmt_value(agg['fold_std'][m], 0):<8} "
        line += f"{fmt_value(agg['image_mean'][m], 7)}±{fmt_value(agg['image_std'][m], 0):<8}"
        line += "".join(f" {fmt_value(f['pooled'][m], 7)}" for f in folds)
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
                f"{fmt_value(g['pooled'][m])} ({fmt_value(g['fold_mean'][m], 0)}±{fmt_value(g['fold_std'][m], 0)})"
            )
        lines.append(f"{m:<12}" + "".join(c.rjust(width) for c in cells))
    lines.append("(pooled FOV pixels of all folds' test images; in brackets mean ± std over folds)")
    return "\n".join(lines)
