"""How numbers are computed for a dataset: pooled FOV pixels, per-image metrics, outputs."""

from octvessel.evaluation.dataset import (
    JACCARD_NOTE,
    OUTPUT_FILES,
    PREDICTION_PATTERNS,
    choose_split,
    evaluate_dataset,
    find_prediction,
    format_report,
    metrics_csv,
    read_probability,
)

__all__ = [
    "JACCARD_NOTE",
    "OUTPUT_FILES",
    "PREDICTION_PATTERNS",
    "choose_split",
    "evaluate_dataset",
    "find_prediction",
    "format_report",
    "metrics_csv",
    "read_probability",
]
