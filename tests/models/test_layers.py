"""UpConv2x2 is nn.ConvTranspose2d(c_in, c_out, 2, stride=2) in values, gradients and keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from octvessel.models.layers import UpConv2x2


def _pair(c_in=6, c_out=5):
    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
    up = UpConv2x2(c_in, c_out)
    up.load_state_dict(ref.state_dict())
    return ref, up


@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_match_the_transposed_convolution(channels_last):
    ref, up = _pair()
    x = torch.randn(3, 6, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ref(xa), up(xb)
    assert yb.shape == (3, 5, 14, 18)
    assert "PixelShuffle" in type(yb.grad_fn).__name__  # the 1 x 1 form while training on CPU
    torch.testing.assert_close(yb, ya, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(up.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(up.bias.grad, ref.bias.grad, atol=1e-4, rtol=1e-5)


def test_bf16_autocast_and_inference_give_the_same_values():
    ref, up = _pair(16, 8)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        train_form = up(x)
        with torch.inference_mode():
            infer_form = up(x)
        expected = ref(x)
    assert train_form.dtype == torch.bfloat16 and train_form.requires_grad
    assert not infer_form.requires_grad
    torch.testing.assert_close(train_form.float(), expected.float(), atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(infer_form.float(), expected.float(), atol=2e-2, rtol=1e-2)


def test_same_parameters_and_state_dict_keys():
    ref, up = _pair()
    assert isinstance(up, nn.ConvTranspose2d)
    assert list(up.state_dict()) == list(ref.state_dict())
    assert up.weight.shape == ref.weight.shape == (6, 5, 2, 2)
