"""Element-wise dropout from cheap random bits: ``nn.Dropout``'s semantics at a fraction of its cost.

``F.dropout`` draws one random number per element (CPU: 12-19 ms for 2 M bf16 elements on
2 cores; IterNet calls it ~50 times per forward, which costs more than all its convolutions).
Here one 64-bit draw gives eight independent 8-bit numbers (``benchmarks/dropout_cost.py``;
the issue's "several masks at 1/256 resolution of p"). On CPU the 64-bit words come from
numpy's SFC64 generator, seeded for every call with one draw of torch's default generator,
in fixed chunks made on torch's thread count at once (numpy releases the GIL; SFC64 fills
4 M words in ~7 ms on one core, torch's mt19937 in ~12-50 ms), and the mask is built as the
scaled values themselves (``0`` or ``1 / (1 - q)`` in the tensor's dtype), so applying it
is one multiplication. Semantics are the reference's:

- element-wise, independently per element and per step (a fresh mask every call);
- drop probability ``p`` at 1/256 resolution (:data:`BITS`): ``q = round(p * 256) / 256``
  (``p = 0.1`` -> ``q = 26/256 = 0.1016``, :func:`effective_p`; models record it), kept
  elements scaled by ``1 / (1 - q)`` (rounded to the tensor's dtype, as ``F.dropout``'s
  is), so the expectation is the input's. ``BITS = 16`` gives 1/65536 (four values per
  word; the trainer before 2026-12-06);
- every bit derives from torch's default generator of the tensor's device, so results are
  reproducible under ``torch.manual_seed`` and an exact resume that restores the RNG state
  stays bit-identical;
- autograd multiplies the gradient by the same mask; eval mode (or ``p == 0``) is identity.

:func:`relu_dropout` fuses IterNet's ``ReLU -> Dropout`` (in place on the convolution's
output, no mask kept for the backward pass: where the output is positive the element was
kept and its gradient is scaled, elsewhere the gradient is zero, exactly as the two layers
give it); :class:`~octvessel.models.iternet.ConvBlock` uses it. Under ``torch.compile``
both fall back to ``F.dropout``, whose random numbers the compiler generates inside the
fused kernel (same semantics, its own stream).

Accuracy (docs/training.md, "Time to accuracy"): on the short DRIVE recipe these masks
and torch's ``F.dropout`` end within the recipe's seed-to-seed spread (DRIVE AUC
0.9618-0.9625 over three runs with these, 0.9573 and 0.9694 over two seeds with torch's).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

#: bits per random value (8: eight values per 64-bit word, p at 1/256 resolution; 16: four
#: values per word, p at 1/65536). Read at every call, so a benchmark can set 16 to time the
#: finer setting (the trainer before 2026-12-06).
BITS = 8

#: signed numpy / torch integer types per value width (values compared with an offset)
_SIGNED = {8: (np.int8, torch.int8), 16: (np.int16, torch.int16)}


def levels() -> int:
    """Resolution of the drop probability: ``2 ** BITS`` (256)."""
    return 1 << BITS


def drop_threshold(p: float) -> int:
    """How many of the ``levels()`` random values drop an element: ``round(p * levels())``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    return round(p * levels())


def effective_p(p: float) -> float:
    """The drop probability actually used for ``p``: ``drop_threshold(p) / levels()``
    (``0.1 -> 26/256 = 0.1016``)."""
    return drop_threshold(p) / levels()


#: 64-bit words per independently seeded chunk of CPU random bits (8 M values at 8 bits):
#: fixed, so the bits do not depend on how many threads make them
CHUNK_WORDS = 1 << 20
_UINT64_MAX = np.iinfo(np.uint64).max
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max(1, torch.get_num_threads())))
    return _POOL[0]


def _cpu_words(n_words: int, per_word: int, out: Callable[[np.ndarray, slice], None]) -> None:
    """Make ``n_words`` uniform 64-bit words and hand each chunk to ``out(words, slice)``,
    the slice being the chunk's ``per_word`` values per word in the flat output.

    One draw of torch's default CPU generator seeds the call; chunk ``i`` comes from
    ``SFC64`` seeded with the ``i``-th word of that seed's ``SeedSequence``. numpy releases
    the GIL while it fills and compares, so chunks run on torch's thread count at once.
    """
    seed = int(torch.empty((), dtype=torch.int64).random_(0, None).item())
    starts = range(0, n_words, CHUNK_WORDS)
    seeds = np.random.SeedSequence(seed).generate_state(len(starts), np.uint64)

    def make(i: int) -> None:
        size = min(CHUNK_WORDS, n_words - starts[i])
        gen = np.random.Generator(np.random.SFC64(int(seeds[i])))
        words = gen.integers(0, _UINT64_MAX, size, dtype=np.uint64, endpoint=True)
        out(words, slice(per_word * starts[i], per_word * (starts[i] + size)))

    if len(starts) == 1:
        make(0)
    else:
        list(_pool().map(make, range(len(starts))))


def _word_layout(n: int) -> tuple[int, int]:
    """``(values per 64-bit word, words)`` that hold ``n`` ``BITS``-bit values."""
    per_word = 64 // BITS
    return per_word, (n + per_word - 1) // per_word


def random_values(n: int, device: torch.device) -> torch.Tensor:
    """``n`` uniform signed ``BITS``-bit integers (flat; int8 at 8 bits), ``64 // BITS`` per
    64-bit word, from the device's default generator (on CPU through one seed drawn from
    it: see :func:`_cpu_words`)."""
    np_int, torch_int = _SIGNED[BITS]
    per_word, words = _word_layout(n)
    if torch.device(device).type == "cpu":
        values = np.empty(per_word * words, np_int)

        def put(chunk: np.ndarray, where: slice) -> None:
            values[where] = chunk.view(np_int)

        _cpu_words(words, per_word, put)
        return torch.from_numpy(values[:n])
    out = torch.empty(words, dtype=torch.int64, device=device)
    out.random_(-(1 << 63), None)  # the full 64-bit range: every lane uniform
    return out.view(torch_int)[:n]


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Boolean mask shaped and laid out like ``x`` (which must be dense): True keeps an element."""
    bits = random_values(x.numel(), x.device).as_strided(x.shape, x.stride())
    return bits >= drop_threshold(p) - levels() // 2


#: bit patterns of the scaled mask values: numpy integer type per torch dtype
_PATTERNS = {
    torch.float32: (np.uint32, torch.int32),
    torch.bfloat16: (np.uint16, torch.int16),
    torch.float16: (np.uint16, torch.int16),
    torch.float64: (np.uint64, torch.int64),
}


def mask_scale(p: float, dtype: torch.dtype) -> torch.Tensor:
    """The kept elements' factor ``1 / (1 - effective_p(p))``, rounded to ``dtype`` (as
    ``F.dropout``'s is)."""
    q = drop_threshold(p)
    return torch.tensor(levels() / (levels() - q), dtype=dtype)


def scaled_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A fresh mask shaped and laid out like dense ``x``, in ``x``'s dtype: ``1 / (1 - q)``
    where an element is kept, 0 where it is dropped (``x * scaled_mask(x, p)`` is dropout)."""
    scale = mask_scale(p, x.dtype)
    if x.device.type != "cpu" or x.dtype not in _PATTERNS:
        return keep_mask(x, p).to(x.dtype).mul_(scale.to(x.device))
    np_int, torch_int = _PATTERNS[x.dtype]
    pattern = np_int(int(scale.view(torch_int).item()) % (1 << (8 * np.dtype(np_int).itemsize)))
    value_int = _SIGNED[BITS][0]
    n = x.numel()
    per_word, words = _word_layout(n)
    values = np.empty(per_word * words, np_int)
    threshold = value_int(drop_threshold(p) - levels() // 2)

    def put(chunk: np.ndarray, where: slice) -> None:  # 0 or the scale's bits, per element
        keep = chunk.view(value_int) >= threshold
        np.multiply(keep.view(np.uint8), pattern, out=values[where], dtype=np_int)

    _cpu_words(words, per_word, put)
    return torch.from_numpy(values[:n]).view(x.dtype).as_strided(x.shape, x.stride())


def _dense(x: torch.Tensor) -> torch.Tensor:
    if x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted element-wise dropout of ``x`` (any shape, dtype, device); identity unless training."""
    if not training or drop_threshold(p) == 0:
        return x
    if torch.compiler.is_compiling():  # the compiler fuses its own random numbers in
        return nn.functional.dropout(x, p, True)
    x = _dense(x)
    return x * scaled_mask(x, p)


class _ReLUDropout(torch.autograd.Function):
    """In place: ``x = relu(x) * mask``; backward ``grad * scale`` where the output is > 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:  # type: ignore[override]
        x.relu_().mul_(scaled_mask(x, p))
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.scale = mask_scale(p, x.dtype).item()  # as the mask's
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (out,) = ctx.saved_tensors
        # the gradient where the output is positive (kept, and past the ReLU), scaled
        return torch.ops.aten.threshold_backward(grad, out, 0).mul_(ctx.scale), None


def relu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``dropout(relu(x), p)``, in place on ``x`` (e.g. a convolution's output, which nothing
    else keeps) and without storing a mask: same values and gradients as the two layers."""
    if not training or drop_threshold(p) == 0:
        return torch.relu(x) if x.is_leaf and x.requires_grad else torch.relu_(x)
    if torch.compiler.is_compiling():  # one fused kernel with the compiler's random numbers
        return nn.functional.dropout(torch.relu(x), p, True)
    x = _dense(x)
    if x.is_leaf and x.requires_grad:
        x = x.clone()  # in-place on a leaf is not allowed
    return _ReLUDropout.apply(x, p)


class Dropout(nn.Dropout):
    """Drop-in for ``nn.Dropout(p)`` (a subclass: same state dict, ``isinstance`` checks hold)."""

    def __init__(self, p: float = 0.5) -> None:
        drop_threshold(p)
        super().__init__(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def dropout_record(model: nn.Module) -> dict[str, object]:
    """What the model's cheap dropout layers really draw, for run records: the random bits
    per value and, per configured ``p``, the drop probability used (``{"0.1": 0.1015625}``)."""
    ps = sorted({m.p for m in model.modules() if isinstance(m, Dropout) and m.p > 0})
    return {"random_bits": BITS, "p_effective": {f"{p:g}": effective_p(p) for p in ps}}
