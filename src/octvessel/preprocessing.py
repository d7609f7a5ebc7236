"""Image preprocessing that travels with a model's weights (saved in its ``config.json``).

Turns a :class:`~octvessel.data.Sample` image (float32 H x W x C in [0, 1]) into the network
input (float32 C' x H x W), so that training and inference cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octvessel.config import JsonConfig
from octvessel.errors import UsageError

COLOR_MODES = ("rgb", "gray", "green")
#: ITU-R BT.601 luma weights, as Pillow's "L" conversion uses
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Preprocessing(JsonConfig):
    """How an image becomes network input.

    Attributes:
        color: ``rgb`` (3 channels; gray images are repeated), ``gray`` (BT.601 luma, 1
            channel) or ``green`` (the green channel, 1 channel; the vessels' best contrast
            in colour fundus photographs).
    """

    color: str = "rgb"

    def __post_init__(self) -> None:
        if self.color not in COLOR_MODES:
            raise UsageError(f"color={self.color!r}: expected one of {', '.join(COLOR_MODES)}")

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """image: H x W x C (C = 1, 3 or 4) float in [0, 1] -> float32 C' x H x W."""
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise UsageError(
                f"expected an H x W x C image with 1, 3 or 4 channels, got shape {image.shape}"
            )
        image = np.asarray(image[..., :3], dtype=np.float32)
        c = image.shape[2]
        if self.color == "rgb":
            out = np.repeat(image, 3, axis=2) if c == 1 else image
        elif c == 1:
            out = image
        elif self.color == "gray":
            out = (image @ LUMA)[..., None]
        else:  # green
            out = image[..., 1:2]
        return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)
