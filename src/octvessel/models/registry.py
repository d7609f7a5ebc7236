"""The model registry (a leaf): ``create_model(name, **config)`` and ``list_models()``.

Each network registers itself at the end of its own module (as torchvision's
``register_model``), so adding a network touches one file and the import in
``models/__init__.py``. Each entry names a :class:`~octvessel.models.base.SegmentationModel` subclass, default
config values (so ``unet`` is IterNet with ``iterations=0``), the preprocessing the
network expects by default, the training recipe of its reference code and the parameter
count that code reports. :data:`COMMON_RECIPE` (from :mod:`.recipes`) is the one recipe for comparing networks
fairly; :data:`PAPER_MODELS` are the five networks of the OCT paper's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from octvessel.errors import UsageError
from octvessel.models.recipes import COMMON_RECIPE
from octvessel.preprocessing import Preprocessing

if TYPE_CHECKING:  # the registry is a leaf: networks import it, it imports no network
    from octvessel.models.base import SegmentationModel

#: how a reference code base counts parameters: Keras's "Total params" include each batch
#: norm's moving mean and variance (non-trainable weights), PyTorch's ``parameters()`` not
PARAMETER_CONVENTIONS = ("pytorch", "keras")

#: the five networks compared by the Sensors 2023 OCT paper, in its order
PAPER_MODELS = ("unet-small", "iternet", "bcdu-net", "sa-unet", "fr-unet")


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


__all__ = [
    "COMMON_RECIPE",
    "PAPER_MODELS",
    "PARAMETER_CONVENTIONS",
    "ModelSpec",
    "create_model",
    "get_spec",
    "list_models",
    "reference_parameter_count",
    "register_model",
]
