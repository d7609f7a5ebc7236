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

from octvessel.cv.aggregate import (
    SUMMARY_ROWS,
    aggregate_folds,
    arm_csv,
    comparison_csv,
    comparison_rows,
    format_arm_table,
    format_comparison,
)
from octvessel.cv.config import Arm, CVConfig, make_arms, parse_names, recipes_for
from octvessel.cv.results import CVResult, format_result
from octvessel.cv.runner import (
    COMPARISON_CSV,
    COMPARISON_JSON,
    CV_CONFIG_NAME,
    CV_METRICS_CSV,
    CV_METRICS_JSON,
    FOLD_DONE_NAME,
    run_cv,
)
from octvessel.cv.splits import (
    SPLITS_NAME,
    Fold,
    balanced_cuts,
    compile_group_by,
    group_names,
    make_folds,
    read_splits,
    splits_document,
)

__all__ = [
    "COMPARISON_CSV",
    "COMPARISON_JSON",
    "CV_CONFIG_NAME",
    "CV_METRICS_CSV",
    "CV_METRICS_JSON",
    "FOLD_DONE_NAME",
    "SPLITS_NAME",
    "SUMMARY_ROWS",
    "Arm",
    "CVConfig",
    "CVResult",
    "Fold",
    "aggregate_folds",
    "arm_csv",
    "balanced_cuts",
    "comparison_csv",
    "comparison_rows",
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
