"""IterNet (Li et al., WACV 2020), exactly as the authors' Keras code builds it.

- Conv block: 3x3 conv (same padding) -> ReLU -> Dropout, twice per level; no batch norm.
- Base UNet: 5 levels with k, 2k, 4k, 8k, 16k channels, 2x2 max-pool, decoder
  ConvTranspose 2x2 stride 2 (`layers.UpConv2x2`), concatenation with the encoder feature,
  two conv blocks.
- Mini-UNet: 3 levels (k, 2k, 4k). Its input is the previous module's last k-channel
  decoder feature. All its 3x3 and transposed convs are ONE set of weights, shared by every
  iteration.
- Dense cross-iteration skip: the first-level features of the base UNet and of every
  mini-UNet pass so far are concatenated and reduced to k channels by a 1x1 conv that is
  separate for each iteration; the result is the mini-UNet's level-1 feature.
- One 1x1 head to a single logit after the base UNet and after each mini pass:
  ``iterations + 1`` outputs. With ``iterations = 0`` the model is the plain 5-level UNet.

Default (3 input channels, k = 32, 3 iterations): 8,244,356 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from octvessel.config import check_fraction, check_int
from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.dropout import Dropout, relu_dropout
from octvessel.models.layers import UpConv2x2


@dataclass(frozen=True)
class IterNetConfig(ModelConfig):
    """IterNet hyper-parameters.

    Attributes:
        in_channels: image channels (3 for RGB /255 as in the reference, 1 for gray).
        base_channels: k, the first level's width (32 in the paper).
        iterations: mini-UNet passes (3 in the paper; 0 gives the plain UNet).
        dropout: dropout after every conv+ReLU (0.1 in the reference code).
        pad_mode: how inputs are padded to a multiple of 16 inside the network.
    """

    in_channels: int = 3
    base_channels: int = 32
    iterations: int = 3
    dropout: float = 0.1
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("base_channels", self.base_channels)
        check_int("iterations", self.iterations, minimum=0)
        check_fraction("dropout", self.dropout)


class ConvBlock(nn.Sequential):
    """(3x3 conv -> ReLU -> Dropout) x 2, no batch norm: N x c_in x H x W -> N x c_out x H x W."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            Dropout(dropout),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv1, relu1, drop1, conv2, relu2, drop2 = self
        for conv, relu, drop in ((conv1, relu1, drop1), (conv2, relu2, drop2)):
            x = conv(x)
            if type(drop) is Dropout:  # ReLU -> Dropout fused (the same values and gradients)
                x = relu_dropout(x, drop.p, drop.training)
            else:  # another dropout swapped in (e.g. torch's, by a benchmark)
                x = drop(relu(x))
        return x


class UpBlock(nn.Module):
    """ConvTranspose 2x2 stride 2 (c_in -> c_out), concatenate the skip, ConvBlock(2 c_out -> c_out)."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        self.up = UpConv2x2(c_in, c_out)
        self.conv = ConvBlock(2 * c_out, c_out, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class BaseUNet(nn.Module):
    """5-level UNet trunk: N x C x H x W -> (first-level feature, last decoder feature), k channels each."""

    def __init__(self, in_channels: int, k: int, dropout: float) -> None:
        super().__init__()
        widths = [k, 2 * k, 4 * k, 8 * k, 16 * k]
        self.down = nn.ModuleList(
            ConvBlock(c_in, c_out, dropout)
            for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.up = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], dropout) for i in reversed(range(4))
        )
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        first = skips[0]
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return first, x


class MiniUNet(nn.Module):
    """The weight-shared 3-level refinement UNet (k, 2k, 4k channels).

    ``encode_first`` maps the previous module's k-channel decoder feature to this pass's own
    first-level feature; ``forward`` runs the rest from the fused level-1 feature.
    """

    def __init__(self, k: int, dropout: float) -> None:
        super().__init__()
        self.first = ConvBlock(k, k, dropout)
        self.down2 = ConvBlock(k, 2 * k, dropout)
        self.down3 = ConvBlock(2 * k, 4 * k, dropout)
        self.up2 = UpBlock(4 * k, 2 * k, dropout)
        self.up1 = UpBlock(2 * k, k, dropout)
        self.pool = nn.MaxPool2d(2)

    def encode_first(self, previous_decoded: torch.Tensor) -> torch.Tensor:
        return self.first(previous_decoded)

    def forward(self, level1: torch.Tensor) -> torch.Tensor:
        level2 = self.down2(self.pool(level1))
        level3 = self.down3(self.pool(level2))
        return self.up1(self.up2(level3, level2), level1)


class IterNet(SegmentationModel):
    """IterNet: base UNet + ``iterations`` passes of one shared mini-UNet.

    Input N x C x H x W (any H, W: padded to a multiple of 16 inside and cropped back);
    output a list of ``iterations + 1`` logit maps N x 1 x H x W, the last one final.
    """

    name = "iternet"
    config_class = IterNetConfig
    size_multiple = 16

    def __init__(self, config: IterNetConfig | None = None) -> None:
        super().__init__(config or IterNetConfig())
        cfg: IterNetConfig = self.config  # type: ignore[assignment]
        k = cfg.base_channels
        self.base = BaseUNet(cfg.in_channels, k, cfg.dropout)
        self.mini = MiniUNet(k, cfg.dropout) if cfg.iterations > 0 else None
        # unshared 1x1 fusion of (base level 1, mini level 1 of passes 1..i) -> k channels
        self.fuse = nn.ModuleList(nn.Conv2d((i + 2) * k, k, 1) for i in range(cfg.iterations))
        self.heads = nn.ModuleList(nn.Conv2d(k, 1, 1) for _ in range(cfg.iterations + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras's defaults, as the reference code gets them: Glorot-uniform kernels, zero biases.

        PyTorch's default conv init shrinks the signal through this deep, normalisation-free
        network about tenfold more than Glorot's (the final logits start almost flat), which
        leaves training stuck on the all-background solution for hundreds of steps.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def num_outputs(self) -> int:
        return len(self.heads)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        first_levels = []
        first, decoded = self.base(x)
        first_levels.append(first)
        outputs = [self.heads[0](decoded)]
        if self.mini is None:
            return outputs
        for i, fuse in enumerate(self.fuse):
            first_levels.append(self.mini.encode_first(decoded))
            decoded = self.mini(fuse(torch.cat(first_levels, dim=1)))
            outputs.append(self.heads[i + 1](decoded))
        return outputs


# ------------------------------------------------------------------ registration
# (imported here so that registering the network stays in these lines; see models/registry.py)
from octvessel.models.recipes import REFERENCE_RECIPES  # noqa: E402
from octvessel.models.registry import ModelSpec, register_model  # noqa: E402
from octvessel.preprocessing import Preprocessing  # noqa: E402

register_model(
    ModelSpec(
        "iternet",
        IterNet,
        {},
        "IterNet (Li et al. 2020): 5-level UNet + 3 weight-shared mini-UNet passes",
        preprocessing=Preprocessing(color="rgb"),
        recipe=REFERENCE_RECIPES["iternet"],
        reference_parameters=8_244_356,
        parameter_convention="keras",
    )
)
register_model(
    ModelSpec("unet", IterNet, {"iterations": 0}, "plain 5-level UNet (IterNet with iterations=0)")
)
