"""Segmentation networks: a registry, IterNet, and safetensors weights bundles.

>>> from octvessel.models import create_model
>>> model = create_model("iternet")          # 8,244,356 parameters
>>> model.save_pretrained("my-model")        # model.safetensors + config.json + README.md
>>> model, config = load_model("my-model")
"""

from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.iternet import IterNet, IterNetConfig
from octvessel.models.pretrained import (
    BundleConfig,
    from_pretrained,
    list_shipped,
    load_model,
    save_pretrained,
)
from octvessel.models.registry import ModelSpec, create_model, get_spec, list_models, register_model
from octvessel.preprocessing import Preprocessing

register_model(
    ModelSpec(
        "iternet",
        IterNet,
        {},
        "IterNet (Li et al. 2020): 5-level UNet + 3 weight-shared mini-UNet passes",
    )
)
register_model(
    ModelSpec("unet", IterNet, {"iterations": 0}, "plain 5-level UNet (IterNet with iterations=0)")
)


__all__ = [
    "BundleConfig",
    "IterNet",
    "IterNetConfig",
    "ModelConfig",
    "ModelSpec",
    "Preprocessing",
    "SegmentationModel",
    "create_model",
    "from_pretrained",
    "get_spec",
    "list_models",
    "list_shipped",
    "load_model",
    "register_model",
    "save_pretrained",
]
