"""How :func:`~octvessel.inference.predict_image` runs a model: :class:`InferenceConfig`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from octvessel.config import JsonConfig, check_int
from octvessel.errors import UsageError, check_choice
from octvessel.inference.sliding_window import BLENDS

METHODS = ("auto", "whole", "tiles", "patches")
#: flips averaged by test-time augmentation: none, left-right, up-down, both
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


@dataclass(frozen=True)
class InferenceConfig(JsonConfig):
    """How :func:`predict_image` runs a model over an image.

    Attributes:
        method: ``auto``, ``whole``, ``tiles`` or ``patches`` (see the module docstring).
        tile: tile side in pixels for ``tiles`` (rounded up to the model's size multiple).
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        blend: ``gaussian`` or ``constant`` weighting of overlapping tiles.
        batch_size: windows per forward pass for ``tiles``/``patches``; None picks as many
            as fit ``memory_budget_mb`` (at most 64).
        crop: window side of the reference patch scheme (128; the OCT fork used 32).
        stride: step of the reference patch scheme (3).
        tta: average the probabilities of the image and its three flips (4x the time).
        margin: pixels of mirrored context added on every side of the network input and
            cropped off after (U-Net's overlap-tile strategy, Ronneberger et al. 2015: the
            border pixels see the image continued, not the network's zero padding; on the
            real OCT volume it halves the vessels the OCT model invents along the borders,
            docs/oct-model.md); network-grid pixels, at most the image's side minus one;
            0 turns it off; the ``patches`` reference scheme never uses it.
        bf16: bfloat16 autocast (about 2-4x faster on CPUs with AMX/AVX-512 bf16;
            probabilities move by ~1e-2 at most).
        channels_last: feed the network NHWC tensors (faster convolutions on CPU).
        memory_budget_mb: what ``auto`` allows a whole-image pass (and batches) to use.
        input_size: (height, width) the network works at, or None for the image's grid.
        input_scale: alternatively, a factor applied to the image's height and width.
    """

    method: str = "auto"
    tile: int = 512
    overlap: float = 0.25
    blend: str = "gaussian"
    batch_size: int | None = None
    crop: int = 128
    stride: int = 3
    tta: bool = False
    margin: int = 32
    bf16: bool = False
    channels_last: bool = True
    memory_budget_mb: int = 2048
    input_size: tuple[int, int] | None = None
    input_scale: float | None = None

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("blend", self.blend, BLENDS)
        for name in ("tile", "crop", "stride", "memory_budget_mb"):
            check_int(name, getattr(self, name))
        check_int("margin", self.margin, minimum=0)
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise UsageError(f"batch_size={self.batch_size!r}: expected a positive integer or None")
        if (
            isinstance(self.overlap, bool)
            or not isinstance(self.overlap, (int, float))
            or not 0.0 <= self.overlap < 1.0
        ):
            raise UsageError(f"overlap={self.overlap!r}: expected a fraction in [0, 1)")
        if self.input_size is not None:
            size = tuple(self.input_size)
            if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size
            ):
                raise UsageError(
                    f"input_size={self.input_size!r}: expected (height, width), two positive integers"
                )
            object.__setattr__(self, "input_size", size)
        if self.input_scale is not None and not (
            isinstance(self.input_scale, (int, float))
            and not isinstance(self.input_scale, bool)
            and math.isfinite(self.input_scale)
            and self.input_scale > 0
        ):
            raise UsageError(f"input_scale={self.input_scale!r}: expected a positive number")
        if self.input_size is not None and self.input_scale is not None:
            raise UsageError("give input_size or input_scale, not both")

    def replace(self, **changes: Any) -> InferenceConfig:
        """A copy with some fields changed (validated; unknown names are refused)."""
        return type(self).from_dict({**self.to_dict(), **changes})


__all__ = ["METHODS", "TTA_FLIPS", "InferenceConfig"]
