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


# ----------------------------------------------------------------- the default: "auto"

#: accepted by ``--precision``: ``auto`` resolves to bf16 where the hardware has it, else fp32
PRECISION_CHOICES = ("auto", *PRECISIONS)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True on CPUs with bf16 arithmetic (AVX512-BF16 or AMX-BF16 in ``/proc/cpuinfo``'s flags).

    Without them bf16 autocast is emulated and slower than fp32. ``cpuinfo``: the text of
    ``/proc/cpuinfo`` (read when None; an unreadable file counts as no bf16).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CUDA with bf16 support or a CPU with native bf16, else ``fp32``.

    Other values are returned unchanged (after checking them).
    """
    if precision not in PRECISION_CHOICES:
        raise UsageError(
            f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}"
        )
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"
