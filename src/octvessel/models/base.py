"""What every segmentation network in octvessel shares: config, input check, padding.

Every model maps an image batch ``x`` (float32, N x C x H x W, values in [0, 1] after the
model's preprocessing) to a list of vessel *logits*, each N x 1 x H x W, at the input's own
height and width. Multi-output networks (IterNet: ``iterations + 1`` outputs) return them
in order; prediction uses the last one. A two-class network returns ``l_vessel -
l_background``, for which binary cross-entropy equals the two-class cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from octvessel.config import JsonConfig, check_int
from octvessel.errors import UsageError, check_choice
from octvessel.models.pretrained import PretrainedMixin

PAD_MODES = ("reflect", "replicate", "zeros")


@dataclass(frozen=True)
class ModelConfig(JsonConfig):
    """Base of the per-network configs: frozen, validated, JSON-serialisable."""

    in_channels: int = 3

    def __post_init__(self) -> None:
        check_int("in_channels", self.in_channels)
        pad_mode = getattr(self, "pad_mode", None)
        if pad_mode is not None:
            check_choice("pad_mode", pad_mode, PAD_MODES)


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` (N x C x H x W) so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W). ``reflect`` falls back to
    ``replicate`` when the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "zeros":
        return F.pad(x, (0, pw, 0, ph)), (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class SegmentationModel(PretrainedMixin, nn.Module):
    """Base class: validates the input, pads to the network's multiple, crops the outputs back.

    Saving and loading weights bundles come from :class:`~octvessel.models.pretrained.PretrainedMixin`.

    Subclasses set ``name`` and ``config_class``, build their layers from ``self.config`` and
    implement :meth:`forward_padded`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: input height and width must be multiples of this inside the network
    size_multiple: ClassVar[int] = 1

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise UsageError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config

    @property
    def num_outputs(self) -> int:
        return 1

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise UsageError(f"{self.name}: expected an N x C x H x W tensor, got {shape}")
        if x.shape[1] != self.config.in_channels:
            raise UsageError(
                f"{self.name}: expected {self.config.in_channels} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        if x.shape[-1] < 1 or x.shape[-2] < 1:
            raise UsageError(f"{self.name}: empty input of shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise UsageError(f"{self.name}: expected a floating-point tensor, got {x.dtype}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N x C x H x W float -> list of N x 1 x H x W vessel logits (last = final)."""
        self.check_input(x)
        pad_mode = getattr(self.config, "pad_mode", "reflect")
        padded, (h, w) = pad_to_multiple(x, self.size_multiple, pad_mode)
        outputs = self.forward_padded(padded)
        return [o[..., :h, :w] for o in outputs]

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Vessel probability (N x 1 x H x W, float in [0, 1]) from the final output."""
        return torch.sigmoid(self.forward(x)[-1].float())

    def count_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
