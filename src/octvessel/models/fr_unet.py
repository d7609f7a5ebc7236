"""FR-UNet (Liu et al., IEEE JBHI 2022), as lseventeen/FR-UNet's ``FR_UNet`` computes it.

A full-resolution U-Net: the first resolution is kept all along a horizontal chain of
blocks while three lower resolutions feed it through up-sampling paths.

- Channels 64, 128, 256, 512 divided by ``feature_scale`` (2: 32, 64, 128, 256), four
  resolutions linked by 2x2 stride-2 convs (down) and 2x2 stride-2 transposed convs (up,
  to half the channels), each followed by batch norm and LeakyReLU(0.1).
- A block first fuses its (concatenated) inputs to its width when the channel count
  changes: 1x1 conv + 3x3 conv + dilated (2) 3x3 conv, summed, batch norm. Then a residual
  conv pair: (3x3 conv -> BN -> Dropout2d(0.2) -> LeakyReLU(0.1) -> 3x3 conv -> BN ->
  Dropout2d(0.2)) + input -> LeakyReLU(0.1).
- Five 1x1 heads on the first-resolution chain; the output is their mean. The heads are
  linear and the reference trains the mean with ``BCEWithLogitsLoss``, so the mean of the
  five logits is this network's logit and binary cross-entropy on it is the reference loss.

Only the modules the forward pass uses are built: the reference also registers a
multi-scale fuse in each block whose channel count does not change (4 blocks) and an
unused 5 -> 1 1x1 conv, 1,654,726 parameters that never receive a gradient. The
reference's ``self.apply(InitWeights_He)`` passes the class instead of an instance and so
initialises nothing; PyTorch's default initialisation is therefore kept here too.

1 input channel: 5,719,621 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from octvessel.config import check_bool, check_fraction
from octvessel.errors import UsageError
from octvessel.models.base import ModelConfig, SegmentationModel

WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class FRUNetConfig(ModelConfig):
    """FR-UNet hyper-parameters.

    Attributes:
        in_channels: image channels (1: the reference's gray, min-max normalised input).
        feature_scale: widths are 64, 128, 256, 512 divided by this (2 in the reference).
        dropout: Dropout2d inside every residual conv pair (0.2).
        average_heads: True: the mean of the five heads' logits (the reference);
            False: only the last head (then the four others are not built).
        pad_mode: how inputs are padded to a multiple of 8 inside the network.
    """

    in_channels: int = 1
    feature_scale: int = 2
    dropout: float = 0.2
    average_heads: bool = True
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            not isinstance(self.feature_scale, int)
            or isinstance(self.feature_scale, bool)
            or self.feature_scale not in (1, 2, 4, 8, 16, 32)
        ):
            raise UsageError(
                f"feature_scale={self.feature_scale!r}: expected one of 1, 2, 4, 8, 16, 32"
            )
        check_fraction("dropout", self.dropout)
        check_bool("average_heads", self.average_heads)


class MultiScaleFuse(nn.Module):
    """BN(1x1 conv + 3x3 conv + dilated 3x3 conv), no biases: c_in -> c_out channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.conv3 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv3_dilated = nn.Conv2d(c_in, c_out, 3, padding=2, dilation=2, bias=False)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv1(x) + self.conv3(x) + self.conv3_dilated(x))


class ResidualPair(nn.Module):
    """LeakyReLU(x + [3x3 conv, BN, Dropout2d, LeakyReLU, 3x3 conv, BN, Dropout2d](x))."""

    def __init__(self, c: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.Dropout2d(dropout),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.Dropout2d(dropout),
        )
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


def _resample(c_in: int, c_out: int, up: bool) -> nn.Sequential:
    """2x2 stride-2 conv (down, c -> 2c) or transposed conv (up, c -> c / 2), BN, LeakyReLU."""
    conv = nn.ConvTranspose2d if up else nn.Conv2d
    return nn.Sequential(
        conv(c_in, c_out, 2, stride=2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1, inplace=not up),
    )


class Block(nn.Module):
    """Fuse (only if the channel count changes) -> residual pair -> optional up / down.

    Returns ``(x, up(x) or None, down(x) or None)``.
    """

    def __init__(self, c_in: int, c: int, dropout: float, up: bool, down: bool) -> None:
        super().__init__()
        self.fuse = MultiScaleFuse(c_in, c) if c_in != c else None
        self.conv = ResidualPair(c, dropout)
        self.up = _resample(c, c // 2, up=True) if up else None
        self.down = _resample(c, 2 * c, up=False) if down else None

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if self.fuse is not None:
            x = self.fuse(x)
        x = self.conv(x)
        return (
            x,
            self.up(x) if self.up is not None else None,
            self.down(x) if self.down is not None else None,
        )


class FRUNet(SegmentationModel):
    """FR-UNet: N x C x H x W -> [N x 1 x H x W vessel logit] (the mean of five heads).

    Any H, W (padded to a multiple of 8 inside and cropped back). Block names follow the
    reference: ``b{level}_{column}`` with columns 3, 2, 1, 0, -1 (written ``m1``), -2, -3.
    """

    name = "fr-unet"
    config_class = FRUNetConfig
    size_multiple = 8

    def __init__(self, config: FRUNetConfig | None = None) -> None:
        super().__init__(config or FRUNetConfig())
        cfg: FRUNetConfig = self.config  # type: ignore[assignment]
        f1, f2, f3, f4 = (w // cfg.feature_scale for w in WIDTHS)
        p = cfg.dropout

        def block(c_in: int, c: int, up: bool = False, down: bool = False) -> Block:
            return Block(c_in, c, p, up, down)

        # resolution 1 (full)
        self.b1_3 = block(cfg.in_channels, f1, down=True)
        self.b1_2 = block(f1, f1, down=True)
        self.b1_1 = block(2 * f1, f1, down=True)
        self.b1_0 = block(2 * f1, f1, down=True)
        self.b1_m1 = block(2 * f1, f1, down=True)
        self.b1_m2 = block(2 * f1, f1)
        self.b1_m3 = block(2 * f1, f1)
        # resolution 1/2
        self.b2_2 = block(f2, f2, up=True, down=True)
        self.b2_1 = block(2 * f2, f2, up=True, down=True)
        self.b2_0 = block(3 * f2, f2, up=True, down=True)
        self.b2_m1 = block(3 * f2, f2, up=True)
        self.b2_m2 = block(3 * f2, f2, up=True)
        # resolution 1/4
        self.b3_1 = block(f3, f3, up=True, down=True)
        self.b3_0 = block(2 * f3, f3, up=True)
        self.b3_m1 = block(3 * f3, f3, up=True)
        # resolution 1/8
        self.b4_0 = block(f4, f4, up=True)
        n_heads = 5 if cfg.average_heads else 1
        self.heads = nn.ModuleList(nn.Conv2d(f1, 1, 1) for _ in range(n_heads))

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        cat = torch.cat
        x1_3, _, d1_3 = self.b1_3(x)
        x1_2, _, d1_2 = self.b1_2(x1_3)
        x2_2, u2_2, d2_2 = self.b2_2(d1_3)
        x1_1, _, d1_1 = self.b1_1(cat([x1_2, u2_2], 1))
        x2_1, u2_1, d2_1 = self.b2_1(cat([d1_2, x2_2], 1))
        x3_1, u3_1, d3_1 = self.b3_1(d2_2)
        x1_0, _, d1_0 = self.b1_0(cat([x1_1, u2_1], 1))
        x2_0, u2_0, d2_0 = self.b2_0(cat([d1_1, x2_1, u3_1], 1))
        x3_0, u3_0, _ = self.b3_0(cat([d2_1, x3_1], 1))
        _, u4_0, _ = self.b4_0(d3_1)
        x1_m1, _, d1_m1 = self.b1_m1(cat([x1_0, u2_0], 1))
        x2_m1, u2_m1, _ = self.b2_m1(cat([d1_0, x2_0, u3_0], 1))
        _, u3_m1, _ = self.b3_m1(cat([d2_0, x3_0, u4_0], 1))
        x1_m2, _, _ = self.b1_m2(cat([x1_m1, u2_m1], 1))
        _, u2_m2, _ = self.b2_m2(cat([d1_m1, x2_m1, u3_m1], 1))
        x1_m3, _, _ = self.b1_m3(cat([x1_m2, u2_m2], 1))
        if len(self.heads) == 1:
            return [self.heads[0](x1_m3)]
        features = (x1_1, x1_0, x1_m1, x1_m2, x1_m3)
        logits = [head(f) for head, f in zip(self.heads, features, strict=True)]
        return [torch.stack(logits).mean(0)]


# ------------------------------------------------------------------ registration
# (imported here so that registering the network stays in these lines; see models/registry.py)
from octvessel.models.recipes import REFERENCE_RECIPES  # noqa: E402
from octvessel.models.registry import ModelSpec, register_model  # noqa: E402
from octvessel.preprocessing import Preprocessing  # noqa: E402

register_model(
    ModelSpec(
        "fr-unet",
        FRUNet,
        {"in_channels": 1},
        "FR-UNet (Liu et al. 2022): full-resolution U-Net, multi-scale fuse, mean of 5 heads",
        preprocessing=Preprocessing(color="gray", normalize="minmax"),
        recipe=REFERENCE_RECIPES["fr-unet"],
        reference_parameters=5_719_621,
        parameter_convention="pytorch",
    )
)
