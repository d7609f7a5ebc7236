"""Cross-validation settings: :class:`CVConfig`, the per-model recipes and the arms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from octvessel.config import JsonConfig
from octvessel.cv.splits import compile_group_by
from octvessel.data.datasets import VARIANTS
from octvessel.data.layouts import FORMATS
from octvessel.errors import UsageError


@dataclass(frozen=True)
class CVConfig(JsonConfig):
    """What a cross-validation does besides each model's training recipe.

    Attributes:
        folds: number of folds (the paper: 6 over 24 scans).
        shuffle, split_seed: shuffle the images (groups) with this seed before cutting.
        group_by: regular expression naming an image's subject or eye (see :func:`group_names`).
        models: registered network names, one arm each (times ``variants``).
        variants: CAVRI-C reconstruction variants (P1, P2, P3); other layouts take P1 only.
        format, observer: how to read the dataset (:func:`octvessel.data.index_dataset`).
        threshold: probability at or above which a pixel is vessel (headline metrics).
    """

    folds: int = 6
    shuffle: bool = False
    split_seed: int = 0
    group_by: str | None = None
    models: tuple[str, ...] = ("iternet",)
    variants: tuple[str, ...] = ("P1",)
    format: str = "auto"
    observer: int = 1
    threshold: float = 0.5

    def __post_init__(self) -> None:
        from octvessel.models import list_models

        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "variants", tuple(str(v).upper() for v in self.variants))
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise UsageError(f"folds={self.folds!r}: expected an integer >= 2")
        if (
            isinstance(self.split_seed, bool)
            or not isinstance(self.split_seed, int)
            or self.split_seed < 0
        ):
            raise UsageError(f"split_seed={self.split_seed!r}: expected an integer >= 0")
        if self.group_by is not None:
            compile_group_by(self.group_by)
        if not self.models:
            raise UsageError("models: expected at least one model name")
        for m in self.models:
            if m not in list_models():
                raise UsageError(f"unknown model {m!r}; available: {', '.join(list_models())}")
        for name, values in (("models", self.models), ("variants", self.variants)):
            if len(set(values)) != len(values):
                raise UsageError(f"{name}={','.join(values)}: names repeat")
        if not self.variants:
            raise UsageError("variants: expected at least one of P1, P2, P3")
        for v in self.variants:
            if v not in VARIANTS:
                raise UsageError(
                    f"variant {v!r} is not valid; expected one of: {', '.join(VARIANTS)}"
                )
        if self.format not in ("auto", *FORMATS):
            raise UsageError(
                f"format={self.format!r} is not valid; expected one of: auto, {', '.join(FORMATS)}"
            )
        if isinstance(self.observer, bool) or self.observer not in (1, 2):
            raise UsageError(f"observer={self.observer!r} is not valid; expected 1 or 2")
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"threshold={self.threshold!r}: expected a number in [0, 1]")


def parse_names(text: str | None, what: str = "model") -> tuple[str, ...] | None:
    """``"a,b"`` -> ("a", "b"); ``"all"`` models -> every registered network; None stays None."""
    if text is None:
        return None
    if what == "model" and text.strip().lower() == "all":
        from octvessel.models import list_models

        return tuple(list_models())
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise UsageError(f"--{what} {text!r}: expected one or more names, comma-separated")
    return values


def recipes_for(
    models: Sequence[str] | None,
    preset: str | None = None,
    toml_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    color: str | None = None,
) -> dict[str, Any]:
    """model name -> validated :class:`~octvessel.training.TrainConfig`, one per arm model.

    Settings flow as in ``octvessel train``: preset (default ``iternet-reference`` unless a
    TOML file is given) -> TOML -> ``overrides`` (None ignored) -> ``model`` per arm.
    ``models=None`` takes the recipe's own model. ``model_config`` keys (base_channels,
    iterations ...) go to every model whose config has them, except where the registered
    name fixes the value (``unet`` is IterNet with iterations=0); a key that applies to no
    model is an error.
    """
    import dataclasses

    from octvessel.models import get_spec
    from octvessel.training import resolve_config

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    base = preset or (None if toml_path else "iternet-reference")
    if models is None:
        models = (resolve_config(base, toml_path, overrides).model,)
    model_config = dict(model_config or {})
    used: set[str] = set()
    out = {}
    for m in models:
        cfg = resolve_config(base, toml_path, {**overrides, "model": m})
        spec = get_spec(m)
        fields = {f.name for f in dataclasses.fields(spec.model_class.config_class)}
        # a setting the registered name fixes (unet: iterations=0) stays as the name says
        mine = {k: v for k, v in model_config.items() if k in fields and k not in spec.defaults}
        used |= set(mine)
        if mine or color:
            cfg = replace(
                cfg,
                model_config={**cfg.model_config, **mine},
                preprocessing={**cfg.preprocessing, **({"color": color} if color else {})},
            )
        if cfg.train_split or cfg.val_split:
            raise UsageError(
                "train_split/val_split do not apply to cross-validation (each fold trains on "
                "the other folds' images); use val_fraction to hold out validation images"
            )
        out[m] = cfg
    unused = sorted(set(model_config) - used)
    if unused:
        raise UsageError(
            f"model setting(s) {', '.join(unused)} apply to none of the models {', '.join(models)}"
        )
    return out


@dataclass(frozen=True)
class Arm:
    """One model on one dataset variant; ``name`` is its folder."""

    name: str
    model: str
    variant: str


def make_arms(config: CVConfig, fmt: str) -> list[Arm]:
    """The arms of a cross-validation: model x variant (variants only for CAVRI-C)."""
    if fmt != "cavri" and config.variants != ("P1",):
        raise UsageError(
            f"variants {','.join(config.variants)} apply to CAVRI-C datasets only; this "
            f"dataset's format is {fmt}"
        )
    return [
        Arm(f"{m}-{v}" if fmt == "cavri" else m, m, v)
        for m in config.models
        for v in config.variants
    ]
