"""Mixed-precision contexts shared by training and inference."""

from __future__ import annotations

import contextlib

import torch

from octvessel.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` on ``device``.

    ``fp32``: none. ``bf16``: bfloat16 autocast (CPU with AVX-512 bf16/AMX or CUDA; convolutions
    2-4x faster here). ``fp16``: float16 autocast, CUDA only (pair it with a gradient scaler).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("precision=fp16 needs CUDA; use bf16 on a CPU")
    return torch.autocast(
        device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16
    )
