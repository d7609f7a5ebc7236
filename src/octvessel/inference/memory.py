"""The memory model of inference: budgets (``--max-memory``) and per-pass estimates.

All sizes are megabytes (binary: 1 GB = 1024 MB) unless a name says bytes. Estimates are
made for the grid the network works on: after the physical scale (an input brought to its
model's pixel size, :mod:`octvessel.inference.scale`) or ``input_size``/``input_scale``,
so a 3000 x 3000 photograph shrunk to 900 x 900 is sized as 900 x 900.
"""

from __future__ import annotations

import math
import os
import re

import torch

from octvessel.errors import UsageError
from octvessel.inference.config import InferenceConfig
from octvessel.runtime import default_device

#: units of memory sizes; binary, as docker's and the JVM's (4GB = 4 GiB = 4096 MB)
_UNITS = {
    "": 2**20,  # a bare number means megabytes
    "b": 1,
    "k": 2**10, "kb": 2**10, "kib": 2**10,
    "m": 2**20, "mb": 2**20, "mib": 2**20,
    "g": 2**30, "gb": 2**30, "gib": 2**30,
    "t": 2**40, "tb": 2**40, "tib": 2**40,
}  # fmt: skip


def parse_memory(text: str | int | float) -> int:
    """A memory size in megabytes: ``"4GB"`` (4096), ``"1.5G"``, ``"512MB"``, ``"800"`` (MB).

    Units are binary (1 GB = 1024 MB), as in docker's and the JVM's memory options.

    Raises:
        UsageError: not a positive size with an optional unit (B, KB, MB, GB, TB, KiB ...).
    """
    if isinstance(text, bool):
        raise UsageError(f"memory size {text!r}: expected e.g. 4GB, 512MB or auto")
    if isinstance(text, (int, float)):
        number, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
        if m is None or m.group(2) not in _UNITS:
            raise UsageError(
                f"memory size {text!r}: expected a number with a unit, e.g. 4GB, 512MB, 1.5GiB, "
                "or auto"
            )
        number, unit = float(m.group(1)), m.group(2)
    mb = number * _UNITS[unit] / 2**20
    if not math.isfinite(mb) or mb < 1:
        raise UsageError(f"memory size {text!r}: expected at least 1 MB")
    return int(mb)


def available_memory_mb() -> int | None:
    """Memory available to new allocations now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20)
    except (ValueError, OSError, AttributeError):
        return None


def auto_memory_budget_mb(device: str | torch.device | None = None) -> int:
    """Half the memory available now, rounded down to 256 MB, between 512 MB and 16 GB.

    On a CUDA ``device`` (default: CUDA when available) the free GPU memory counts, else
    the free RAM; processes started together by torchrun (``LOCAL_WORLD_SIZE``) share it.
    Unknown available memory gives the library default, 2048 MB.
    """
    dev = torch.device(device) if device is not None else default_device()
    avail: int | None
    if dev.type == "cuda" and torch.cuda.is_available():
        try:
            avail = int(torch.cuda.mem_get_info(dev)[0] // 2**20)
        except (RuntimeError, AssertionError):
            avail = None
    else:
        avail = available_memory_mb()
    if avail is None:
        return InferenceConfig.memory_budget_mb
    try:
        sharing = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        sharing = 1
    return int(min(16384, max(512, (avail // 2 // sharing) // 256 * 256)))


def format_mb(mb: float) -> str:
    """``2.1 GB`` / ``350 MB`` for messages."""
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def activation_bytes_per_pixel(model: torch.nn.Module, bf16: bool = False) -> float:
    """Estimated peak inference memory of ``model`` per input pixel, in bytes.

    A model may define ``activation_bytes_per_pixel`` itself. Otherwise IterNet-style
    configs (``base_channels`` k, ``iterations`` n) give (9 + 2 n) k + 48 floats per pixel
    (measured peak RSS on CPU plus ~10 %: DRIVE, 576 x 592 after padding, k = 32, n = 3:
    ~0.6 GB measured, 0.7 GB estimated); other models are assumed to be like k = 32, n = 3.
    bfloat16 autocast needs about 0.65 of that.
    """
    own = getattr(model, "activation_bytes_per_pixel", None)
    if isinstance(own, (int, float)) and not isinstance(own, bool):
        return float(own) * (0.65 if bf16 else 1.0)
    cfg = getattr(model, "config", None)
    k = getattr(cfg, "base_channels", 32)
    iterations = getattr(cfg, "iterations", 3)
    floats = (9 + 2 * iterations) * k + 48
    return floats * 4.0 * (0.65 if bf16 else 1.0)


def estimate_memory(model: torch.nn.Module, shape: tuple[int, int], bf16: bool = False) -> int:
    """Estimated peak bytes of one forward pass over an image of ``shape`` (H, W)."""
    mult = int(getattr(model, "size_multiple", 1) or 1)
    h, w = (-(-shape[0] // mult) * mult, -(-shape[1] // mult) * mult)
    return int(activation_bytes_per_pixel(model, bf16) * h * w)


def choose_method(model: torch.nn.Module, shape: tuple[int, int], config: InferenceConfig) -> str:
    """The method ``auto`` resolves to for a network grid of ``shape``."""
    if config.method != "auto":
        return config.method
    budget = config.memory_budget_mb * 2**20
    return "whole" if estimate_memory(model, shape, config.bf16) <= budget else "tiles"


def check_whole_fits(
    model: torch.nn.Module, shape: tuple[int, int], config: InferenceConfig, margin: int = 0
) -> None:
    """Refuse a whole-image pass whose estimated memory exceeds ``memory_budget_mb``.

    ``shape``: the network grid (H, W); ``margin``: the mirrored margin added on each side.
    """
    need = estimate_memory(model, (shape[0] + 2 * margin, shape[1] + 2 * margin), config.bf16)
    need /= 2**20
    if need > config.memory_budget_mb:
        with_margin = f" (with its {margin} px mirrored margins)" if margin else ""
        raise UsageError(
            f"whole-image inference on a {shape[1]}x{shape[0]} grid{with_margin} needs about "
            f"{format_mb(need)}, above the memory budget of {format_mb(config.memory_budget_mb)} "
            "(--max-memory); use --method tiles (or auto), or raise --max-memory"
        )


#: bytes per image pixel that windowed inference keeps besides the windows' activations:
#: the channels-last and padded copies of a 3-channel input, the blended sum, the weights,
#: the probability map
STITCH_BYTES_PER_PIXEL = 40


__all__ = [
    "STITCH_BYTES_PER_PIXEL",
    "activation_bytes_per_pixel",
    "auto_memory_budget_mb",
    "available_memory_mb",
    "check_whole_fits",
    "choose_method",
    "estimate_memory",
    "format_mb",
    "parse_memory",
]
