"""Segmentation networks: a registry, the OCT paper's five networks, weights bundles.

>>> from octvessel.models import create_model
>>> model = create_model("iternet")          # 8,244,356 parameters
>>> model.save_pretrained("my-model")        # model.safetensors + config.json + README.md
>>> model, config = load_model("my-model")

Registered: ``iternet``, ``unet`` (IterNet without iterations), ``unet-small``
(retina-unet), ``bcdu-net`` (BCDU-Net D3), ``sa-unet``, ``fr-unet``. Each entry carries its
reference preprocessing and training recipe (the OCT paper's forks; recipes.py holds them);
``COMMON_RECIPE`` is the one recipe for a fair comparison. See docs/networks.md.
"""

# importing each network's module registers it (in this order: list_models() keeps it)
from octvessel.models.base import ModelConfig, SegmentationModel

from octvessel.models.iternet import IterNet, IterNetConfig  # isort: skip
from octvessel.models.unet_small import UNetSmall, UNetSmallConfig  # isort: skip
from octvessel.models.bcdu_net import BCDUNet, BCDUNetConfig  # isort: skip
from octvessel.models.sa_unet import SAUNet, SAUNetConfig  # isort: skip
from octvessel.models.fr_unet import FRUNet, FRUNetConfig  # isort: skip
from octvessel.models.pretrained import (
    BundleConfig,
    convert_checkpoint,
    from_pretrained,
    list_shipped,
    load_model,
    save_pretrained,
)
from octvessel.models.recipes import PRESETS, REFERENCE_RECIPES, RETINA_UNET_PREPROCESSING
from octvessel.models.registry import (
    COMMON_RECIPE,
    PAPER_MODELS,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    reference_parameter_count,
    register_model,
)
from octvessel.preprocessing import Preprocessing

__all__ = [
    "COMMON_RECIPE",
    "PAPER_MODELS",
    "PRESETS",
    "REFERENCE_RECIPES",
    "RETINA_UNET_PREPROCESSING",
    "BCDUNet",
    "BCDUNetConfig",
    "BundleConfig",
    "FRUNet",
    "FRUNetConfig",
    "IterNet",
    "IterNetConfig",
    "ModelConfig",
    "ModelSpec",
    "Preprocessing",
    "SAUNet",
    "SAUNetConfig",
    "SegmentationModel",
    "UNetSmall",
    "UNetSmallConfig",
    "convert_checkpoint",
    "create_model",
    "from_pretrained",
    "get_spec",
    "list_models",
    "list_shipped",
    "load_model",
    "reference_parameter_count",
    "register_model",
    "save_pretrained",
]
