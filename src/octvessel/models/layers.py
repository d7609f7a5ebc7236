"""Layers shared by the networks, drop-in for ``torch.nn`` ones (same parameters, same keys)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UpConv2x2(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(c_in, c_out, 2, stride=2)`` that trains faster on CPU.

    A 2 x 2, stride-2 transposed convolution is a 1 x 1 convolution to ``4 c_out``
    channels followed by ``pixel_shuffle(2)``: each input pixel writes its own 2 x 2 block
    and no two blocks overlap. oneDNN's weight gradient of the transposed convolution is slow
    on CPU (bf16, channels_last, 32 x 64 x 64 x 64 -> 32 x 128 x 128: 33 ms against 5 ms for
    the 1 x 1 form), so on CPU while gradients are being recorded the 1 x 1 form is used;
    without them (inference), and on other devices (not measured there), the transposed
    convolution is, as its forward is the faster one on CPU. Both give the same values
    (bit-identical in bf16 on this CPU) and the weights are ``nn.ConvTranspose2d``'s:
    (c_in, c_out, 2, 2), state-dict keys ``weight`` and ``bias``.

    Input (N, c_in, H, W) -> output (N, c_out, 2H, 2W), any float dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 2, stride=2, bias=bias)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        training = torch.is_grad_enabled() and self.weight.requires_grad
        if output_size is not None or not training or x.device.type != "cpu":
            return super().forward(x, output_size)
        c_in, c_out = self.in_channels, self.out_channels
        # channel co * 4 + a * 2 + b of the 1 x 1 output is pixel (2h + a, 2w + b) of co
        weight = self.weight.permute(1, 2, 3, 0).reshape(c_out * 4, c_in, 1, 1)
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(x, weight, bias), 2)
