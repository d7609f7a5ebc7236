"""How a model runs over an image: config, sliding window, engine, Predictor, outputs.

``predict_image(model, image, method=...)`` (the engine) turns one float32 H x W x C image
in [0, 1] into a float32 H x W vessel probability; :class:`Predictor` is built once from a
model folder and predicts arrays, files and folders.
"""

from octvessel.inference.engine import (
    METHODS,
    InferenceConfig,
    activation_bytes_per_pixel,
    auto_memory_budget_mb,
    autocast,
    available_memory_mb,
    check_whole_fits,
    choose_method,
    default_device,
    estimate_memory,
    network_grid,
    parse_memory,
    predict_image,
    predict_tensor,
    resample,
    windows_for,
)
from octvessel.inference.predictor import Predictor, PredictSummary

__all__ = [
    "METHODS",
    "InferenceConfig",
    "PredictSummary",
    "Predictor",
    "activation_bytes_per_pixel",
    "auto_memory_budget_mb",
    "autocast",
    "available_memory_mb",
    "check_whole_fits",
    "choose_method",
    "default_device",
    "estimate_memory",
    "network_grid",
    "parse_memory",
    "predict_image",
    "predict_tensor",
    "resample",
    "windows_for",
]
