"""torchrun support: read the process's rank from the environment, set up and tear down.

Under ``torchrun --nproc_per_node=N -m octvessel train ...`` every process runs the same
command; ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` tell them apart. gloo is used on CPU and
nccl on CUDA. Without those variables everything is a single process (rank 0 of 1).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from octvessel.runtime import DistEnv, dist_env


def env_from_os() -> DistEnv:
    """The process's place under torchrun (or 0 of 1); parsed by :func:`octvessel.runtime.dist_env`."""
    return dist_env()


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
