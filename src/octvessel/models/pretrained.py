"""Weights bundles: ``save_pretrained`` / ``from_pretrained`` / ``load_model``.

A bundle is a folder holding

- ``model.safetensors`` -- the state dict (float32, or float16 to halve the size);
- ``config.json`` -- schema version, registered model name, the network's config, its
  preprocessing, package version, and the sha256 of each weights file;
- ``README.md`` -- the model card.

Nothing is ever unpickled: weights come only from safetensors, and ``config.json`` is
validated before a model is built. Loading checks, in order and before any weights are
read into memory: the config (schema, registered name, network options -- the network is
first built on PyTorch's ``meta`` device, which allocates nothing), the safetensors header
against that network (names and shapes), the sha256 recorded in ``config.json`` (required
for shipped weights), and finally the values (finite). Old pickled checkpoints
(``.pt``/``.pth``/``.ckpt``) are refused; :func:`convert_checkpoint` turns one into a
bundle with ``torch.load(weights_only=True)``, which cannot run code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from octvessel import __version__, atomic, layout
from octvessel.errors import InputError, OctvesselError, UsageError
from octvessel.models.card import ModelCard, scale_text
from octvessel.models.registry import create_model, get_spec
from octvessel.models.weights_file import (
    WEIGHT_DTYPES,
    _one_line,
    check_channels,
    check_fit,
    load_weights,
    read_header,
    save_weights,
    sha256_of,
    sort_header,
    verify_sha256,
)
from octvessel.pixel_size import ModelScale
from octvessel.preprocessing import Preprocessing

if TYPE_CHECKING:
    from octvessel.models.base import SegmentationModel

SCHEMA_VERSION = 1
WEIGHTS_NAME = layout.BUNDLE_WEIGHTS
CONFIG_NAME = layout.BUNDLE_CONFIG
CARD_NAME = layout.MODEL_CARD
#: files looked for, in order, in a training run folder
RUN_WEIGHTS = layout.RUN_WEIGHTS
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
#: suffixes of pickled PyTorch checkpoints: refused by :func:`load_model` (pickles can run
#: code), converted by :func:`convert_checkpoint`
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class BundleConfig:
    """The validated content of a ``config.json``."""

    model: str
    model_config: dict[str, Any]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    sha256: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    octvessel_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    #: the pixel size the network was trained at (``"scale"`` in config.json); None for
    #: bundles written before it existed: inputs then run on their own grid
    scale: ModelScale | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schema_version": self.schema_version,
            "model": self.model,
            "model_config": self.model_config,
            "preprocessing": self.preprocessing.to_dict(),
            "sha256": self.sha256,
            "octvessel_version": self.octvessel_version,
            "metadata": self.metadata,
        }
        if self.scale is not None:
            out["scale"] = self.scale.to_dict()
        return out

    @classmethod
    def from_file(cls, path: str | Path) -> BundleConfig:
        """Read and validate ``config.json``; errors name the file and the expectation."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                "missing: a model needs its config.json beside the weights", path
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not a valid JSON model config ({exc})", path) from None
        if not isinstance(raw, dict):
            raise InputError("expected a JSON object with 'model' and 'model_config'", path)
        version = raw.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise InputError(
                f"schema_version {version!r} is newer than this octvessel understands ({SCHEMA_VERSION})",
                path,
            )
        name, model_config = raw.get("model"), raw.get("model_config", {})
        if not isinstance(name, str) or not isinstance(model_config, dict):
            raise InputError(
                "expected 'model' (a registered model name) and 'model_config' (an object)", path
            )
        try:
            get_spec(name)
            spec_pre = raw.get("preprocessing", {})
            pre = Preprocessing.from_dict(spec_pre if isinstance(spec_pre, dict) else {})
        except InputError as exc:
            raise InputError(str(exc), path) from None
        sha = raw.get("sha256", {})
        if not isinstance(sha, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v)
            for k, v in sha.items()
        ):
            raise InputError(
                "'sha256' must map weights file names to 64 lower-case hex digits", path
            )
        return cls(
            model=name,
            model_config=model_config,
            preprocessing=pre,
            sha256=dict(sha),
            metadata=raw.get("metadata", {}) if isinstance(raw.get("metadata", {}), dict) else {},
            octvessel_version=str(raw.get("octvessel_version", "unknown")),
            schema_version=version,
            scale=ModelScale.from_dict(raw.get("scale"), path),
        )

    def build(self, source: Path | None = None, device: str = "cpu") -> SegmentationModel:
        """A freshly initialised model of this config (errors name ``source``).

        ``device="meta"`` builds the network without allocating its weights: the cheap way
        to validate a config and learn its parameter shapes.
        """
        try:
            with torch.device(device):
                return create_model(self.model, **self.model_config)
        except InputError as exc:
            raise InputError(str(exc), source) from None
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"model_config {json.dumps(self.model_config)} does not build a {self.model} "
                f"({' '.join(str(exc).split())[:200]})",
                source,
            ) from None


def check_preprocessing_channels(model: torch.nn.Module, config: BundleConfig, path: Path) -> None:
    """The preprocessing of ``config.json`` makes the channels its network takes.

    Checked before a bundle predicts (``color`` rgb = 3 channels, gray/green = 1); raises
    :class:`InputError` naming the weights file.
    """
    wanted = getattr(getattr(model, "config", None), "in_channels", None)
    made = config.preprocessing.channels
    if isinstance(wanted, int) and made != wanted:
        raise InputError(
            f"{CONFIG_NAME} does not fit itself: its preprocessing (color "
            f"{config.preprocessing.color!r}) makes {made} channel(s), its model_config "
            f"in_channels={wanted}; fix one of them in {path.parent / CONFIG_NAME}",
            path,
        )


def model_card(model: SegmentationModel, config: BundleConfig) -> str:
    """A minimal model card; trainers and shipped weights extend it with data and metrics."""
    card = ModelCard(str(config.metadata.get("title", config.model)))
    card.fact(f"architecture: `{config.model}` ({model.count_parameters():,} parameters)")
    card.fact(f"config: `{json.dumps(config.model_config, sort_keys=True)}`")
    card.fact(f"preprocessing: `{json.dumps(config.preprocessing.to_dict(), sort_keys=True)}`")
    card.fact(f"octvessel version: {config.octvessel_version}")
    card.fact(f"trained at: {scale_text(config.scale)}")
    for name, digest in config.sha256.items():
        card.fact(f"sha256 of `{name}`: `{digest}`")
    for key, value in config.metadata.items():
        if key != "title":
            card.fact(f"{key}: {value}")
    card.closing.append("Licence: MIT (code and weights).")
    return card.render()


def save_pretrained(
    model: SegmentationModel,
    directory: str | Path,
    *,
    preprocessing: Preprocessing | None = None,
    metadata: dict[str, Any] | None = None,
    dtype: str = "float32",
    card: str | None = None,
    overwrite: bool = False,
    scale: ModelScale | None = None,
) -> Path:
    """Write ``model`` as a bundle folder (weights, config.json, model card), each file atomically.

    ``scale``: the pixel size the network was trained at (recorded as ``"scale"``).
    """
    directory = Path(directory)
    name = getattr(model, "registry_name", model.name)
    config = BundleConfig(
        model=name,
        model_config=model.config.to_dict(),
        preprocessing=preprocessing or get_spec(name).preprocessing,
        metadata=dict(metadata or {}),
        scale=scale,
    )
    for fname in (WEIGHTS_NAME, CONFIG_NAME):
        atomic.check_writable(directory / fname, overwrite)
    config.sha256[WEIGHTS_NAME] = save_weights(model, directory / WEIGHTS_NAME, dtype, overwrite)
    atomic.write_json(directory / CONFIG_NAME, config.to_dict(), overwrite=True)
    atomic.write_text(directory / CARD_NAME, card or model_card(model, config), overwrite=True)
    return directory


def list_shipped() -> dict[str, Path]:
    """Shipped weights bundles inside the package: name -> folder."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if (p / CONFIG_NAME).is_file()}


def resolve_weights(model_ref: str | Path) -> Path:
    """Find the weights file for MODEL: a shipped name, a run/bundle folder or a ``.safetensors`` file."""
    shipped = list_shipped()
    if isinstance(model_ref, str) and model_ref in shipped:
        return shipped[model_ref] / WEIGHTS_NAME
    path = Path(model_ref)
    if path.is_dir():
        for candidate in RUN_WEIGHTS:
            if (path / candidate).is_file():
                return path / candidate
        raise InputError(
            f"no weights found: expected one of {', '.join(RUN_WEIGHTS)} in this folder", path
        )
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise InputError(
                "pickled PyTorch checkpoints are never loaded (they can run code); expected a "
                '.safetensors file. Convert it once with python -c "from octvessel.models import '
                f"convert_checkpoint; convert_checkpoint('{path.name}', 'my-model', 'iternet')\" "
                "(torch.load with weights_only=True; pass the architecture and its options)",
                path,
            )
        if path.suffix.lower() != ".safetensors":
            raise InputError(
                f"expected a .safetensors weights file (with config.json beside it), got "
                f"{path.suffix or 'no suffix'!r}",
                path,
            )
        return path
    names = ", ".join(shipped) or "none installed"
    raise InputError(
        f"not a shipped model name (shipped: {names}), a folder or a .safetensors file", path
    )


def load_model(
    model_ref: str | Path, device: str | torch.device = "cpu"
) -> tuple[SegmentationModel, BundleConfig]:
    """Load MODEL (shipped name, run or bundle folder, or ``.safetensors`` with ``config.json`` beside).

    Returns the model in eval mode and its validated :class:`BundleConfig`.
    """
    weights = resolve_weights(model_ref)
    config_path = weights.parent / CONFIG_NAME
    config = BundleConfig.from_file(config_path)
    expected = config.sha256.get(weights.name)
    if expected is None and _is_shipped(weights):
        raise InputError(
            f"shipped weights must have their sha256 in {CONFIG_NAME}; none is recorded "
            "(corrupt installation: reinstall octvessel)",
            weights,
        )
    # validate the config and the weights' header against the network before allocating it
    skeleton = config.build(config_path, device="meta")
    header = read_header(weights)
    check_channels(skeleton, header, weights)
    check_fit(skeleton, header, weights)
    model = config.build(config_path)
    load_weights(model, weights, expected)
    model.bundle_config = config
    return model.to(device).eval(), config


def _is_shipped(path: Path) -> bool:
    try:
        path.resolve().relative_to(SHIPPED_DIR.resolve())
    except ValueError:
        return False
    return True


def convert_checkpoint(
    checkpoint: str | Path,
    directory: str | Path,
    model: str = "iternet",
    *,
    preprocessing: Preprocessing | None = None,
    key: str | None = None,
    overwrite: bool = False,
    **model_config: Any,
) -> Path:
    """Turn a pickled PyTorch checkpoint (``.pt``/``.pth``) into a weights bundle folder.

    The file is read with ``torch.load(weights_only=True)``, which unpickles tensors and
    plain containers only and refuses anything that would run code. The state dict may be
    the file itself or sit under ``key`` (default: the first of ``state_dict``, ``model``,
    ``model_state_dict``, ``net`` that holds one); a ``module.`` prefix (DataParallel) is
    dropped. It must fit ``model`` built with ``model_config`` exactly.

    Returns:
        the bundle folder (``model.safetensors``, ``config.json`` with its sha256, card).
    """
    src = Path(checkpoint)
    if not src.is_file():
        raise InputError("checkpoint file not found", src)
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for code-running pickles, many types for junk
        raise InputError(
            f"cannot load as a weights-only checkpoint ({_one_line(exc)})", src
        ) from None
    state = obj
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = [key] if key is not None else ["state_dict", "model", "model_state_dict", "net"]
        state = next((obj[k] for k in keys if isinstance(obj.get(k), dict)), None)
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise InputError(
            "holds no state dict of tensors"
            + (f" under key {key!r}" if key else " (pass key= for the entry that holds it)"),
            src,
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        net = create_model(model, **model_config)
    except UsageError as exc:
        raise UsageError(str(exc)) from None
    check_fit(net, {k: tuple(v.shape) for k, v in state.items()}, src)
    own = net.state_dict()
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    metadata = {"converted_from": src.name}
    return save_pretrained(
        net, directory, preprocessing=preprocessing, metadata=metadata, overwrite=overwrite
    )


def from_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> SegmentationModel:
    """The model of a bundle folder (see :func:`load_model` for the config too)."""
    return load_model(directory, device)[0]


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a network (mixed into SegmentationModel)."""

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> Path:
        """Write a weights bundle folder; see :func:`save_pretrained`."""
        return save_pretrained(self, directory, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> Any:
        """Load a bundle (shipped name, folder or ``.safetensors``); see :func:`load_model`."""
        model, _ = load_model(path, device)
        if not isinstance(model, cls):
            raise UsageError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model


__all__ = [
    "PretrainedMixin",
    "PICKLE_SUFFIXES",
    "BundleConfig",
    "OctvesselError",
    "check_channels",
    "check_fit",
    "check_preprocessing_channels",
    "convert_checkpoint",
    "from_pretrained",
    "list_shipped",
    "load_model",
    "load_weights",
    "read_header",
    "resolve_weights",
    "save_pretrained",
    "save_weights",
    "sha256_of",
    "sort_header",
    "verify_sha256",
    "WEIGHT_DTYPES",
]
