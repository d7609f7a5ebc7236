"""torchrun support: read the process's rank from the environment, set up and tear down.

Under ``torchrun --nproc_per_node=N -m octvessel train ...`` every process runs the same
command; ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` tell them apart. gloo is used on CPU and
nccl on CUDA. Without those variables everything is a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def env_from_os() -> DistEnv:
    """The process's place under torchrun (or 0 of 1)."""
    return DistEnv(
        rank=int(os.environ.get("RANK", 0)),
        world=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init(env: DistEnv, device: torch.device) -> None:
    """Join the process group (once) when running under torchrun."""
    if env.active and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown(env: DistEnv) -> None:
    if env.active and dist.is_initialized():
        dist.destroy_process_group()


def any_flag(flag: bool, env: DistEnv, device: torch.device) -> bool:
    """True when ``flag`` is set in any process (a stop request, a NaN loss)."""
    if not env.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()
