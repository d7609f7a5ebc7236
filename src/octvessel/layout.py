"""The file names of every output folder, in one place (writers and readers both use these).

A leaf module (it imports nothing from octvessel), so the report can never drift from
what wrote a folder::

    RUN_DIR/                 octvessel train
      train_config.json      the resolved recipe (TRAIN_CONFIG)
      config.json            the weights bundle's config (BUNDLE_CONFIG)
      README.md              the model card (MODEL_CARD)
      best.safetensors, last.safetensors, training_state.safetensors
      log.csv, progress.png, splits.json
    PRED_DIR/                octvessel predict
      prediction.json        what made the predictions (PREDICTION_MANIFEST)
      NAME_prob.png, NAME_prob.tif, NAME_mask.png, NAME_overlay.png   (PREDICTION_OUTPUTS)
      (NAME keeps a reconstruction's variant: NAME_fundus_P2_prob.png)
    EVAL_DIR/                octvessel evaluate
      metrics.json, metrics.csv, roc.png, pr.png, predictions/
      (several variants: variants.json and P1/, P2/, P3/, each an EVAL_DIR)
    CV_DIR/                  octvessel cv
      cv.json, splits.json, cv_metrics.json/.csv, comparison.json/.csv
      ARM/fold_I/run/        a RUN_DIR (fold_run_dir)
      ARM/fold_I/eval/       an EVAL_DIR (fold_eval_dir)
      ARM/fold_I/fold.json   written last: the fold is finished
    DEMO_DIR/                octvessel demo
      metrics.json, summary.png, reconstructions/, predictions/
"""

from __future__ import annotations

from pathlib import Path

# ------------------------------------------------------------------- run folders (train)
TRAIN_CONFIG = "train_config.json"
BUNDLE_CONFIG = "config.json"
MODEL_CARD = "README.md"
BUNDLE_WEIGHTS = "model.safetensors"
BEST_WEIGHTS = "best.safetensors"
LAST_WEIGHTS = "last.safetensors"
TRAINING_STATE = "training_state.safetensors"
TRAIN_LOG = "log.csv"
PROGRESS_FIGURE = "progress.png"
SPLITS = "splits.json"
#: the weights a run or bundle folder is loaded from, in order of preference
RUN_WEIGHTS = (BEST_WEIGHTS, BUNDLE_WEIGHTS, LAST_WEIGHTS)

# ------------------------------------------------------------- prediction folders (predict)
PREDICTION_MANIFEST = "prediction.json"
#: output kinds of one image NAME and their file-name suffixes (NAME + suffix)
PREDICTION_OUTPUTS = {
    "prob_png": "_prob.png",
    "prob_tif": "_prob.tif",
    "mask": "_mask.png",
    "overlay": "_overlay.png",
}

# ------------------------------------------------------------- evaluation folders (evaluate)
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
ROC_FIGURE = "roc.png"
PR_FIGURE = "pr.png"
PREDICTIONS_DIR = "predictions"
EVALUATION_FILES = (METRICS_JSON, METRICS_CSV, ROC_FIGURE, PR_FIGURE)
#: an evaluation of several variants: their numbers side by side, one folder per variant
EVALUATION_VARIANTS = "variants.json"

# ---------------------------------------------------------------------------- cv folders
CV_CONFIG = "cv.json"
CV_METRICS_JSON = "cv_metrics.json"
CV_METRICS_CSV = "cv_metrics.csv"
COMPARISON_JSON = "comparison.json"
COMPARISON_CSV = "comparison.csv"
FOLD_DONE = "fold.json"
FOLD_RUN = "run"
FOLD_EVAL = "eval"

# ------------------------------------------------------------------------ other folders
DEMO_SUMMARY = "summary.png"
RECONSTRUCTIONS_DIR = "reconstructions"
PHANTOM_TRUTH = "phantom_truth.png"
DATASET_JSON = "dataset.json"
REPORT = "report.html"


def prediction_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The output files of image ``name`` in a prediction folder: kind -> path."""
    return {kind: Path(out_dir) / f"{name}{suffix}" for kind, suffix in PREDICTION_OUTPUTS.items()}


def fold_dir(arm_dir: str | Path, index: int) -> Path:
    """``ARM/fold_I``: the folder of fold ``index`` (1-based) of one cv arm."""
    return Path(arm_dir) / f"fold_{index}"


def fold_run_dir(arm_dir: str | Path, index: int) -> Path:
    """``ARM/fold_I/run``: the training run of a fold."""
    return fold_dir(arm_dir, index) / FOLD_RUN


def fold_eval_dir(arm_dir: str | Path, index: int) -> Path:
    """``ARM/fold_I/eval``: the evaluation of a fold's test images."""
    return fold_dir(arm_dir, index) / FOLD_EVAL
