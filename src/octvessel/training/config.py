"""Training recipes: the :class:`TrainConfig` dataclass, named presets and TOML files.

Settings flow preset -> TOML file -> command-line overrides -> ``TrainConfig`` (validated)
-> the trainer; the resolved config is written to the run folder.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octvessel.config import JsonConfig, check_fraction, check_int
from octvessel.data.augment import AUGMENT_MODES
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.models.recipes import PRESETS
from octvessel.pixel_size import check_fov_px, check_spacing
from octvessel.precision import PRECISION_CHOICES, PRECISIONS  # noqa: F401 (re-exported)
from octvessel.runtime import DEVICES

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "plateau")
LOSSES = ("bce",)
LOSS_REGIONS = ("all", "fov")


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """Everything that decides a training run (defaults: the IterNet reference recipe).

    Attributes:
        model: registered architecture name; ``model_config`` overrides its config.
        preprocessing: overrides of the architecture's default preprocessing.
        epochs: passes; ``steps_per_epoch`` 0 means the reference rule
            ceil(100 * n_train / batch) with batch = images_per_batch * crops_per_image
            (summed over processes under torchrun).
        images_per_batch, crops_per_image, crop: a step sees images_per_batch random
            images x crops_per_image random crop x crop crops (reference 8 x 4 x 128^2).
        optimizer, lr, weight_decay, momentum: ``adam`` (reference), ``adamw`` or ``sgd``.
        scheduler: ``none``, ``cosine`` (per step, to 0) or ``plateau`` (x0.1 when the
            validation AUC stalls for ``plateau_patience`` epochs).
        loss: ``bce`` -- binary cross-entropy summed over all outputs, equal weights.
        loss_region: ``all`` (reference: every pixel of a crop counts) or ``fov``: each
            output's loss is the mean over the crops' mask pixels only, so what lies outside
            the mask -- a photograph's black surround, or the unsure pixels of a weak label
            (a dataset whose masks mark where its labels hold) -- is not learned from.
        augment: ``reference`` (IterNet's), ``flips`` or ``none``.
        val_fraction: share of the training images held out for validation (seeded);
            ``val_split`` instead names a dataset split to validate on.
        train_split: the dataset split to train on (None: all images; DRIVE: training).
        seed: seeds crops, augmentation, initialisation and dropout.
        precision: ``auto`` (bf16 on CPUs with AVX512-BF16/AMX and on CUDA with bf16, else
            fp32; resolved when training starts and saved resolved); ``fp32``; ``bf16``
            autocast; ``fp16`` AMP with a gradient scaler (CUDA only).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        workers: data-loading worker processes (0: in the main process).
        init_from: start from these weights (fine-tuning): a shipped model name, a run or
            bundle folder, or a ``.safetensors`` with its ``config.json``. Its architecture,
            model config and preprocessing are the defaults; ``model`` must match it.
        pixel_size_mm: (row, col) mm per pixel every training image is brought to before
            cropping (pooling datasets of different scales; recorded in the bundle's
            ``scale``). None: no resampling; the bundle records the images' pixel size
            when they all share one.
        fov_px: photographs without a pixel size: the FOV diameter (pixels) they are
            brought to (from their FOV masks); with ``pixel_size_mm`` None the recorded
            pixel size assumes a 45 degree camera (0.29 mm per degree; docs/scale.md).
        input_spacing_mm: the training images' own pixel size (row, col mm), for data that
            carry none (``--spacing``; the same for every dataset given); it comes before the
            data's, as in ``predict`` (:func:`octvessel.scale.resolve_pixel_size`).
        input_fov_px: the training photographs' FOV diameter in pixels (``--fov-px``),
            instead of measuring it on each FOV mask.
        scale_jitter: physical-scale augmentation: every crop zoomed by a log-uniform
            factor in 1/(1+j) .. 1+j (0: off; 0.15 tolerates a 15 % error in an input's
            estimated pixel size).
    """

    model: str = "iternet"
    model_config: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    epochs: int = 200
    steps_per_epoch: int = 0
    images_per_batch: int = 8
    crops_per_image: int = 4
    crop: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    plateau_patience: int = 5
    loss: str = "bce"
    loss_region: str = "all"
    augment: str = "reference"
    val_fraction: float = 0.0
    val_split: str | None = None
    train_split: str | None = None
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    workers: int = 0
    init_from: str | None = None
    notes: str = ""
    pixel_size_mm: tuple[float, float] | None = None
    fov_px: float | None = None
    input_spacing_mm: tuple[float, float] | None = None
    input_fov_px: float | None = None
    scale_jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "images_per_batch", "crops_per_image", "crop"):
            check_int(name, getattr(self, name))
        for name in ("steps_per_epoch", "workers", "plateau_patience", "seed"):
            check_int(name, getattr(self, name), minimum=0)
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("scheduler", SCHEDULERS),
            ("loss", LOSSES),
            ("loss_region", LOSS_REGIONS),
            ("augment", AUGMENT_MODES),
            ("precision", PRECISION_CHOICES),
            ("device", DEVICES),
        ):
            check_choice(name, getattr(self, name), choices)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"lr={self.lr!r}: expected a positive number")
        check_fraction("weight_decay", self.weight_decay)
        check_fraction("val_fraction", self.val_fraction)
        if self.init_from is not None and (
            not isinstance(self.init_from, str) or not self.init_from
        ):
            raise UsageError(f"init_from={self.init_from!r}: expected a model name or path")
        if self.val_fraction > 0 and self.val_split:
            raise UsageError("give either val_fraction or val_split, not both")
        if self.pixel_size_mm is not None:
            object.__setattr__(
                self, "pixel_size_mm", check_spacing(self.pixel_size_mm, "pixel_size_mm")
            )
        if self.fov_px is not None:
            object.__setattr__(self, "fov_px", check_fov_px(self.fov_px, "fov_px"))
        if self.input_spacing_mm is not None:
            object.__setattr__(
                self,
                "input_spacing_mm",
                check_spacing(self.input_spacing_mm, "input_spacing_mm (--spacing)"),
            )
        if self.input_fov_px is not None:
            object.__setattr__(
                self, "input_fov_px", check_fov_px(self.input_fov_px, "input_fov_px (--fov-px)")
            )
        if (
            isinstance(self.scale_jitter, bool)
            or not isinstance(self.scale_jitter, (int, float))
            or not 0.0 <= self.scale_jitter <= 1.0
        ):
            raise UsageError(f"scale_jitter={self.scale_jitter!r}: expected a fraction in [0, 1]")
        if not isinstance(self.model_config, dict) or not isinstance(self.preprocessing, dict):
            raise UsageError("model_config and preprocessing must be tables (dicts)")

    @property
    def batch(self) -> int:
        """Crops per optimiser step in one process."""
        return self.images_per_batch * self.crops_per_image

    def steps_for(self, n_train: int, world_size: int = 1) -> int:
        """Steps per epoch for ``n_train`` training images and ``world_size`` processes."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        return max(1, math.ceil(100 * n_train / (self.batch * world_size)))


def list_presets() -> list[str]:
    from octvessel.models import get_spec, list_models

    names = list(PRESETS)
    names += [f"{m}-oct" for m in list_models() if get_spec(m).recipe and f"{m}-oct" not in PRESETS]
    return names


def preset(name: str) -> dict[str, Any]:
    """The overrides a preset stands for."""
    from octvessel.models import get_spec, list_models

    if name in PRESETS:
        return dict(PRESETS[name])
    if name.endswith("-oct") and name[:-4] in list_models() and get_spec(name[:-4]).recipe:
        recipe = {k: v for k, v in get_spec(name[:-4]).recipe.items()}
        return {"model": name[:-4], **recipe}
    raise UsageError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML recipe file: top-level keys are TrainConfig fields (``[model_config]`` etc. tables)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError("no such recipe file", path) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"not a valid TOML recipe ({exc})", path) from None
    if "train" in values and isinstance(values["train"], dict):
        values = values["train"]
    return values


def resolve_config(
    preset_name: str | None = None,
    toml_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """preset -> TOML file -> overrides (None values ignored) -> validated TrainConfig."""
    values: dict[str, Any] = {}
    if preset_name:
        values.update(preset(preset_name))
    if toml_path:
        try:
            values.update(read_toml(toml_path))
        except UsageError as exc:
            raise InputError(str(exc), toml_path) from None
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values = {
        k: (tuple(v) if isinstance(v, list) and k not in ("model_config", "preprocessing") else v)
        for k, v in values.items()
    }
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f" in {toml_path}" if toml_path else ""
        raise UsageError(
            f"unknown recipe setting(s){where}: {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    return TrainConfig(**values)
