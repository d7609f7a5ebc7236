"""The training loop: one epoch of steps, the per-output losses, stop requests (SIGINT/SIGTERM)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from octvessel.errors import OctvesselError
from octvessel.precision import autocast_for
from octvessel.training import distributed
from octvessel.training.config import TrainConfig


class TrainingError(OctvesselError):
    """Training cannot go on (a NaN loss); the last good checkpoint is kept."""

    exit_code = 1


def output_losses(
    outputs: Sequence[torch.Tensor], target: torch.Tensor, region: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Binary cross-entropy of each output (the loss is their sum, equal weights).

    ``outputs``: logits N x 1 x H x W; ``target``: float32 N x 1 x H x W in {0, 1};
    ``region``: None (the mean over every pixel) or float32 N x 1 x H x W in {0, 1}, the
    pixels that count (the mean over them; 0 when a batch has none).
    """
    if region is None:
        return [F.binary_cross_entropy_with_logits(o.float(), target) for o in outputs]
    count = region.sum().clamp_min(1.0)
    return [
        F.binary_cross_entropy_with_logits(o.float(), target, weight=region, reduction="sum")
        / count
        for o in outputs
    ]


@contextlib.contextmanager
def stop_requests() -> Iterator[dict[str, bool]]:
    """SIGINT/SIGTERM set ``flag["stop"]`` (and ``flag["signal"]``) instead of killing: the
    loop saves and stops."""
    flag: dict[str, Any] = {"stop": False, "signal": 0}

    def handler(signum: int, frame: Any) -> None:
        flag["stop"] = True
        flag["signal"] = signum

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class EpochState:
    """Running sums of one epoch (kept in the checkpoint so a resumed epoch logs whole)."""

    loss_sums: list[float] = field(default_factory=list)
    steps: int = 0
    data_seconds: float = 0.0
    compute_seconds: float = 0.0
    patches: int = 0

    def add(self, losses: list[float], data_s: float, compute_s: float, patches: int) -> None:
        if not self.loss_sums:
            self.loss_sums = [0.0] * len(losses)
        self.loss_sums = [a + b for a, b in zip(self.loss_sums, losses, strict=True)]
        self.steps += 1
        self.data_seconds += data_s
        self.compute_seconds += compute_s
        self.patches += patches


@dataclass
class StepProgress:
    """Called after every step: advances the progress bar and says when to stop.

    Attributes:
        bar: a tqdm bar (``update``, ``set_postfix``).
        done: steps done so far over all epochs (a resumed run starts above 0).
        stop_after: stop once ``done`` reaches this (tests and benchmarks), or None.
        epoch: the epoch being run (0-based), shown on the bar.
    """

    bar: Any
    done: int = 0
    stop_after: int | None = None
    epoch: int = 0

    def __call__(self, st: EpochState) -> bool:
        self.done += 1
        self.bar.update(1)
        rate = st.patches / max(st.data_seconds + st.compute_seconds, 1e-9)
        self.bar.set_postfix(
            epoch=self.epoch + 1,
            loss=f"{sum(st.loss_sums) / st.steps:.4f}",
            patches_s=f"{rate:.0f}",
        )
        return self.stop_after is not None and self.done >= self.stop_after


def train_one_epoch(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    device: torch.device,
    env: distributed.DistEnv,
    state: EpochState,
    on_step: Any,
    stop: dict[str, bool],
) -> bool:
    """Run the loader's steps; returns True when stopped early (signal or ``on_step``)."""
    model.train()
    t_fetch = time.perf_counter()
    for x, y, *region in loader:
        t_data = time.perf_counter() - t_fetch
        t0 = time.perf_counter()
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        mask = region[0].to(device, non_blocking=True) if region else None
        with autocast_for(device, cfg.precision):
            outputs = model(x)
        losses = output_losses(outputs, y, mask)
        loss = sum(losses)
        if distributed.any_flag(not bool(torch.isfinite(loss)), env, device):
            raise TrainingError(
                f"the loss became {loss.item()} at step {state.steps + 1} of this epoch; weights were not saved "
                "from this point, the last good checkpoint is kept (try a lower lr or precision=fp32)"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None and cfg.scheduler == "cosine":
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        state.add([v.item() for v in losses], t_data, time.perf_counter() - t0, x.shape[0])
        if distributed.any_flag(bool(on_step(state)) or stop["stop"], env, device):
            return True
        t_fetch = time.perf_counter()
    return False


def epoch_row(
    state: EpochState, epoch: int, lr: float, t_start: float, crop: int, world: int
) -> dict[str, Any]:
    """One ``log.csv`` row for a finished epoch (1-based ``epoch``; ``t_start``: its
    ``time.perf_counter()`` at the start; ``crop``: the crop side in px; ``world``: processes).

    Speeds count all processes: ``patches_per_s`` crops and ``pixels_per_s`` crop pixels
    per second of data wait plus compute (compare the latter with inference).
    """
    busy = max(state.data_seconds + state.compute_seconds, 1e-9)
    steps = max(state.steps, 1)
    return {
        "epoch": epoch,
        "steps": state.steps,
        "loss": sum(state.loss_sums) / steps,
        **{f"loss_out{i}": v / steps for i, v in enumerate(state.loss_sums)},
        "lr": lr,
        "seconds": time.perf_counter() - t_start,
        "data_seconds": state.data_seconds,
        "compute_seconds": state.compute_seconds,
        "data_share": state.data_seconds / busy,
        "patches_per_s": state.patches * world / busy,
        "pixels_per_s": state.patches * crop**2 * world / busy,
    }
