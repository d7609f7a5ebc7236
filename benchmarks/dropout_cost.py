"""Dropout's cost: ``F.dropout`` against cheaper ways to draw the same element-wise masks.

One 1 x 32 x H x W bf16 channels_last tensor (IterNet's first-level feature on an H x W crop):
forward + backward of every variant, the random draw alone, and one IterNet training step
(forward + backward, bf16 autocast, channels_last) with each variant in all dropout layers.
All in one run, so the ratios are comparable on a noisy machine.

    OMP_NUM_THREADS=2 python benchmarks/dropout_cost.py [--size 256] [--reps 10] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from octvessel.models import create_model
from octvessel.models import dropout as fast

P = 0.1


def bytes_mask(x: torch.Tensor, split64: bool) -> torch.Tensor:
    """Keep mask from 8-bit numbers (p at 1/256 resolution: 26/256 = 0.1016)."""
    n = x.numel()
    if split64:
        b = (
            torch.empty((n + 7) // 8, dtype=torch.int64)
            .random_(-(1 << 63), None)
            .view(torch.uint8)[:n]
        )
    else:
        b = torch.empty(n, dtype=torch.uint8).random_()
    return b.as_strided(x.shape, x.stride()) >= round(P * 256)


def bits(width: int, fn):
    """``fn`` run with :mod:`octvessel.models.dropout` at ``width``-bit random values."""

    def run(*a):
        before, fast.BITS = fast.BITS, width
        try:
            return fn(*a)
        finally:
            fast.BITS = before

    return run


VARIANTS = {
    "F.dropout (reference)": lambda x: F.dropout(x, P, True),
    "bernoulli_ bool mask": lambda x: (
        x * torch.empty_like(x, dtype=torch.bool).bernoulli_(1 - P).to(x.dtype) / (1 - P)
    ),
    "rand_like < 1-p": lambda x: (
        x * (torch.rand_like(x, dtype=torch.float32) >= P).to(x.dtype) / (1 - P)
    ),
    "uint8 random_, 1 draw/element, p@1/256": lambda x: (
        x * bytes_mask(x, False).to(x.dtype) / (1 - 26 / 256)
    ),
    "int64 -> 8 bytes, p@1/256": lambda x: x * bytes_mask(x, True).to(x.dtype) / (1 - 26 / 256),
    "int64 -> 8 int8, p@1/256 (kept)": bits(8, lambda x: fast.dropout(x, P)),
    "int64 -> 4 int16, p@1/65536 (before)": bits(16, lambda x: fast.dropout(x, P)),
    "int64 -> 8 int8, masked_fill": bits(
        8, lambda x: x.masked_fill(~fast.keep_mask(x, P), 0) * (1 / (1 - P))
    ),
    "int64 -> 8 int8, where": bits(
        8, lambda x: torch.where(fast.keep_mask(x, P), x * (1 / (1 - P)), 0)
    ),
    "no dropout": lambda x: x,
}


class Wrap(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) if self.training else x


def timed(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def layer_ms(fn, x0: torch.Tensor, reps: int) -> float:
    def step():
        x = x0.detach().requires_grad_()
        fn(torch.relu(x)).backward(torch.ones_like(x0))

    return timed(step, reps)


def swap_dropout(model: nn.Module, fn) -> None:
    for name, child in model.named_children():
        if isinstance(child, (nn.Dropout, fast.Dropout)):
            setattr(model, name, Wrap(fn))
        else:
            swap_dropout(child, fn)


def step_ms(fn, size: int, reps: int) -> tuple[float, int]:
    torch.manual_seed(0)
    model = create_model("iternet", in_channels=1).to(memory_format=torch.channels_last).train()
    swap_dropout(model, fn)
    calls = [0]
    n = [0]

    def count(_m, inp, _out):
        calls[0] += 1
        n[0] += inp[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, Wrap)]
    x = torch.rand(1, 1, size, size).contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        sum(o.float().mean() for o in out).backward()

    step()
    per_forward = (calls[0], n[0])
    for h in hooks:
        h.remove()
    return timed(step, reps), per_forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--step-reps", type=int, default=3)
    ap.add_argument(
        "--compile", action="store_true", help="also torch.compile the ReLU+dropout pair"
    )
    args = ap.parse_args()
    s = args.size
    x0 = torch.randn(1, 32, s, s).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    n = x0.numel()
    print(
        f"dropout p={P} on 1x32x{s}x{s} bf16 channels_last ({n / 1e6:.2f} M elements), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print("random draw alone (ms):")
    draws = {
        "bernoulli_ bf16 (F.dropout's draw)": lambda: torch.empty_like(x0).bernoulli_(1 - P),
        "uint8 random_ (1 draw/element)": lambda: torch.empty(n, dtype=torch.uint8).random_(),
        "SFC64 words -> 4 int16 (n/4 words)": bits(16, lambda: fast.random_values(n, x0.device)),
        "SFC64 words -> 8 int8 (n/8 words, kept)": bits(
            8, lambda: fast.random_values(n, x0.device)
        ),
        "int64 random_ full range, n/8 words": lambda: torch.empty(
            n // 8, dtype=torch.int64
        ).random_(-(1 << 63), None),
    }
    for name, fn in draws.items():
        print(f"  {name:45s} {timed(fn, args.reps):7.2f}")
    # one generator call for all layers of a forward vs one per layer (IterNet: 64 layers)
    sizes = [n] * 64
    t_many = timed(
        lambda: [fast.random_values(k, x0.device) for k in sizes], max(1, args.reps // 4)
    )
    t_one = timed(lambda: fast.random_values(sum(sizes), x0.device), max(1, args.reps // 4))
    print(f"  64 draws of {n} values vs one draw of all: {t_many:.2f} vs {t_one:.2f} ms")
    print("ReLU -> dropout, forward + backward (ms):")
    results = {}
    for name, fn in VARIANTS.items():
        results[name] = layer_ms(fn, x0, args.reps)
        print(
            f"  {name:45s} {results[name]:7.2f}  x{results['F.dropout (reference)'] / results[name]:.1f}"
        )
    if args.compile:
        pair = torch.compile(lambda x: F.dropout(torch.relu(x), P, True))
        t0 = time.perf_counter()
        xx = x0.detach().requires_grad_()
        pair(xx).backward(torch.ones_like(x0))
        c = time.perf_counter() - t0

        def step():
            x = x0.detach().requires_grad_()
            pair(x).backward(torch.ones_like(x0))

        print(
            f"  {'torch.compile(relu+F.dropout)':45s} {timed(step, args.reps):7.2f}  (compile {c:.1f} s)"
        )
    print(f"IterNet training step (1x1x{s}x{s}, bf16 autocast, channels_last, fwd+bwd), ms:")
    for name in (
        "F.dropout (reference)",
        "int64 -> 4 int16, p@1/65536 (before)",
        "int64 -> 8 int8, p@1/256 (kept)",
        "no dropout",
    ):
        t, (calls, elems) = step_ms(VARIANTS[name], s, args.step_reps)
        print(
            f"  {name:45s} {t:7.1f}   ({calls} dropout calls, {elems / 1e6:.1f} M elements per forward)"
        )


if __name__ == "__main__":
    main()
