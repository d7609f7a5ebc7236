"""Training: recipes (:mod:`.config`), data (:mod:`.data`), the trainer (:mod:`.trainer`).

``train(dataset, run_dir, config)`` is what ``octvessel train`` runs; ``train_on_crops`` is
the minimal loop the demo uses.
"""

from octvessel.training.config import PRESETS, TrainConfig, list_presets, preset, resolve_config
from octvessel.training.simple import CropRecipe, multi_output_bce, train_on_crops
from octvessel.training.trainer import TrainingError, TrainResult, evaluate, train, train_one_epoch

__all__ = [
    "PRESETS",
    "CropRecipe",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "evaluate",
    "list_presets",
    "multi_output_bce",
    "preset",
    "resolve_config",
    "train",
    "train_on_crops",
    "train_one_epoch",
]
