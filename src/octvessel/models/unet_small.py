"""The small U-Net of orobix/retina-unet (``get_unet``), as the OCT paper's authors used it.

- 3 levels with 32, 64, 128 channels; per level 3x3 conv -> ReLU -> Dropout(0.2) -> 3x3 conv
  -> ReLU (the dropout sits *between* the paired convs); 2x2 max-pool.
- Up path: 2x nearest-neighbour upsampling (Keras ``UpSampling2D``), concatenation
  ``[encoder feature, upsampled]``, the same conv pair.
- Head: 1x1 conv to 2 classes followed, as in the reference, by a ReLU and a softmax over
  (background, vessel). The network returns the vessel logit ``l_vessel - l_background``
  (after that ReLU), for which binary cross-entropy equals the reference's two-class
  categorical cross-entropy. ``two_class=False`` offers a plain one-logit head instead.
- Initialisation as Keras: Glorot-uniform kernels, zero biases.

1 input channel, 2-class head: 471,010 parameters (one-logit head: 470,977).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from octvessel.config import check_bool, check_fraction, check_int
from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.dropout import Dropout


@dataclass(frozen=True)
class UNetSmallConfig(ModelConfig):
    """retina-unet hyper-parameters.

    Attributes:
        in_channels: image channels (1: the reference's gray + CLAHE + gamma input).
        base_channels: the first level's width (32 in the reference; levels k, 2k, 4k).
        dropout: dropout between the two convs of every level (0.2 in the reference).
        two_class: True: the reference's 2-channel softmax head (the output is the logit
            difference); False: a single-logit sigmoid head.
        head_relu: apply the reference's ReLU to the two class scores before the softmax
            (only for ``two_class``; a one-logit head never has it, which would pin its
            probability at >= 0.5).
        pad_mode: how inputs are padded to a multiple of 4 inside the network.
    """

    in_channels: int = 1
    base_channels: int = 32
    dropout: float = 0.2
    two_class: bool = True
    head_relu: bool = True
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("base_channels", self.base_channels)
        check_fraction("dropout", self.dropout)
        check_bool("two_class", self.two_class)
        check_bool("head_relu", self.head_relu)


class ConvPair(nn.Sequential):
    """3x3 conv -> ReLU -> Dropout -> 3x3 conv -> ReLU: N x c_in x H x W -> N x c_out x H x W."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            Dropout(dropout),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class UNetSmall(SegmentationModel):
    """retina-unet's 3-level U-Net: N x C x H x W -> [N x 1 x H x W vessel logit].

    Any H, W (padded to a multiple of 4 inside and cropped back).
    """

    name = "unet-small"
    config_class = UNetSmallConfig
    size_multiple = 4

    def __init__(self, config: UNetSmallConfig | None = None) -> None:
        super().__init__(config or UNetSmallConfig())
        cfg: UNetSmallConfig = self.config  # type: ignore[assignment]
        k, p = cfg.base_channels, cfg.dropout
        self.enc1 = ConvPair(cfg.in_channels, k, p)
        self.enc2 = ConvPair(k, 2 * k, p)
        self.enc3 = ConvPair(2 * k, 4 * k, p)
        self.dec2 = ConvPair(2 * k + 4 * k, 2 * k, p)
        self.dec1 = ConvPair(k + 2 * k, k, p)
        self.head = nn.Conv2d(k, 2 if cfg.two_class else 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: Glorot-uniform kernels, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        cfg: UNetSmallConfig = self.config  # type: ignore[assignment]
        f1 = self.enc1(x)
        f2 = self.enc2(F.max_pool2d(f1, 2))
        f3 = self.enc3(F.max_pool2d(f2, 2))
        d2 = self.dec2(torch.cat([f2, F.interpolate(f3, scale_factor=2.0, mode="nearest")], 1))
        d1 = self.dec1(torch.cat([f1, F.interpolate(d2, scale_factor=2.0, mode="nearest")], 1))
        scores = self.head(d1)
        if not cfg.two_class:
            return [scores]
        if cfg.head_relu:
            scores = F.relu(scores)
        # channel 0 = background, 1 = vessel (retina-unet's masks_Unet one-hot order)
        return [scores[:, 1:2] - scores[:, 0:1]]


# ------------------------------------------------------------------ registration
# (imported here so that registering the network stays in these lines; see models/registry.py)
from octvessel.models.recipes import REFERENCE_RECIPES, RETINA_UNET_PREPROCESSING  # noqa: E402
from octvessel.models.registry import ModelSpec, register_model  # noqa: E402

register_model(
    ModelSpec(
        "unet-small",
        UNetSmall,
        {"in_channels": 1},
        "retina-unet (orobix): 3-level U-Net 32-64-128, dropout 0.2, 2-class softmax head",
        preprocessing=RETINA_UNET_PREPROCESSING,
        recipe=REFERENCE_RECIPES["unet-small"],
        reference_parameters=471_010,
        parameter_convention="keras",
    )
)
