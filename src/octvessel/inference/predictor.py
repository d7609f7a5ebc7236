"""A predictor built once from a model: arrays, files and whole folders, streamed and sharded.

>>> predictor = Predictor.from_pretrained("runs/drive")          # or a .safetensors, a name
>>> prob = predictor.predict_array(image)                       # float32 H x W in [0, 1]
>>> summary = predictor.predict_folder("DRIVE/test", "out/")    # writes 4 files per image

Per image ``NAME`` the output folder gets

- ``NAME_prob.png``: the probability as a 16-bit grayscale PNG (0..65535);
- ``NAME_prob.tif``: the probability as a float32 TIFF (exact);
- ``NAME_mask.png``: the binary vessel mask at the threshold (8-bit {0, 255});
- ``NAME_overlay.png``: the mask painted over the image.

``predict_folder`` reads one image at a time (bounded memory), keeps the outputs that exist
already (so an interrupted run continues where it stopped; ``overwrite=True`` redoes
them; outputs another model or other settings made are refused unless ``overwrite``),
records per output image what made it in ``prediction.json`` (:meth:`Predictor.image_record`),
and under ``torchrun --nproc_per_node=N`` each process takes every N-th image
(by rank, from the ``RANK``/``WORLD_SIZE`` environment variables; no process group is
needed), so the processes together write every output exactly once. Every file is
written atomically.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octvessel.data.inputs import InputImage, list_inputs
from octvessel.data.io import read_image
from octvessel.data.layouts import stem
from octvessel.errors import UsageError
from octvessel.inference.config import InferenceConfig
from octvessel.inference.engine import network_grid, predict_image, windows_for
from octvessel.inference.folder import PredictSummary, check_threshold, predict_folder
from octvessel.inference.outputs import (
    MANIFEST,
    OUTPUTS,
    output_paths,
    shard,
    write_outputs,
)
from octvessel.inference.scale import model_scale_of, scale_factors
from octvessel.models.base import SegmentationModel
from octvessel.pixel_size import PixelSize
from octvessel.preprocessing import Preprocessing
from octvessel.runtime import dist_env, dist_rank, reuse_freed_memory, select_device
from octvessel.scale import resolve_pixel_size


class Predictor:
    """A model ready for prediction, with its preprocessing and inference settings.

    Args:
        model: a segmentation model (moved to ``device``, eval mode, channels-last).
        config: how to run it (method, tiles, TTA, bf16 ...); default :class:`InferenceConfig`.
        preprocessing: default: the preprocessing saved with the weights, else RGB.
        device: default: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.
        model_ref: what the model was loaded from (recorded in ``prediction.json``).
        spacing: the inputs' pixel size (row, col) in mm (``--spacing``), else each input's
            own (:func:`octvessel.scale.resolve_pixel_size`).
        fov_px: the photographs' FOV diameter in pixels (``--fov-px``).
        reuse_memory: on CPU, call :func:`reuse_freed_memory` (about 1.8x faster
            whole-image passes over big images; process-wide).
    """

    def __init__(
        self,
        model: SegmentationModel,
        *,
        config: InferenceConfig | None = None,
        preprocessing: Preprocessing | None = None,
        device: str | torch.device | None = None,
        model_ref: str | None = None,
        reuse_memory: bool = True,
        weights_sha256: str | None = None,
        spacing: tuple[float, float] | None = None,
        fov_px: float | None = None,
    ) -> None:
        self.config = config or InferenceConfig()
        self.spacing, self.fov_px = spacing, fov_px
        self.model_scale = model_scale_of(model)
        #: per image name: the pixel size used, its source and the network grid
        self.scales: dict[str, dict[str, Any]] = {}
        bundle = getattr(model, "bundle_config", None)
        if preprocessing is None:
            preprocessing = bundle.preprocessing if bundle is not None else Preprocessing()
        _check_channels(model, preprocessing)
        self.preprocessing = preprocessing
        #: the sha256 of the weights file loaded (None: an in-memory model)
        self.weights_sha256 = weights_sha256
        self.device = select_device(device, local_rank=dist_env().local_rank)
        self.model = model.to(self.device).eval()
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model_ref = model_ref
        self.bundle = bundle
        if reuse_memory and self.device.type == "cpu":
            reuse_freed_memory()

    @classmethod
    def from_pretrained(
        cls,
        model_ref: str | Path,
        *,
        config: InferenceConfig | None = None,
        device: str | torch.device | None = None,
        reuse_memory: bool = True,
        spacing: tuple[float, float] | None = None,
        fov_px: float | None = None,
    ) -> Predictor:
        """Load MODEL (a shipped name, a run or bundle folder, or a ``.safetensors`` file)."""
        from octvessel.models import load_model
        from octvessel.models.pretrained import (
            check_preprocessing_channels,
            resolve_weights,
            sha256_of,
        )

        model, bundle = load_model(model_ref)
        weights = resolve_weights(model_ref)
        check_preprocessing_channels(model, bundle, weights)  # before any output is written
        sha = bundle.sha256.get(weights.name) or sha256_of(weights)
        return cls(
            model,
            config=config,
            device=device,
            model_ref=str(model_ref),
            reuse_memory=reuse_memory,
            weights_sha256=sha,
            spacing=spacing,
            fov_px=fov_px,
        )

    # ---------------------------------------------------------------------- one image

    def predict_array(
        self, image: np.ndarray, pixel_size: PixelSize | None = None, **options: Any
    ) -> np.ndarray:
        """Probability (float32 H x W in [0, 1]) of an image (float32 H x W x C in [0, 1]).

        ``pixel_size``: the image's (:meth:`pixel_size_for`); the image is resampled to
        the model's pixel size and the probability back. None: resolved from the
        predictor's ``spacing`` / ``fov_px``, else estimated from the image (no file
        metadata: use :meth:`predict_scaled` or :meth:`predict_file` for that).
        ``options`` override fields of the predictor's :class:`InferenceConfig`.
        """
        if pixel_size is None and self.model_scale is not None:
            pixel_size = self.pixel_size_for(image)
        return predict_image(
            self.model,
            image,
            preprocessing=self.preprocessing,
            device=self.device,
            config=self.config,
            factors=scale_factors(pixel_size, self.model_scale),
            **options,
        )

    def pixel_size_for(
        self,
        image: np.ndarray | None = None,
        *,
        path: str | Path | None = None,
        name: str | None = None,
        data_spacing: tuple[float, float] | None = None,
        fov: np.ndarray | None = None,
    ) -> PixelSize:
        """The pixel size of one input, and its source (:func:`octvessel.scale.resolve_pixel_size`).

        The FOV estimate is tried only for a model that records a training FOV diameter.
        """
        return resolve_pixel_size(
            spacing=self.spacing,
            fov_px=self.fov_px,
            path=path,
            name=name,
            data_spacing=data_spacing,
            image=image,
            fov=fov,
            estimate=self.model_scale is not None and self.model_scale.fov_px is not None,
        )

    def predict_scaled(
        self,
        image: np.ndarray,
        name: str,
        *,
        path: str | Path | None = None,
        data_spacing: tuple[float, float] | None = None,
        fov: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`predict_array` at the input's resolved pixel size, recorded in ``scales[name]``."""
        pixel = self.pixel_size_for(image, path=path, name=name, data_spacing=data_spacing, fov=fov)
        factors = scale_factors(pixel, self.model_scale)
        shape = (int(image.shape[0]), int(image.shape[1]))
        grid = network_grid(
            shape, self.config, self.preprocessing, factors, getattr(self.model, "size_multiple", 1)
        )
        self.scales[name] = {
            **pixel.to_dict(),
            "factors": list(factors) if factors is not None else None,
            "network_grid": list(grid),
            "image_grid": list(shape),
        }
        return self.predict_array(image, pixel_size=pixel)

    def scale_record(self) -> dict[str, Any]:
        """What ``prediction.json`` / ``metrics.json`` record as ``scale``."""
        return {
            "model": self.model_scale.to_dict() if self.model_scale is not None else None,
            "images": dict(self.scales),
        }

    def scale_line(self) -> str:
        """One line for the terminal: the model's pixel size and the inputs' sources."""
        from octvessel.models.card import scale_text

        counts = Counter(rec["source"] for rec in self.scales.values())
        factors = [f for rec in self.scales.values() for f in (rec["factors"] or [1.0, 1.0])]
        sources = ", ".join(f"{src} x{n}" for src, n in counts.most_common()) or "none"
        spread = f"; resampled x{min(factors):.3g}-{max(factors):.3g}" if factors else ""
        override = self.config.input_size or self.config.input_scale
        note = f" (overridden by --input-size/--input-scale {override})" if override else ""
        return (
            f"scale: model trained at {scale_text(self.model_scale)}; input pixel size from "
            f"{sources}{spread}{note}"
        )

    def method_for(self, shape: tuple[int, int], factors: Any = None) -> str:
        """The method used for an image of ``shape`` (what ``auto`` resolves to)."""
        mult = getattr(self.model, "size_multiple", 1)
        grid = network_grid(shape, self.config, self.preprocessing, factors, mult)
        return windows_for(self.model, grid, self.config)[0]

    def write_outputs(
        self,
        out_dir: str | Path,
        name: str,
        image: np.ndarray,
        prob: np.ndarray,
        *,
        threshold: float = 0.5,
        overwrite: bool = False,
        kinds: tuple[str, ...] | None = None,
    ) -> list[Path]:
        """Write the outputs of one image (see :func:`octvessel.inference.outputs.write_outputs`)."""
        return write_outputs(
            out_dir, name, image, prob, threshold=threshold, overwrite=overwrite, kinds=kinds
        )

    def predict_file(
        self,
        path: str | Path,
        out_dir: str | Path | None = None,
        *,
        name: str | None = None,
        threshold: float = 0.5,
        overwrite: bool = False,
    ) -> np.ndarray:
        """Predict one image file; with ``out_dir``, also write its four outputs."""
        check_threshold(threshold)
        path = Path(path)
        image = read_image(path)
        prob = self.predict_scaled(image, name or stem(path), path=path)
        if out_dir is not None:
            self.write_outputs(
                out_dir, name or stem(path), image, prob, threshold=threshold, overwrite=overwrite
            )
        return prob

    # -------------------------------------------------------------------- many images

    def manifest(self, threshold: float) -> dict[str, Any]:
        """What produced a folder of predictions (the top of ``prediction.json``)."""
        sha: Any = self.weights_sha256
        if sha is None and self.bundle is not None:
            sha = dict(self.bundle.sha256)
        return {
            "model": self.model_ref,
            "architecture": getattr(self.model, "registry_name", type(self.model).__name__),
            "weights_sha256": sha,
            "preprocessing": self.preprocessing.to_dict(),
            "inference": self.config.to_dict(),
            "threshold": threshold,
            "model_scale": self.model_scale.to_dict() if self.model_scale is not None else None,
            "scale_options": {"spacing_mm": _listed(self.spacing), "fov_px": self.fov_px},
            "outputs": dict(OUTPUTS),
        }

    def image_record(self, item: InputImage, facts: dict[str, Any]) -> dict[str, Any]:
        """What made one output image (``prediction.json`` ``"images"`` entry).

        ``facts``: :meth:`manifest`'s dict. The one place a per-image record is built.
        """
        return {
            "source": str(Path(item.path).resolve()),
            "variant": item.variant,
            **pixel_size(item),
            **{k: facts[k] for k in RECORDED_FACTS},
        }

    def with_scale(self, record: dict[str, Any], name: str) -> dict[str, Any]:
        """``record`` with the pixel size :meth:`predict_scaled` used for image ``name``:
        ``pixel_size_mm`` and ``pixel_size_source`` replaced by the resolved ones, and
        ``scale`` (source detail, resampling factors, image and network grids)."""
        used = self.scales.get(name)
        if used is None:
            return record
        return {
            **record,
            "pixel_size_mm": used["spacing_mm"],
            "pixel_size_source": used["source"],
            "scale": used,
        }

    #: :func:`octvessel.inference.folder.predict_folder`, with this predictor as its first
    #: argument: predict every image of a folder or dataset into ``out_dir``
    predict_folder = predict_folder


#: the run facts (:meth:`Predictor.manifest`) each image's record repeats
RECORDED_FACTS = (
    "model",
    "architecture",
    "weights_sha256",
    "preprocessing",
    "inference",
    "threshold",
    "model_scale",
    "scale_options",
)


def pixel_size(item: InputImage) -> dict[str, Any]:
    """An image's pixel size for its record: ``pixel_size_mm`` (row, column) and where it
    came from (the reconstruction sidecar or dataset.json), both None when unknown."""
    size = list(item.spacing_mm) if item.spacing_mm is not None else None
    return {"pixel_size_mm": size, "pixel_size_source": item.spacing_source}


def _listed(pair: tuple[float, float] | None) -> list[float] | None:
    return list(pair) if pair is not None else None


def _check_channels(model: SegmentationModel, preprocessing: Preprocessing) -> None:
    wanted = getattr(getattr(model, "config", None), "in_channels", None)
    if isinstance(wanted, int) and preprocessing.channels != wanted:
        raise UsageError(
            f"preprocessing color {preprocessing.color!r} makes {preprocessing.channels} "
            f"channel(s); the {getattr(model, 'name', 'model')} takes {wanted}"
        )


__all__ = [
    "MANIFEST",
    "OUTPUTS",
    "InputImage",
    "PredictSummary",
    "Predictor",
    "dist_rank",
    "list_inputs",
    "output_paths",
    "reuse_freed_memory",
    "shard",
]
