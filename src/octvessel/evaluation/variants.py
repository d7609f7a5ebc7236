"""Scoring every reconstruction variant of a dataset: P1, P2, P3 side by side.

A CAVRI-C dataset (``NAME_fundus_P1.bmp`` ... with one label per volume) holds several
variants of each scan. :func:`evaluate_variants` scores each one with
:func:`octvessel.evaluation.evaluate_dataset`: one variant writes its evaluation folder
as usual; several write ``OUT/<variant>/`` each (a complete evaluation folder) and
``OUT/variants.json`` (``layout.EVALUATION_VARIANTS``): the variants' pooled numbers side
by side, which ``octvessel report OUT`` shows as one table.

By default the variants are those the dataset holds, narrowed to the ones the
predictions folder's ``prediction.json`` records (when it records any).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from octvessel import atomic, layout
from octvessel.data.datasets import VARIANTS, detect_format, index_dataset
from octvessel.errors import UsageError
from octvessel.evaluation.dataset import evaluate_dataset
from octvessel.metrics import METRICS, json_safe

__all__ = ["dataset_variants", "evaluate_variants", "format_variants", "recorded_variants"]


def dataset_variants(dataset: str | Path, format: str = "auto") -> list[str]:
    """The variants (of P1, P2, P3) a CAVRI-C dataset holds; [] for other layouts."""
    fmt = detect_format(dataset) if format == "auto" else format
    if fmt != "cavri":
        return []
    found = []
    for v in VARIANTS:
        try:
            if index_dataset(dataset, fmt, variant=v):
                found.append(v)
        except UsageError:  # "no P2 images in this CAVRI-C dataset; variants present: ..."
            continue
    return found


def recorded_variants(pred_dir: str | Path) -> list[str] | None:
    """The variants ``prediction.json`` records per image, or None when it records none."""
    try:
        manifest = json.loads((Path(pred_dir) / layout.PREDICTION_MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    images = manifest.get("images") if isinstance(manifest, dict) else None
    if not isinstance(images, dict):
        return None
    found = {str(r.get("variant")).upper() for r in images.values() if isinstance(r, dict)}
    found.discard("NONE")
    return sorted(found) or None


def evaluate_variants(
    dataset: str | Path,
    out_dir: str | Path | None = None,
    *,
    variants: Sequence[str] | None = None,
    format: str = "auto",
    predictions: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Score each variant (default: every variant present); variant -> result.

    ``options`` go to :func:`evaluate_dataset` (``model``, ``predictor``, ``split`` ...).
    With one variant (or a dataset without variants) ``out_dir`` is an evaluation folder;
    with several it holds one per variant and ``variants.json``.
    """
    present = dataset_variants(dataset, format)
    if variants is None:
        chosen = present
        recorded = recorded_variants(predictions) if predictions is not None else None
        if recorded is not None and [v for v in present if v in recorded]:
            chosen = [v for v in present if v in recorded]
    else:
        chosen = [v.strip().upper() for v in variants if v.strip()]
        if not chosen:
            raise UsageError("--variant is empty; expected e.g. P1,P2,P3")
        if len(set(chosen)) != len(chosen):
            raise UsageError(f"--variant {','.join(chosen)}: a variant is named twice")
    out = Path(out_dir) if out_dir is not None else None
    common = {"format": format, "predictions": predictions, "overwrite": overwrite, **options}
    if len(chosen) <= 1:
        variant = chosen[0] if chosen else "P1"
        return {variant: evaluate_dataset(dataset, out, variant=variant, **common)}
    if out is not None:
        atomic.check_writable(out / layout.EVALUATION_VARIANTS, overwrite)
    results = {
        v: evaluate_dataset(dataset, out / v if out is not None else None, variant=v, **common)
        for v in chosen
    }
    if out is not None:
        atomic.write_json(
            out / layout.EVALUATION_VARIANTS,
            json_safe(variants_summary(dataset, results)),
            overwrite=overwrite,
        )
    return results


def variants_summary(dataset: str | Path, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``variants.json``: each variant's folder and pooled / mean numbers, side by side."""
    first = next(iter(results.values()))
    return {
        "dataset": str(Path(dataset).resolve()),
        "dataset_as_given": str(dataset),
        "split": first.get("split"),
        "source": first.get("source"),
        "threshold": first.get("threshold"),
        "variants": {
            v: {
                "folder": v,
                "n_images": r.get("n_images"),
                "pooled": r.get("pooled"),
                "mean": r.get("mean"),
            }
            for v, r in results.items()
        },
    }


def format_variants(results: dict[str, dict[str, Any]]) -> str:
    """The variants' pooled numbers side by side (one row per variant)."""
    head = f"{'variant':<8} {'images':>6} " + " ".join(f"{m:>11}" for m in METRICS)
    rows = [head]
    for v, r in results.items():
        cells = []
        for m in METRICS:
            x = (r.get("pooled") or {}).get(m)
            cells.append(f"{x:>11.4f}" if isinstance(x, (int, float)) else f"{'n/a':>11}")
        rows.append(f"{v:<8} {r.get('n_images', 0):>6} " + " ".join(cells))
    return "\n".join(rows)
