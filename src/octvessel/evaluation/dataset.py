"""Dataset-level evaluation: one protocol for every model (see :mod:`octvessel.metrics`).

:func:`evaluate_dataset` scores either a folder of probability maps (``predictions=``,
e.g. what ``octvessel predict`` wrote, found by image name) or a model (``model=``, run on
every image) against a labelled dataset:

- pixels inside the FOV masks of all images, pooled (the headline), and per image
  (mean +- std): AUC-ROC, AUC-PR (average precision), and at the threshold accuracy,
  sensitivity, specificity, precision, F1 (= Dice), IoU and MCC (:mod:`octvessel.metrics`);
- the F1-optimal threshold of the pooled pixels, reported next to the headline but never
  used for it;
- scored at the label's native grid: a prediction of another size but the same aspect
  ratio (within :data:`~octvessel.evaluation.accumulator.ASPECT_TOLERANCE`) is resampled
  (bilinear) to the label's grid and the result says so; another aspect ratio is refused;
  labels are never resampled;
- ``metrics.json`` records the dataset and predictions folders as absolute paths (and as
  given: ``dataset_given``, ``predictions_given``), so ``report`` finds them from anywhere;
- with ``save_predictions`` an interrupted run resumes (:mod:`.saved`).

Outputs in ``out_dir``: ``metrics.json``, ``metrics.csv`` (per image, pooled, mean, std),
``roc.png`` and ``pr.png``. Images whose pixels hold one class only (no vessel inside the
FOV) have undefined AUCs: ``null`` in JSON, empty in CSV, ``n/a`` in the table.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from octvessel import atomic, layout
from octvessel.data import read_image
from octvessel.data.datasets import index_dataset
from octvessel.data.layouts import SampleRef
from octvessel.errors import InputError, UsageError
from octvessel.evaluation.accumulator import PixelAccumulator
from octvessel.evaluation.matching import (
    PREDICTION_PATTERNS,
    _maker_of,
    _manifest_of,
    check_recorded,
    find_prediction,
    prediction_names,
)
from octvessel.evaluation.saved import SavedPredictions
from octvessel.metrics import (
    METRICS,
    curves,
    format_table,
    json_safe,
)

OUTPUT_FILES = layout.EVALUATION_FILES

JACCARD_NOTE = (
    "The IterNet / retina-unet / BCDU-Net reference scripts print a 'Jaccard similarity "
    "score' (scikit-learn's jaccard_similarity_score on flattened binary vectors) that is "
    "in fact pixel accuracy; octvessel reports accuracy as 'accuracy' and the real Jaccard "
    "index as 'iou' = TP / (TP + FP + FN)."
)


def read_probability(path: str | Path) -> np.ndarray:
    """A probability map file as float32 H x W in [0, 1] (8/16-bit PNG, float TIFF ...)."""
    img = read_image(path)
    if img.shape[2] > 1:
        if not all(np.array_equal(img[..., 0], img[..., c]) for c in range(1, img.shape[2])):
            raise InputError(
                f"expected a single-channel probability map, found {img.shape[2]} different channels",
                path,
            )
    return img[..., 0]


def choose_split(dataset: str | Path, split: str | None, format: str = "auto") -> str | None:
    """``split`` as given; by default ``test`` when the dataset has one, else all images."""
    if split is not None:
        return split
    refs = index_dataset(dataset, format)
    return "test" if any(r.split == "test" for r in refs) else None


def _iter_probabilities(
    refs: list[SampleRef],
    predictions: Path | None,
    predictor: Any,
    saved: SavedPredictions | None,
) -> Iterator[tuple[Any, np.ndarray, Path | None]]:
    """(sample, probability map, prediction file or None) per image, one at a time."""
    for ref in refs:
        sample = ref.load()
        if predictions is not None:
            names = prediction_names(ref)
            path = find_prediction(predictions, names)
            if path is None:
                tried = ", ".join(p.format(names[0]) for p in PREDICTION_PATTERNS[:3])
                others = " or ".join(repr(n) for n in names[1:])
                raise InputError(
                    f"no prediction for image {ref.name} ({ref.image_path.name}); expected {tried}"
                    + (f" (or the same with {others})" if others else ""),
                    predictions,
                )
            yield sample, read_probability(path), path
        else:
            prob = saved.saved(sample.name) if saved is not None else None
            if prob is None:
                prob = predictor.predict_scaled(
                    sample.image,
                    sample.name,
                    path=sample.path,
                    data_spacing=sample.spacing,
                    fov=sample.fov,
                )
                if saved is not None:
                    saved.write(sample.name, sample.image, prob)
            yield sample, prob, None


def evaluate_dataset(
    dataset: str | Path,
    out_dir: str | Path | None = None,
    *,
    predictions: str | Path | None = None,
    model: str | Path | None = None,
    predictor: Any = None,
    split: str | None = None,
    format: str = "auto",
    observer: int = 1,
    variant: str = "P1",
    names: Sequence[str] | None = None,
    threshold: float = 0.5,
    allow_resample: bool = True,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> dict[str, Any]:
    """Score predictions (a folder) or a model against a labelled dataset.

    Args:
        dataset: the dataset folder (any supported layout).
        out_dir: where ``metrics.json``, ``metrics.csv``, ``roc.png`` and ``pr.png`` go;
            None writes nothing.
        predictions: a folder of probability maps named by image (``NAME_prob.tif``,
            ``NAME_prob.png``, ``NAME.png`` ...; NAME is the dataset's name of the image
            or its file stem). Give this, ``model`` or ``predictor``.
        model: MODEL (shipped name, run folder, ``.safetensors``) run with default settings.
        predictor: a ready :class:`octvessel.inference.predictor.Predictor` (settings of your choice).
        split: the split to score; default ``test`` when the dataset has one, else all.
        format, observer, variant: passed to :func:`octvessel.data.index_dataset`.
        names: score only these images (e.g. one cross-validation fold's test images),
            taken from every split unless ``split`` is given; each must exist.
        threshold: the probability at or above which a pixel is vessel (headline metrics).
        allow_resample: resample predictions whose size differs from the label's (and
            say so); False makes that an error.
        save_predictions: with a model, also write its outputs to ``out_dir/predictions``;
            a rerun after an interruption keeps the outputs saved (same model and settings)
            and predicts the rest.
        overwrite: replace existing output files (and predict every image again).
        progress: show a progress bar.
        figures: write ``roc.png`` and ``pr.png``.

    Returns:
        :func:`octvessel.metrics.evaluate`'s dict plus ``f1_optimal``, ``dataset``,
        ``split``, ``source``, ``resampled`` (names of resampled predictions), ``notes``.

    Raises:
        InputError: unreadable files, a missing prediction, an empty FOV mask, sizes that
            differ when ``allow_resample`` is False, existing outputs without ``overwrite``.
    """
    if sum(x is not None for x in (predictions, model, predictor)) != 1:
        raise UsageError("give exactly one of predictions (a folder), model or predictor")
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold={threshold!r}: expected a number in [0, 1]")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and not overwrite:
        # metrics.json is written last: a folder without it holds an unfinished evaluation,
        # whose other files (metrics.csv, figures, saved predictions) a rerun completes
        atomic.check_writable(out / layout.METRICS_JSON, overwrite=False)
    pred_dir = Path(predictions) if predictions is not None else None
    if pred_dir is not None and not pred_dir.is_dir():
        raise InputError("predictions folder not found", pred_dir)
    if model is not None:
        from octvessel.inference.predictor import Predictor

        predictor = Predictor.from_pretrained(model)
    if names is None:
        split = choose_split(dataset, split, format)
    refs = index_dataset(
        dataset, format, split, observer=observer, variant=variant, require_labels=True
    )
    if names is not None:
        refs = _select_names(refs, names, dataset)
    maker = check_recorded(pred_dir, refs, variant) if pred_dir is not None else None
    saved = (
        SavedPredictions(out / layout.PREDICTIONS_DIR, predictor, threshold, overwrite)
        if (save_predictions and out is not None and predictor is not None)
        else None
    )

    acc = PixelAccumulator(threshold, allow_resample=allow_resample)
    t0 = time.perf_counter()
    stream = _iter_probabilities(refs, pred_dir, predictor, saved)
    for sample, prob, path in tqdm(
        stream,
        total=len(refs),
        desc="evaluate",
        unit="image",
        disable=not progress,
        file=sys.stderr,
    ):
        if not sample.fov.any():
            raise InputError(
                "the FOV mask is empty: no pixels to score", sample.fov_path or sample.path
            )
        acc.update(
            prob,
            sample.label,
            sample.fov,
            sample.name,
            where=path or sample.path,
            label_where=sample.label_path,
        )
    seconds = time.perf_counter() - t0

    result = acc.aggregate().to_dict()
    pooled_curves = acc.curves()
    result["f1_optimal"] = pooled_curves.f1_optimal() if pooled_curves is not None else None
    resampled = acc.resampled
    source = (
        {
            "predictions": str(pred_dir.resolve()),
            "predictions_given": str(predictions),
            **{k: _maker_of(v) for k, v in _manifest_of(pred_dir).items()},
        }
        if pred_dir is not None
        else {"model": getattr(predictor, "model_ref", None) or "in-memory model"}
    )
    if maker is not None:  # what made the maps scored (the folder may hold others too)
        source["made_by"] = maker
    if predictor is not None:
        source["inference"] = predictor.config.to_dict()
        source["scale"] = predictor.scale_record()
        ref = source.get("model")
        if isinstance(ref, str) and Path(ref).exists():
            source["model_path"] = str(Path(ref).resolve())
    if saved is not None:
        source["saved_predictions"] = {
            "folder": str(saved.folder.resolve()),
            "kept_from_an_earlier_run": list(saved.kept),
        }
    notes = [
        "pooled: all FOV pixels of all images; mean/std: over images (undefined AUCs left out)",
        "f1_optimal: chosen on these same pixels; reported for reference, not the headline",
        JACCARD_NOTE,
    ]
    if resampled:
        notes.append(
            f"{len(resampled)} prediction(s) had another size than their label (same aspect "
            "ratio) and were resampled (bilinear) to the label's grid; labels are never resampled"
        )
    result = {
        "dataset": str(Path(dataset).resolve()),
        "dataset_given": str(dataset),
        "split": split,
        "observer": observer,
        "variant": variant,
        "source": source,
        **result,
        "resampled": resampled,
        "seconds": seconds,
        "notes": notes,
    }
    if out is not None:
        _write_outputs(out, result, acc, pooled_curves, figures, overwrite)
    return result


def _select_names(
    refs: list[SampleRef], names: Sequence[str], dataset: str | Path
) -> list[SampleRef]:
    """The refs named in ``names`` (dataset order); every name must exist."""
    wanted = set(names)
    missing = sorted(wanted - {r.name for r in refs})
    if missing:
        raise InputError(f"no labelled image named {', '.join(missing[:5])} in this split", dataset)
    if not wanted:
        raise UsageError("names=[]: expected at least one image name")
    return [r for r in refs if r.name in wanted]


def _write_outputs(
    out: Path,
    result: dict[str, Any],
    acc: PixelAccumulator,
    pooled_curves: Any,
    figures: bool,
    overwrite: bool,
) -> None:
    atomic.write_text(out / layout.METRICS_CSV, metrics_csv(result))
    if figures and pooled_curves is not None:
        _write_figures(out, result, acc, pooled_curves)
    # last: its presence means the evaluation finished
    atomic.write_json(out / layout.METRICS_JSON, json_safe(result), overwrite=overwrite)


def _write_figures(
    out: Path, result: dict[str, Any], acc: PixelAccumulator, pooled_curves: Any
) -> None:
    from octvessel.visualize import pr_figure, roc_figure, save_figure

    per_image = [curves(p, lab) for p, lab in zip(acc.probs, acc.labels, strict=True)]
    per_image = per_image if len(per_image) <= 50 else None
    pooled_m, thr = result["pooled"], result["threshold"]
    fig = roc_figure(
        pooled_curves,
        pooled_m["auc_roc"],
        operating_point=(1 - pooled_m["specificity"], pooled_m["sensitivity"]),
        threshold=thr,
        per_image=per_image,
    )
    save_figure(fig, out / layout.ROC_FIGURE)
    fig = pr_figure(
        pooled_curves,
        pooled_m["auc_pr"],
        operating_point=(pooled_m["sensitivity"], pooled_m["precision"]),
        threshold=thr,
        f1_optimal=result["f1_optimal"],
        per_image=per_image,
    )
    save_figure(fig, out / layout.PR_FIGURE)


def metrics_csv(result: dict[str, Any]) -> str:
    """CSV text: one row per image (with its confusion counts), then pooled, mean and std."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    counts = ("tp", "fp", "fn", "tn")
    writer.writerow(["name", *METRICS, *counts])

    def cell(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.6g}"

    for row in result["per_image"]:
        writer.writerow(
            [row["name"], *(cell(row[m]) for m in METRICS), *(row.get(k, "") for k in counts)]
        )
    c = result["confusion"]
    writer.writerow(
        ["POOLED", *(cell(result["pooled"][m]) for m in METRICS), *(c[k] for k in counts)]
    )
    writer.writerow(["MEAN", *(cell(result["mean"][m]) for m in METRICS), "", "", "", ""])
    writer.writerow(["STD", *(cell(result["std"][m]) for m in METRICS), "", "", "", ""])
    return buf.getvalue()


def format_report(result: dict[str, Any]) -> str:
    """The terminal report: the metric table, the F1-optimal threshold and the notes."""
    lines = [
        f"{result['dataset']} split={result['split'] or 'all'}: {result['n_images']} images "
        f"({_source_text(result['source'])})",
        format_table(result),
    ]
    best = result.get("f1_optimal")
    if best is not None:
        lines.append(
            f"F1-optimal threshold (reference only, chosen on these pixels): "
            f"{best['threshold']:.4f} -> F1 {best['f1']:.4f}"
        )
    if result.get("resampled"):
        shown = ", ".join(
            f"{r['name']} {r['from'][1]}x{r['from'][0]} -> {r['to'][1]}x{r['to'][0]}"
            for r in result["resampled"][:5]
        )
        more = ", ..." if len(result["resampled"]) > 5 else ""
        lines.append(
            f"note: {len(result['resampled'])} prediction(s) of another size (same aspect ratio) "
            f"resampled to the label grid (WxH): {shown}{more}"
        )
    kept = (result["source"].get("saved_predictions") or {}).get("kept_from_an_earlier_run")
    if kept:
        lines.append(
            f"note: kept the saved predictions of {len(kept)} image(s) from an earlier run "
            "(--overwrite predicts them again)"
        )
    lines.append("note: 'Jaccard' in the reference scripts is accuracy; 'iou' here is the real one")
    return "\n".join(lines)


def _source_text(source: dict[str, Any]) -> str:
    if "predictions" in source:
        return f"predictions {source['predictions']}"
    return f"model {source.get('model')}"


__all__ = [
    "JACCARD_NOTE",
    "OUTPUT_FILES",
    "PREDICTION_PATTERNS",
    "check_recorded",
    "choose_split",
    "evaluate_dataset",
    "find_prediction",
    "format_report",
    "metrics_csv",
    "prediction_names",
    "read_probability",
]
