"""How a model runs over an image: config, sliding window, engine, Predictor, outputs.

``predict_image(model, image, method=...)`` (the engine) turns one float32 H x W x C image
in [0, 1] into a float32 H x W vessel probability; :class:`Predictor` is built once from a
model folder and predicts arrays, files and folders.
"""

from octvessel.inference.config import METHODS, TTA_FLIPS, InferenceConfig
from octvessel.inference.engine import (
    autocast,
    mirror_margin,
    network_grid,
    predict_image,
    predict_tensor,
    resample,
    windows_for,
)
from octvessel.inference.memory import (
    activation_bytes_per_pixel,
    auto_memory_budget_mb,
    available_memory_mb,
    check_whole_fits,
    choose_method,
    estimate_memory,
    format_mb,
    parse_memory,
)
from octvessel.inference.outputs import MANIFEST, OUTPUTS, output_paths, write_outputs
from octvessel.inference.predictor import Predictor, PredictSummary

__all__ = [
    "MANIFEST",
    "METHODS",
    "OUTPUTS",
    "TTA_FLIPS",
    "InferenceConfig",
    "PredictSummary",
    "Predictor",
    "activation_bytes_per_pixel",
    "auto_memory_budget_mb",
    "autocast",
    "mirror_margin",
    "available_memory_mb",
    "check_whole_fits",
    "choose_method",
    "default_device",
    "estimate_memory",
    "format_mb",
    "network_grid",
    "output_paths",
    "parse_memory",
    "predict_image",
    "predict_tensor",
    "resample",
    "windows_for",
    "write_outputs",
]
