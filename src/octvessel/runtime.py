"""Where code runs: the one device chooser, the torchrun rank parser, the malloc switch.

Shared by inference (``Predictor``), training and cross-validation so a device name or a
``RANK``/``WORLD_SIZE`` pair means the same thing everywhere.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

from octvessel.errors import UsageError

#: device names the command line accepts besides ``cuda:N``
DEVICES = ("auto", "cpu", "cuda")


def select_device(
    name: str | torch.device | None = "auto", *, local_rank: int | None = None
) -> torch.device:
    """The torch device ``name`` means: ``auto`` (CUDA when available, else CPU), ``cpu``,
    ``cuda``, ``cuda:N`` or any other torch device string.

    ``local_rank`` (torchrun's ``LOCAL_RANK``) picks the GPU of ``auto``/``cuda`` without an
    index. Raises :class:`UsageError` for an unknown name or a CUDA device that is not here.
    """
    if name is None or (isinstance(name, str) and name == "auto"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        name = "cuda"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UsageError(
            f"device={name!r}: expected auto, cpu, cuda, cuda:N (or another torch device)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device={name!r}: no CUDA device is available here; use cpu")
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
        if (device.index or 0) >= torch.cuda.device_count():
            raise UsageError(
                f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    return device


def default_device() -> torch.device:
    """CUDA when available, else CPU (``select_device("auto")``)."""
    return select_device("auto")


@dataclass(frozen=True)
class DistEnv:
    """This process's place under torchrun: rank of world, and its rank on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def dist_env() -> DistEnv:
    """Parse torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (0 of 1 without them).

    Raises:
        UsageError: values that are not integers, or not 0 <= RANK < WORLD_SIZE.
    """
    env = os.environ
    try:
        rank = int(env.get("RANK", env.get("LOCAL_RANK", "0")))
        world = int(env.get("WORLD_SIZE", env.get("LOCAL_WORLD_SIZE", "1")))
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UsageError(
            f"RANK={env.get('RANK')!r} / WORLD_SIZE={env.get('WORLD_SIZE')!r} / "
            f"LOCAL_RANK={env.get('LOCAL_RANK')!r}: expected integers"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"RANK={rank}, WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    return DistEnv(rank, world, local_rank)


def dist_rank() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun; (0, 1) otherwise."""
    env = dist_env()
    return env.rank, env.world


_REUSE_APPLIED: list[bool] = []


def reuse_freed_memory() -> bool:
    """Let this process keep and reuse freed memory instead of handing it back (glibc only).

    By default glibc serves every allocation above ~32 MB with a fresh ``mmap`` and returns
    it on free, so each forward pass over a big image page-faults its activations in anew
    (about 470,000 faults per DRIVE-sized IterNet pass). Raising ``M_MMAP_THRESHOLD`` and
    ``M_TRIM_THRESHOLD`` to 1 GiB / 2 GiB keeps that memory in the process for the next
    image: on 2 CPU cores the fp32 whole-image pass drops from ~3.3 s to ~1.8 s, and peak
    RSS grows by ~30 %. Training on CPU gains as much (IterNet, 32 crops of 128^2 in bf16:
    ~61 -> ~112 kpixels/s, ``benchmarks/train_throughput.py``). Process-wide and one-way;
    the predict/evaluate commands, :class:`~octvessel.inference.Predictor`
    (``reuse_memory=True``) and training on CPU call it. Set the environment variable ``OCTVESSEL_MALLOC_TUNING=0`` to leave the
    allocator alone.

    Returns:
        True when the settings were applied (now or before).
    """
    if _REUSE_APPLIED:
        return _REUSE_APPLIED[0]
    ok = False
    if os.environ.get("OCTVESSEL_MALLOC_TUNING", "1") != "0" and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_threshold = -1, -3
            ok = bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(
                libc.mallopt(m_trim_threshold, (1 << 31) - 1)
            )
        except (OSError, AttributeError):
            ok = False
    _REUSE_APPLIED.append(ok)
    return ok


__all__ = [
    "DEVICES",
    "DistEnv",
    "default_device",
    "dist_env",
    "dist_rank",
    "reuse_freed_memory",
    "select_device",
]
