"""The model registry: ``create_model(name, **config)`` and ``list_models()``.

Each entry names a :class:`~octvessel.models.base.SegmentationModel` subclass, default
config values (so ``unet`` is IterNet with ``iterations=0``), the preprocessing the
network expects by default, the training recipe of its reference code and the parameter
count that code reports. :data:`COMMON_RECIPE` is the one recipe for comparing networks
fairly; :data:`PAPER_MODELS` are the five networks of the OCT paper's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from octvessel.errors import UsageError
from octvessel.models.base import SegmentationModel
from octvessel.preprocessing import Preprocessing

#: how a reference code base counts parameters: Keras's "Total params" include each batch
#: norm's moving mean and variance (non-trainable weights), PyTorch's ``parameters()`` not
PARAMETER_CONVENTIONS = ("pytorch", "keras")

#: the five networks compared by the Sensors 2023 OCT paper, in its order
PAPER_MODELS = ("unet-small", "iternet", "bcdu-net", "sa-unet", "fr-unet")

#: The common recipe for a fair comparison: every network gets the same input, crops,
#: budget, optimiser, schedule, loss and augmentation; only the architecture differs (each
#: in its reference configuration, ``in_channels`` following the preprocessing). Why each:
#: - gray + per-image min-max: OCT en-face images are single-channel and their intensity
#:   range differs between reconstructions (P1/P2/P3) and scans; the stretch is the common
#:   part of the references' pipelines (CLAHE and gamma are retina-unet's choices, kept in
#:   its own recipe, not imposed on the others);
#: - 64 x 64 crops, 8 images x 4 crops per step: fits inside the 141-row native grid, is a
#:   multiple of every network's internal size multiple (4, 8, 16: no padding inside) and
#:   gives BCDU-Net and FR-UNet an 8 x 8 bottleneck; batch 32 is IterNet's reference batch;
#: - Adam 1e-3 with cosine decay to 0 over 25 epochs of the reference rule
#:   ceil(100 n_train / 32) steps: 25 epochs is what four of the five OCT forks used, and
#:   the decay lets every network settle within the same fixed budget of steps;
#: - BCE (summed over IterNet's outputs as its reference does; the others have one);
#: - flips and 90-degree turns: label-exact (no interpolation) and what FR-UNet uses.
COMMON_RECIPE: dict[str, Any] = {
    "model_config": {},
    "preprocessing": Preprocessing(color="gray", normalize="minmax").to_dict(),
    "epochs": 25,
    "steps_per_epoch": 0,
    "images_per_batch": 8,
    "crops_per_image": 4,
    "crop": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "scheduler": "cosine",
    "loss": "bce",
    "augment": "flips",
    "notes": "common comparison recipe: gray + per-image min-max input, 8 images x 4 crops "
    "of 64x64, Adam 1e-3 with cosine decay, 25 epochs of ceil(100 n_train / 32) steps, BCE, "
    "flips and 90-degree turns; identical for every network",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    model_class: type[SegmentationModel]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    #: the recipe the network's reference code (or the OCT paper's fork) trained it with:
    #: overrides of octvessel.training's TrainConfig fields (crop, epochs, optimizer, lr ...)
    recipe: dict[str, Any] = field(default_factory=dict)
    #: parameters of the default config as the reference code reports them (None: no
    #: reference), counted by ``parameter_convention`` (see :func:`reference_parameter_count`)
    reference_parameters: int | None = None
    parameter_convention: str = "pytorch"

    def __post_init__(self) -> None:
        if self.parameter_convention not in PARAMETER_CONVENTIONS:
            raise ValueError(
                f"parameter_convention={self.parameter_convention!r}: expected one of "
                f"{', '.join(PARAMETER_CONVENTIONS)}"
            )


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model name {spec.name!r} is registered already")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def reference_parameter_count(model: nn.Module, convention: str = "pytorch") -> int:
    """The parameter count of ``model`` as a reference framework would print it.

    ``pytorch``: the elements of ``model.parameters()``. ``keras``: those plus every batch
    norm's running mean and variance, which Keras counts as non-trainable parameters in its
    "Total params" (PyTorch keeps them as buffers).
    """
    if convention not in PARAMETER_CONVENTIONS:
        raise UsageError(
            f"convention={convention!r}: expected one of {', '.join(PARAMETER_CONVENTIONS)}"
        )
    total = sum(p.numel() for p in model.parameters())
    if convention == "keras":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                total += m.running_mean.numel() + m.running_var.numel()
    return total


def create_model(name: str = "iternet", **config: Any) -> SegmentationModel:
    """Build a freshly initialised model.

    Args:
        name: a registered name (see :func:`list_models`).
        **config: overrides of the network's config (e.g. ``in_channels=1``, ``iterations=2``).

    Returns:
        the model, with ``model.registry_name`` set to ``name``.
    """
    spec = get_spec(name)
    values = {**spec.defaults, **config}
    cfg = spec.model_class.config_class.from_dict(values)
    model = spec.model_class(cfg)
    model.registry_name = name
    return model
