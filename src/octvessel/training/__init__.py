"""How a model trains: recipe/config, data, loop, validation, checkpoints, the run folder.

- :mod:`.config` (``TrainConfig``, presets from :mod:`octvessel.models.recipes`);
- :mod:`.samples` (which images) and :mod:`.data` (crops, loaders, fingerprints);
- :mod:`.build` (network, optimiser, scheduler), :mod:`.loop` (one epoch);
- :mod:`.validation` (through :mod:`octvessel.inference` and :mod:`octvessel.evaluation`);
- :mod:`.checkpoint`, :mod:`.run_folder`, :mod:`.distributed` (torchrun);
- :mod:`.trainer`: ``train(dataset, run_dir, config)``, what ``octvessel train`` runs.

``train_on_crops`` (:mod:`.simple`) is a minimal loop for tests and benchmarks.
"""

from octvessel.training.checkpoint import STATE_NAME
from octvessel.training.config import PRESETS, TrainConfig, list_presets, preset, resolve_config
from octvessel.training.data import fingerprint
from octvessel.training.loop import TrainingError, stop_requests, train_one_epoch
from octvessel.training.run_folder import TRAIN_CONFIG_NAME, saved_config
from octvessel.training.simple import CropRecipe, multi_output_bce, train_on_crops
from octvessel.training.trainer import RESUME_FREE, TrainResult, evaluate, train
from octvessel.training.validation import best_metric, validate

__all__ = [
    "PRESETS",
    "RESUME_FREE",
    "STATE_NAME",
    "TRAIN_CONFIG_NAME",
    "CropRecipe",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "best_metric",
    "evaluate",
    "fingerprint",
    "list_presets",
    "multi_output_bce",
    "preset",
    "resolve_config",
    "saved_config",
    "stop_requests",
    "train",
    "train_on_crops",
    "train_one_epoch",
    "validate",
]
