"""The cheap dropout keeps nn.Dropout's semantics: rate, independence, fresh masks, seeds, autograd."""

from __future__ import annotations

import math

import pytest
import torch

from octvessel.models import dropout as cheap
from octvessel.models.dropout import (
    Dropout,
    drop_threshold,
    dropout,
    effective_p,
    keep_mask,
    levels,
    relu_dropout,
)

P = 0.1
Q = effective_p(P)  # the drop probability actually used (1/256 resolution: 26/256)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().ravel(), b.double().ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_drop_probability_is_p_at_1_over_256():
    assert levels() == 256 and Q == 26 / 256
    assert abs(Q - P) <= 0.5 / levels()
    assert drop_threshold(0.0) == 0
    with pytest.raises(ValueError, match="dropout p"):
        drop_threshold(1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rate_scale_dtype_and_layout(dtype):
    torch.manual_seed(0)
    x = torch.ones(2, 32, 256, 256, dtype=dtype).contiguous(memory_format=torch.channels_last)
    y = dropout(x, P)
    assert y.dtype == dtype and y.shape == x.shape
    assert y.is_contiguous(memory_format=torch.channels_last)
    dropped = (y == 0).double().mean().item()
    sigma = math.sqrt(Q * (1 - Q) / x.numel())
    assert abs(dropped - Q) < 6 * sigma  # 6 sigma: about 1 in 10^9 to fail by chance
    kept = y[y != 0]
    scale = torch.tensor(1 / (1 - Q), dtype=dtype)  # rounded to the dtype, as F.dropout's is
    assert torch.equal(kept, torch.full_like(kept, scale.item()))  # inverted scaling
    assert abs(y.double().mean().item() - (1 - Q) * scale.item()) < 6 * sigma * scale.item()


def test_no_correlation_across_elements_lanes_or_channels():
    torch.manual_seed(1)
    x = torch.ones(1, 32, 128, 128).contiguous(memory_format=torch.channels_last)
    m = keep_mask(x, P)
    flat = m.permute(0, 2, 3, 1).reshape(-1)  # memory order: 8 consecutive ones share a 64-bit draw
    bound = 5 / math.sqrt(flat.numel())
    for lag in range(1, 17):
        assert abs(_corr(flat[:-lag], flat[lag:])) < bound, lag
    lanes = flat.view(-1, 8)
    sigma = math.sqrt(Q * (1 - Q) / lanes.shape[0])
    for j in range(8):  # every 8-bit lane of the 64-bit word drops at the same rate
        assert abs((~lanes[:, j]).double().mean().item() - Q) < 6 * sigma
    assert abs(_corr(m[:, :-1], m[:, 1:])) < 5 / math.sqrt(m[:, 1:].numel())  # channels
    assert abs(_corr(m[..., :-1, :], m[..., 1:, :])) < 5 / math.sqrt(m[..., 1:, :].numel())  # rows


def test_fresh_mask_every_step_and_deterministic_under_seed():
    x = torch.ones(4, 16, 64, 64)
    torch.manual_seed(3)
    a, b = keep_mask(x, P), keep_mask(x, P)
    overlap = (a == b).double().mean().item()
    expected = Q * Q + (1 - Q) * (1 - Q)  # independent masks agree this often
    assert abs(overlap - expected) < 0.01
    torch.manual_seed(3)
    assert torch.equal(keep_mask(x, P), a) and torch.equal(keep_mask(x, P), b)


def test_sixteen_bit_values_give_p_at_1_over_65536(monkeypatch):
    """The finer setting (the trainer before 2026-12-06) still works: four values per word."""
    monkeypatch.setattr(cheap, "BITS", 16)
    q16 = effective_p(P)
    assert levels() == 65536 and abs(q16 - P) <= 0.5 / 65536 and q16 != Q
    torch.manual_seed(10)
    x = torch.ones(1, 32, 256, 256, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last
    )
    y = relu_dropout(x.clone(), P)
    assert abs((y == 0).double().mean().item() - q16) < 6 * math.sqrt(q16 * (1 - q16) / x.numel())
    assert set(y.unique().tolist()) == {
        0.0,
        torch.tensor(1 / (1 - q16), dtype=torch.bfloat16).item(),
    }


def test_eval_mode_and_p_zero_are_identity():
    x = torch.randn(2, 3, 8, 8)
    layer = Dropout(P).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x
    assert isinstance(layer, torch.nn.Dropout) and layer.p == P and not layer.state_dict()


def test_gradient_uses_the_forward_mask():
    torch.manual_seed(4)
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64, requires_grad=True)
    y = dropout(x, P)
    g = torch.randn_like(y)
    y.backward(g)
    mask = (y != 0).double()
    assert torch.allclose(x.grad, g * mask / (1 - Q))
    assert torch.allclose(y, x.detach() * mask / (1 - Q))


def test_non_dense_input():
    torch.manual_seed(5)
    x = torch.ones(8, 8, 8)[:, ::2]  # a strided view
    y = dropout(x, 0.5)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_semantics():
    torch.manual_seed(6)
    x = torch.ones(1, 32, 256, 256, device="cuda", dtype=torch.bfloat16)
    y = dropout(x, P)
    assert y.device.type == "cuda"
    assert abs((y == 0).double().mean().item() - Q) < 6 * math.sqrt(Q * (1 - Q) / x.numel())
    torch.manual_seed(6)
    assert torch.equal(dropout(x, P), y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_relu_dropout_equals_relu_then_dropout_in_values_and_gradients(dtype):
    """IterNet's ConvBlock fuses ReLU -> Dropout in place, keeping no mask for backward."""
    x0 = torch.randn(2, 16, 32, 32).to(dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x0)
    a = x0.clone().requires_grad_(True)
    torch.manual_seed(7)
    ref = dropout(torch.relu(a), P)
    ref.backward(g)
    b = x0.clone().requires_grad_(True)
    torch.manual_seed(7)  # the same draws: the same mask
    out = relu_dropout(b * 1, P)  # a non-leaf, as a convolution's output
    out.backward(g)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, ref) and torch.equal(b.grad, a.grad)
    assert ((out == 0) & (x0 > 0)).double().mean().item() > 0.02  # it did drop kept values
    # eval mode: a plain ReLU; a leaf input is not changed in place
    leaf = x0.clone().requires_grad_(True)
    assert torch.equal(relu_dropout(leaf, P, training=False), torch.relu(x0))
    assert not torch.equal(relu_dropout(leaf, P), relu_dropout(leaf, P))  # fresh masks
    assert torch.equal(leaf.detach(), x0)


def test_iternet_block_uses_the_fused_path_and_a_swapped_dropout_still_runs():
    from octvessel.models.iternet import ConvBlock

    torch.manual_seed(8)
    block = ConvBlock(3, 8, P).train()
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(9)
    fused = block(x)
    torch.manual_seed(9)
    conv1, _, _, conv2, _, _ = block
    manual = dropout(torch.relu(conv2(dropout(torch.relu(conv1(x)), P))), P)
    assert torch.equal(fused, manual)
    block[2] = torch.nn.Dropout(P)  # e.g. the benchmark's old dropout
    block[5] = torch.nn.Dropout(P)
    y = block(x)
    assert y.shape == fused.shape and (y == 0).any()
    assert torch.equal(block.eval()(x), block.eval()(x))  # eval: deterministic
