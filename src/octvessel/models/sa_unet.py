"""SA-UNet (Guo et al., ICPR 2020), as clguo/SA-UNet's ``SA_UNet`` builds it.

- Every conv unit: 3x3 conv (with bias) -> DropBlock (block 7, keep 0.82 as trained on
  DRIVE) -> batch norm -> ReLU; two units per level; 4 levels with 16, 32, 64, 128
  channels; 2x2 max-pool.
- Spatial attention between the two bottleneck units: channel mean and channel max ->
  7x7 conv (2 -> 1, no bias) -> sigmoid -> multiply the feature.
- Up path: ConvTranspose 3x3 stride 2 (TensorFlow "same" alignment), concatenation
  ``[upsampled, encoder feature]``, two conv units.
- Head: 1x1 conv -> sigmoid; the network returns the logit before the sigmoid.

DropBlock follows the reference's Keras layer: seeds drawn with probability
``gamma = (1 - keep) / block^2 * H W / ((H - block + 1)(W - block + 1))`` only where a whole
block fits, grown to blocks by a block x block max-pool, and the kept activations rescaled
by (all units) / (kept units) over the whole batch; independent per channel; the identity
in eval mode (and on maps smaller than a block).

Batch norm uses Keras's epsilon 1e-3 and momentum 0.99; kernels are Glorot-uniform (the
attention conv He-normal), biases zero, as Keras initialises them.

3 input channels: 537,299 trainable parameters; 538,707 as Keras counts them (its "Total
params" include the 2 x 704 batch-norm moving means and variances).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from octvessel.config import check_fraction, check_int
from octvessel.errors import UsageError
from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.bcdu_net import KERAS_BN, he_normal_


@dataclass(frozen=True)
class SAUNetConfig(ModelConfig):
    """SA-UNet hyper-parameters.

    Attributes:
        in_channels: image channels (3: the reference's RGB / 255 input).
        base_channels: ``start_neurons``, the first level's width (16; levels k .. 8k).
        block_size: DropBlock block side (7).
        keep_prob: DropBlock keep probability (0.82 for DRIVE in the reference; 1 = off).
        attention_kernel: side of the spatial-attention conv (7).
        pad_mode: how inputs are padded to a multiple of 8 inside the network.
    """

    in_channels: int = 3
    base_channels: int = 16
    block_size: int = 7
    keep_prob: float = 0.82
    attention_kernel: int = 7
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("base_channels", self.base_channels)
        check_int("block_size", self.block_size)
        check_fraction("keep_prob", self.keep_prob, zero=False, one=True)
        if (
            not isinstance(self.attention_kernel, int)
            or self.attention_kernel < 1
            or self.attention_kernel % 2 == 0
        ):
            raise UsageError(
                f"attention_kernel={self.attention_kernel!r}: expected an odd positive integer"
            )


class DropBlock2d(nn.Module):
    """DropBlock (Ghiasi et al. 2018) as the reference's Keras layer computes it.

    N x C x H x W -> same shape. Training only; the identity in eval mode.
    """

    def __init__(self, block_size: int, keep_prob: float) -> None:
        super().__init__()
        self.block_size = block_size
        self.keep_prob = keep_prob

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, keep_prob={self.keep_prob}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block_size
        h, w = x.shape[-2:]
        if not self.training or self.keep_prob >= 1.0 or h < b or w < b:
            return x
        gamma = (1.0 - self.keep_prob) / b**2 * (h * w) / ((h - b + 1) * (w - b + 1))
        half = b // 2
        valid = torch.zeros(h, w, dtype=x.dtype, device=x.device)
        valid[half : h - half, half : w - half] = 1.0
        seeds = torch.bernoulli(torch.full_like(x, min(gamma, 1.0))) * valid
        # Keras MaxPool2D(pool=b, strides=1, padding="same"): for odd b, b // 2 on each side;
        # for even b, TF puts the extra row/column after
        pad = (half - (1 - b % 2), half, half - (1 - b % 2), half)
        blocks = F.max_pool2d(F.pad(seeds, pad), b, stride=1)
        mask = 1.0 - blocks
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


class ConvUnit(nn.Sequential):
    """3x3 conv -> DropBlock -> BN -> ReLU: N x c_in x H x W -> N x c_out x H x W."""

    def __init__(self, c_in: int, c_out: int, block_size: int, keep_prob: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            DropBlock2d(block_size, keep_prob),
            nn.BatchNorm2d(c_out, **KERAS_BN),
            nn.ReLU(inplace=True),
        )


class SpatialAttention(nn.Module):
    """x * sigmoid(conv_k([mean_c(x), max_c(x)])): N x C x H x W -> N x C x H x W."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class UpSame(nn.ConvTranspose2d):
    """ConvTranspose 3x3 stride 2 with TensorFlow's "same" output: H x W -> 2H x 2W.

    TensorFlow places the transposed kernel with no padding before and crops the one
    extra row and column at the end; PyTorch's ``padding=1, output_padding=1`` would shift
    the output by one pixel.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h, w = x.shape[-2:]
        return super().forward(x)[..., : 2 * h, : 2 * w]


class SAUNet(SegmentationModel):
    """SA-UNet: N x C x H x W -> [N x 1 x H x W vessel logit].

    Any H, W (padded to a multiple of 8 inside and cropped back).
    """

    name = "sa-unet"
    config_class = SAUNetConfig
    size_multiple = 8

    def __init__(self, config: SAUNetConfig | None = None) -> None:
        super().__init__(config or SAUNetConfig())
        cfg: SAUNetConfig = self.config  # type: ignore[assignment]
        k = cfg.base_channels
        widths = [k, 2 * k, 4 * k, 8 * k]

        def pair(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                ConvUnit(c_in, c_out, cfg.block_size, cfg.keep_prob),
                ConvUnit(c_out, c_out, cfg.block_size, cfg.keep_prob),
            )

        self.down = nn.ModuleList(
            pair(c_in, c_out)
            for c_in, c_out in zip([cfg.in_channels, *widths[:2]], widths[:3], strict=True)
        )
        self.middle1 = ConvUnit(widths[2], widths[3], cfg.block_size, cfg.keep_prob)
        self.attention = SpatialAttention(cfg.attention_kernel)
        self.middle2 = ConvUnit(widths[3], widths[3], cfg.block_size, cfg.keep_prob)
        self.up = nn.ModuleList(UpSame(widths[i + 1], widths[i]) for i in reversed(range(3)))
        self.up_conv = nn.ModuleList(pair(2 * widths[i], widths[i]) for i in reversed(range(3)))
        self.head = nn.Conv2d(k, 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: Glorot-uniform kernels, zero biases; He-normal attention conv."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        he_normal_(self.attention.conv.weight)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle2(self.attention(self.middle1(x)))
        for up, conv in zip(self.up, self.up_conv, strict=True):
            x = conv(torch.cat([up(x), skips.pop()], 1))
        return [self.head(x)]


# ------------------------------------------------------------------ registration
# (imported here so that registering the network stays in these lines; see models/registry.py)
from octvessel.models.recipes import REFERENCE_RECIPES  # noqa: E402
from octvessel.models.registry import ModelSpec, register_model  # noqa: E402
from octvessel.preprocessing import Preprocessing  # noqa: E402

register_model(
    ModelSpec(
        "sa-unet",
        SAUNet,
        {"in_channels": 3},
        "SA-UNet (Guo et al. 2020): 4-level 16-128 U-Net, DropBlock + BN, spatial attention",
        preprocessing=Preprocessing(color="rgb"),
        recipe=REFERENCE_RECIPES["sa-unet"],
        reference_parameters=538_707,
        parameter_convention="keras",
    )
)
