"""BCDU-Net D3 (Azad et al., ICCVW 2019), as rezazad68/BCDU-Net's ``BCDU_net_D3`` builds it.

- Encoder: (3x3 conv -> ReLU) x 2 with 64, 128, 256 channels, 2x2 max-pool; the
  256-channel feature passes Dropout(0.5) on its way to the skip connection only.
- Bottleneck: three 512-channel blocks of (3x3 conv -> ReLU) x 2 -> Dropout(0.5), densely
  connected: block 2 takes block 1's output, block 3 the concatenation [block 2, block 1].
- Up path, per level: ConvTranspose 2x2 stride 2 -> batch norm -> ReLU; the encoder feature
  e and the upsampled decoder feature d form a two-step sequence (e, d) that one ConvLSTM
  (3x3, half the level's channels) reads *backwards* (Keras ``go_backwards=True``: d first,
  then e); its last hidden state is followed by (3x3 conv -> ReLU) x 2.
- Head: 3x3 conv to 2 channels -> ReLU -> 1x1 conv to 1 -> sigmoid. The network returns
  the logit before that sigmoid, so binary cross-entropy is the reference's loss.

The paper calls the skip fusion "bidirectional ConvLSTM"; the reference code runs a single
ConvLSTM over the reversed pair, and only that reproduces its parameter count.

Keras details kept: ConvLSTM gates in Keras order (i, f, c, o) with a hard-sigmoid
recurrent activation (``clip(0.2 x + 0.5, 0, 1)``), a bias-free recurrent kernel and a
forget-gate bias initialised to 1; batch norm with Keras's epsilon 1e-3 and momentum 0.99;
He-normal kernels (Glorot-uniform for the final 1x1), zero biases, orthogonal recurrent
kernels.

1 input channel: 20,658,821 trainable parameters; 20,659,717 as Keras counts them (its
"Total params" include the 2 x 448 batch-norm moving means and variances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from octvessel.config import check_fraction, check_int
from octvessel.errors import UsageError
from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.dropout import Dropout
from octvessel.models.layers import UpConv2x2

RECURRENT_ACTIVATIONS = ("hard_sigmoid", "sigmoid")
#: Keras's batch-norm defaults in PyTorch terms (Keras momentum 0.99 = PyTorch 0.01)
KERAS_BN = {"eps": 1e-3, "momentum": 0.01}


@dataclass(frozen=True)
class BCDUNetConfig(ModelConfig):
    """BCDU-Net D3 hyper-parameters.

    Attributes:
        in_channels: image channels (1: the reference's gray + CLAHE + gamma input).
        base_channels: the first level's width (64; levels k, 2k, 4k, bottleneck 8k).
        dense_blocks: bottleneck blocks: 3 ("D3", densely connected) or 1 ("D1").
        dropout: dropout on the level-3 skip and after each bottleneck block (0.5).
        recurrent_activation: the ConvLSTM gates' activation: ``hard_sigmoid`` (Keras 2's
            default, ``clip(0.2 x + 0.5, 0, 1)``, the reference) or ``sigmoid``.
        pad_mode: how inputs are padded to a multiple of 8 inside the network.
    """

    in_channels: int = 1
    base_channels: int = 64
    dense_blocks: int = 3
    dropout: float = 0.5
    recurrent_activation: str = "hard_sigmoid"
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("base_channels", self.base_channels, minimum=2)
        if self.dense_blocks not in (1, 3) or isinstance(self.dense_blocks, bool):
            raise UsageError(f"dense_blocks={self.dense_blocks!r}: expected 3 (D3) or 1 (D1)")
        check_fraction("dropout", self.dropout)
        if self.recurrent_activation not in RECURRENT_ACTIVATIONS:
            raise UsageError(
                f"recurrent_activation={self.recurrent_activation!r}: expected one of "
                f"{', '.join(RECURRENT_ACTIVATIONS)}"
            )


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2's ``hard_sigmoid``: clip(0.2 x + 0.5, 0, 1) (PyTorch's uses slope 1/6)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class ConvPair(nn.Sequential):
    """(3x3 conv -> ReLU) x 2: N x c_in x H x W -> N x c_out x H x W."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class ConvLSTM(nn.Module):
    """A 3x3 ConvLSTM run over a short sequence, returning the last hidden state.

    Keras ``ConvLSTM2D(filters, 3, padding="same", return_sequences=False)``: the input
    kernel has a bias, the recurrent kernel none; gates in the order (i, f, c, o).
    """

    def __init__(self, c_in: int, filters: int, recurrent_activation: str) -> None:
        super().__init__()
        self.filters = filters
        self.input_conv = nn.Conv2d(c_in, 4 * filters, 3, padding=1)
        self.recurrent_conv = nn.Conv2d(filters, 4 * filters, 3, padding=1, bias=False)
        self.gate = hard_sigmoid if recurrent_activation == "hard_sigmoid" else torch.sigmoid

    def forward(self, steps: list[torch.Tensor]) -> torch.Tensor:
        """steps: tensors N x c_in x H x W in the order read -> N x filters x H x W."""
        h, c = self._step(steps[0], None, None)
        for x in steps[1:]:
            h, c = self._step(x, h, c)
        return h

    def _step(
        self, x: torch.Tensor, h: torch.Tensor | None, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.input_conv(x)
        if h is not None:
            z = z + self.recurrent_conv(h)
        zi, zf, zc, zo = torch.chunk(z, 4, dim=1)
        candidate = self.gate(zi) * torch.tanh(zc)
        c = candidate if c is None else self.gate(zf) * c + candidate
        return self.gate(zo) * torch.tanh(c), c


class UpLevel(nn.Module):
    """ConvTranspose 2x2/2 -> BN -> ReLU, backward ConvLSTM over (skip, up), conv pair."""

    def __init__(self, c_in: int, c_out: int, recurrent_activation: str) -> None:
        super().__init__()
        self.up = nn.Sequential(
            UpConv2x2(c_in, c_out),
            nn.BatchNorm2d(c_out, **KERAS_BN),
            nn.ReLU(inplace=True),
        )
        self.lstm = ConvLSTM(c_out, c_out // 2, recurrent_activation)
        self.conv = ConvPair(c_out // 2, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # the sequence is (skip, up); go_backwards=True reads it as (up, skip)
        return self.conv(self.lstm([self.up(x), skip]))


class BCDUNet(SegmentationModel):
    """BCDU-Net D3: N x C x H x W -> [N x 1 x H x W vessel logit].

    Any H, W (padded to a multiple of 8 inside and cropped back); the reference needs square
    inputs because of its reshapes, this one does not.
    """

    name = "bcdu-net"
    config_class = BCDUNetConfig
    size_multiple = 8

    def __init__(self, config: BCDUNetConfig | None = None) -> None:
        super().__init__(config or BCDUNetConfig())
        cfg: BCDUNetConfig = self.config  # type: ignore[assignment]
        k, act = cfg.base_channels, cfg.recurrent_activation
        self.enc1 = ConvPair(cfg.in_channels, k)
        self.enc2 = ConvPair(k, 2 * k)
        self.enc3 = ConvPair(2 * k, 4 * k)
        self.dense = nn.ModuleList([ConvPair(4 * k, 8 * k)])
        if cfg.dense_blocks == 3:
            self.dense.append(ConvPair(8 * k, 8 * k))
            self.dense.append(ConvPair(16 * k, 8 * k))
        self.drop = Dropout(cfg.dropout)
        self.up3 = UpLevel(8 * k, 4 * k, act)
        self.up2 = UpLevel(4 * k, 2 * k, act)
        self.up1 = UpLevel(2 * k, k, act)
        self.head = nn.Sequential(nn.Conv2d(k, 2, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(2, 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's Keras initialisers (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                he_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ConvLSTM):
                f = m.filters
                with torch.no_grad():
                    m.input_conv.bias[f : 2 * f].fill_(1.0)  # Keras unit_forget_bias
                # Keras: orthogonal on the (3 * 3 * filters) x (4 * filters) recurrent matrix
                w = m.recurrent_conv.weight  # 4f x f x 3 x 3
                flat = torch.empty(w.shape[1] * 9, w.shape[0])
                nn.init.orthogonal_(flat)
                with torch.no_grad():
                    w.copy_(flat.t().reshape(w.shape))
        nn.init.xavier_uniform_(self.out.weight)  # Keras default for the final 1x1

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.enc1(x)
        f2 = self.enc2(F.max_pool2d(f1, 2))
        f3 = self.enc3(F.max_pool2d(f2, 2))
        b = b1 = self.drop(self.dense[0](F.max_pool2d(f3, 2)))
        if len(self.dense) == 3:
            b2 = self.drop(self.dense[1](b1))
            b = self.drop(self.dense[2](torch.cat([b2, b1], 1)))
        d = self.up3(b, self.drop(f3))
        d = self.up2(d, f2)
        d = self.up1(d, f1)
        return [self.out(self.head(d))]


def he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras ``he_normal`` in place: truncated normal (+-2 sd), sd sqrt(2 / fan_in) / 0.8796.

    fan_in = weight.shape[1] * kernel area: input channels for a conv and, as in Keras,
    output channels for a transposed conv. Sampled by the inverse CDF (one pass, no
    rejection loop: 20 M weights in a fraction of a second).
    """
    fan_in = weight.shape[1] * weight[0, 0].numel()
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    edge = math.erf(2.0 / math.sqrt(2.0))  # 2 Phi(2) - 1
    with torch.no_grad():
        weight.uniform_(-edge, edge).erfinv_().mul_(std * math.sqrt(2.0))
        return weight.clamp_(-2.0 * std, 2.0 * std)


# ------------------------------------------------------------------ registration
# (imported here so that registering the network stays in these lines; see models/registry.py)
from octvessel.models.recipes import REFERENCE_RECIPES, RETINA_UNET_PREPROCESSING  # noqa: E402
from octvessel.models.registry import ModelSpec, register_model  # noqa: E402

register_model(
    ModelSpec(
        "bcdu-net",
        BCDUNet,
        {"in_channels": 1},
        "BCDU-Net D3 (Azad et al. 2019): 64-128-256 encoder, dense 512 bottleneck, ConvLSTM skips",
        preprocessing=RETINA_UNET_PREPROCESSING,
        recipe=REFERENCE_RECIPES["bcdu-net"],
        reference_parameters=20_659_717,
        parameter_convention="keras",
    )
)
