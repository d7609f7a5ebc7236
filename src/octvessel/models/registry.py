"""The model registry: ``create_model(name, **config)`` and ``list_models()``.

Each entry names a :class:`~octvessel.models.base.SegmentationModel` subclass, default
config values (so ``unet`` is IterNet with ``iterations=0``) and the preprocessing the
network expects by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from octvessel.errors import UsageError
from octvessel.models.base import SegmentationModel
from octvessel.preprocessing import Preprocessing


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
