"""Vessel probability for whole images: one pass, tiles, or the reference patch scheme.

``predict_image(model, image, **options)`` turns one image (float32 H x W x C in [0, 1])
into the vessel probability (float32 H x W in [0, 1]) on the image's own grid. Methods:

- ``whole``: one forward pass over the whole image (the model pads to its size multiple
  and crops back). Fastest; memory grows with the image.
- ``tiles``: overlapping ``tile`` x ``tile`` windows (``overlap`` fraction), batched,
  blended with a gaussian (or constant) weight; bounded memory for any image size.
- ``patches``: the reference IterNet scheme: every ``crop`` x ``crop`` window at a fixed
  ``stride`` (128 and 3: about 22,800 windows per DRIVE image), zero-padded at the bottom
  and right as the reference code does, overlaps averaged exactly. Slow; for comparison.
- ``auto``: ``whole`` when its estimated memory fits ``memory_budget_mb``, else ``tiles``.

Memory: ``memory_budget_mb`` bounds what inference itself allocates. ``whole`` refuses an
image whose estimated pass exceeds it (:class:`~octvessel.errors.UsageError` suggesting
tiles); ``tiles``/``patches`` size their batches to what it leaves after the stitching
buffers (about 40 bytes per image pixel), one window at a time at least. The Python and
torch runtime, the model's weights and the decoded image come on top. The
command line's ``--max-memory`` (``4GB``, ``512MB``, ``auto``) sets it; ``auto`` is half the
memory available when the command starts, between 512 MB and 16 GB
(:func:`auto_memory_budget_mb`).

Options (fields of :class:`InferenceConfig`): mirrored context around the image
(``margin``, 32 px by default: border pixels see the image continued by reflection rather
than the network's zero padding), flip test-time augmentation (``tta``),
``channels_last`` input, bfloat16 autocast (``bf16``, opt-in), and the network's working
grid (``input_size`` or ``input_scale``): a model trained at another scale than the
image's (e.g. the reference resizes DRIVE to 576 x 576) sees the image resampled to its
grid, and the probability is resampled back to the image's native grid before anything
is thresholded or scored. Labels are never resampled. Everything runs under
``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from octvessel.errors import UsageError
from octvessel.inference.config import METHODS, TTA_FLIPS, InferenceConfig
from octvessel.inference.memory import (
    STITCH_BYTES_PER_PIXEL,
    activation_bytes_per_pixel,
    auto_memory_budget_mb,
    available_memory_mb,
    check_whole_fits,
    choose_method,
    estimate_memory,
    parse_memory,
)
from octvessel.inference.scale import scaled_grid
from octvessel.inference.sliding_window import count_windows, overlap_stride, sliding_window
from octvessel.models.base import SegmentationModel
from octvessel.precision import autocast_for
from octvessel.preprocessing import Preprocessing
from octvessel.runtime import default_device


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU (AVX-512 bf16 / AMX make convolutions 2-4x faster) and CUDA."""
    return autocast_for(device, "bf16" if bf16 else "fp32")


# ------------------------------------------------------------------------------ geometry


def network_grid(
    shape: tuple[int, int],
    config: InferenceConfig,
    preprocessing: Any = None,
    factors: tuple[float, float] | None = None,
    size_multiple: int = 1,
) -> tuple[int, int]:
    """The (H, W) grid the network sees for an image of ``shape``.

    ``config.input_size`` or ``config.input_scale`` win; otherwise a preprocessing that
    carries ``input_size`` / ``input_scale`` attributes decides; otherwise the physical
    scale's (row, col) ``factors`` (:func:`octvessel.inference.scale.scale_factors`: the
    input's pixel size over the model's); otherwise the image's grid.
    """
    size, scale = config.input_size, config.input_scale
    if size is None and scale is None and preprocessing is not None:
        size = getattr(preprocessing, "input_size", None)
        scale = getattr(preprocessing, "input_scale", None)
    if size is not None:
        return int(size[0]), int(size[1])
    if scale is not None:
        if scale == 1:
            return shape
        return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    return scaled_grid(shape, factors, size_multiple)


def resample(array: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> Any:
    """Bilinear resampling of an H x W (or N x C x H x W tensor) map to ``shape``.

    Anti-aliased when shrinking. Returns the same kind (numpy float32 / tensor) it got.
    Use it for probabilities only: labels are never resampled.
    """
    is_numpy = isinstance(array, np.ndarray)
    t = torch.from_numpy(np.asarray(array, np.float32)) if is_numpy else array
    squeeze = t.ndim
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim != 4:
        raise UsageError(f"resample: expected H x W or N x C x H x W, got shape {tuple(t.shape)}")
    shape = (int(shape[0]), int(shape[1]))
    if tuple(t.shape[-2:]) != shape:
        shrink = shape[0] < t.shape[-2] or shape[1] < t.shape[-1]
        t = F.interpolate(
            t.float(), size=shape, mode="bilinear", align_corners=False, antialias=shrink
        )
    if squeeze == 2:
        t = t[0, 0]
    return t.numpy().astype(np.float32, copy=False) if is_numpy else t


def _batch_size(
    model: torch.nn.Module,
    window: int,
    config: InferenceConfig,
    shape: tuple[int, int] | None = None,
) -> int:
    """Windows per forward pass: what the budget leaves after the stitching buffers."""
    if config.batch_size is not None:
        return config.batch_size
    per_window = max(estimate_memory(model, (window, window), config.bf16), 1)
    budget = config.memory_budget_mb * 2**20
    if shape is not None:
        budget -= STITCH_BYTES_PER_PIXEL * shape[0] * shape[1]
    return int(min(64, max(1, budget // per_window)))


def _tile_side(model: torch.nn.Module, tile: int) -> int:
    mult = int(getattr(model, "size_multiple", 1) or 1)
    return -(-tile // mult) * mult


def mirror_margin(shape: tuple[int, int], config: InferenceConfig) -> int:
    """Pixels of mirrored context :func:`predict_tensor` adds on each side of an H x W input:
    ``config.margin``, at most ``min(H, W) - 1`` (what reflection allows), 0 for ``patches``."""
    if config.method == "patches":
        return 0
    return max(0, min(config.margin, shape[0] - 1, shape[1] - 1))


def windows_for(
    model: torch.nn.Module, shape: tuple[int, int], config: InferenceConfig
) -> tuple[str, int]:
    """(method, number of forward windows) for a network grid of ``shape`` (before the
    :func:`mirror_margin`, which is added here as :func:`predict_tensor` adds it)."""
    m = mirror_margin(shape, config)
    shape = (shape[0] + 2 * m, shape[1] + 2 * m)
    method = choose_method(model, shape, config)
    if method == "whole":
        return method, 1
    if method == "tiles":
        tile = _tile_side(model, config.tile)
        return method, count_windows(shape, tile, overlap_stride(tile, config.overlap), "edge")
    return method, count_windows(shape, config.crop, config.stride, "grid")


# ---------------------------------------------------------------------------- prediction


def _final_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[-1] if isinstance(out, (list, tuple)) else out


def predict_tensor(
    model: torch.nn.Module,
    x: torch.Tensor,
    config: InferenceConfig,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Probabilities (float32 1 x K x H x W, K = 1 for vessel maps) of network input ``x``.

    ``x`` is the preprocessed 1 x C x H x W tensor already on the network's grid and
    device. The image is continued by reflection by :func:`mirror_margin` pixels on every
    side first (the method and its memory are chosen for that size) and the result cropped
    back. No test-time augmentation or resampling here; see :func:`predict_image`.
    """
    grid = (int(x.shape[-2]), int(x.shape[-1]))
    margin = mirror_margin(grid, config)
    if margin:
        x = torch.nn.functional.pad(x, (margin,) * 4, mode="reflect")
    method = choose_method(model, tuple(x.shape[-2:]), config)
    if method == "whole":
        check_whole_fits(model, grid, config, margin)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def probs(batch: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(_final_logits(model, batch).float())

    with torch.inference_mode(), autocast(x.device, config.bf16):
        if method == "whole":
            out = probs(x)
            if progress is not None:
                progress(1)
        elif method == "tiles":
            tile = _tile_side(model, config.tile)
            out = sliding_window(
                x,
                probs,
                tile,
                overlap_stride(tile, config.overlap),
                blend=config.blend,
                align="edge",
                pad_mode="reflect",
                batch_size=_batch_size(model, tile, config, tuple(x.shape[-2:])),
                progress=progress,
            )
        else:
            out = sliding_window(
                x,
                probs,
                config.crop,
                config.stride,
                blend="constant",
                align="grid",
                pad_mode="zeros",
                batch_size=_batch_size(model, config.crop, config, tuple(x.shape[-2:])),
                progress=progress,
            )
    return out[..., margin:-margin, margin:-margin] if margin else out


def _resolve_config(config: InferenceConfig | None, options: dict[str, Any]) -> InferenceConfig:
    config = config or InferenceConfig()
    if not options:
        return config
    known = {f.name for f in dataclasses.fields(InferenceConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(
            f"predict_image: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    return config.replace(**options)


def _check_grid(grid: tuple[int, int], native: tuple[int, int]) -> None:
    """The network grid (after input_size / input_scale) must stay a sane image size."""
    from octvessel.data.io import max_pixels

    if grid[0] * grid[1] > max_pixels():
        raise UsageError(
            f"input_size/input_scale turn the {native[1]}x{native[0]} image into a "
            f"{grid[1]}x{grid[0]} network grid, above the limit of {max_pixels() / 1e6:.0f} "
            "megapixels (OCTVESSEL_MAX_PIXELS)"
        )


def predict_image(
    model: SegmentationModel,
    image: np.ndarray,
    *,
    preprocessing: Preprocessing | None = None,
    device: str | torch.device | None = None,
    config: InferenceConfig | None = None,
    progress: Callable[[int], None] | None = None,
    factors: tuple[float, float] | None = None,
    **options: Any,
) -> np.ndarray:
    """Vessel probability of one image on the image's own grid.

    Args:
        model: a segmentation model (set to eval mode here).
        image: float32 H x W x C in [0, 1] (C = 1, 3 or 4), or H x W.
        preprocessing: how the image becomes network input; default: the preprocessing
            saved with the model's weights (``model.bundle_config``), else RGB.
        device: where to run; default: the model's device.
        config: an :class:`InferenceConfig`; keyword ``options`` override its fields.
        progress: called with the number of windows done (tiles/patches), for progress bars.
        factors: (row, col) resampling factors to the model's pixel size
            (:func:`octvessel.inference.scale.scale_factors`); ``input_size`` /
            ``input_scale`` override them; None: the image's grid.
        **options: any :class:`InferenceConfig` field: ``method`` (``auto``, ``whole``,
            ``tiles``, ``patches``), ``tile``, ``overlap``, ``blend``, ``batch_size``,
            ``crop``, ``stride``, ``tta``, ``margin``, ``bf16``, ``channels_last``,
            ``memory_budget_mb``, ``input_size``, ``input_scale``.

    Returns:
        float32 H x W probability map in [0, 1] (the image's height and width, whatever
        grid the network worked on).
    """
    cfg = _resolve_config(config, options)
    image = np.asarray(image)
    if image.ndim not in (2, 3) or 0 in image.shape[:2]:
        raise UsageError(f"expected an H x W x C image, got shape {image.shape}")
    if preprocessing is None:
        bundle = getattr(model, "bundle_config", None)
        preprocessing = bundle.preprocessing if bundle is not None else Preprocessing()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    native = (int(image.shape[0]), int(image.shape[1]))
    grid = network_grid(
        native, cfg, preprocessing, factors, int(getattr(model, "size_multiple", 1) or 1)
    )
    _check_grid(grid, native)
    model.eval()
    with torch.inference_mode():
        x = torch.from_numpy(preprocessing(image))[None].to(device)
        if grid != native:
            x = resample(x, grid)
        prob = torch.zeros((1, 1, *grid), dtype=torch.float32, device=device)
        flips = TTA_FLIPS if cfg.tta else TTA_FLIPS[:1]
        for dims in flips:
            xf = torch.flip(x, dims) if dims else x
            p = predict_tensor(model, xf, cfg, progress)
            prob += torch.flip(p, dims) if dims else p
        prob /= len(flips)
        if grid != native:
            prob = resample(prob, native)
        return prob[0, 0].clamp_(0.0, 1.0).cpu().numpy().astype(np.float32, copy=False)


__all__ = [
    "METHODS",
    "InferenceConfig",
    "activation_bytes_per_pixel",
    "auto_memory_budget_mb",
    "autocast",
    "available_memory_mb",
    "check_whole_fits",
    "choose_method",
    "default_device",
    "estimate_memory",
    "mirror_margin",
    "network_grid",
    "parse_memory",
    "predict_image",
    "predict_tensor",
    "resample",
    "windows_for",
]
