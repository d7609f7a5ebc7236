"""How numbers are computed: one pixel accumulator, typed results, dataset evaluation.

:class:`PixelAccumulator` applies the protocol (label grid, clip, FOV pixels, confusion
counted once) for ``evaluate``, ``cv`` and training validation alike.
"""

from octvessel.evaluation.accumulator import PixelAccumulator
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
from octvessel.evaluation.results import EvaluationResult
from octvessel.evaluation.variants import evaluate_variants, format_variants

__all__ = [
    "EvaluationResult",
    "JACCARD_NOTE",
    "OUTPUT_FILES",
    "PREDICTION_PATTERNS",
    "PixelAccumulator",
    "choose_split",
    "evaluate_dataset",
    "evaluate_variants",
    "find_prediction",
    "format_report",
    "format_variants",
    "metrics_csv",
    "read_probability",
]
