"""Resumable training state without pickles: tensors in safetensors, the rest as JSON.

``training_state.safetensors`` beside the weights holds the optimiser's tensors, the torch
RNG states, and in its metadata (JSON strings) the optimiser's param groups, the
scheduler and gradient-scaler states and the position (epoch, step) to continue from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from octvessel import atomic, layout
from octvessel.errors import InputError
from octvessel.models.weights_file import sort_header

STATE_NAME = layout.TRAINING_STATE


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, rest = {}, {}
    for idx, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                rest.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": rest}


def _match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor its parameter's strides (channels-last weights:
    safetensors stores them contiguous). The fused Adam kernel walks a parameter and its
    moments in memory order, so a moment laid out otherwise would be applied scrambled."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            entries = optimizer.state.get(param, {})
            for key, value in entries.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    entries[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def save_state(
    path: str | Path,
    optimizer: torch.optim.Optimizer,
    position: dict[str, Any],
    scheduler: Any | None = None,
    scaler: Any | None = None,
) -> None:
    """Write the resumable state (atomically). ``position``: epoch, step and bookkeeping."""
    tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {
        "optimizer": json.dumps(optim_meta),
        "scheduler": json.dumps(scheduler.state_dict() if scheduler is not None else None),
        "scaler": json.dumps(
            scaler.state_dict() if scaler is not None and scaler.is_enabled() else None
        ),
        "position": json.dumps(position),
    }
    with atomic.atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        sort_header(tmp)


def load_state(
    path: str | Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    scaler: Any | None = None,
) -> dict[str, Any]:
    """Restore optimiser, scheduler, scaler and RNG state; return the saved position."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        optim_meta = json.loads(meta["optimizer"])
        position = json.loads(meta["position"])
    except FileNotFoundError:
        raise InputError(
            "missing: nothing to resume from (train without --resume to start)", path
        ) from None
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise InputError(f"not a readable training state ({exc})", path) from None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in optim_meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": optim_meta["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise InputError(f"optimiser state does not fit this model/recipe ({exc})", path) from None
    _match_parameter_layouts(optimizer)
    sched = json.loads(meta.get("scheduler", "null"))
    if scheduler is not None and sched is not None:
        scheduler.load_state_dict(sched)
    scal = json.loads(meta.get("scaler", "null"))
    if scaler is not None and scal is not None:
        scaler.load_state_dict(scal)
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return position


def restore(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
) -> dict[str, Any]:
    """Load a run folder's last weights and training state for ``--resume``; return the position.

    The weights file must be the one the state was saved with (its sha256 is recorded in
    the state): a checkpoint write cut short raises :class:`InputError`.
    """
    from octvessel.models.weights_file import load_weights, sha256_of

    model_weights = run_dir / layout.LAST_WEIGHTS
    position = load_state(run_dir / STATE_NAME, optimizer, scheduler, scaler)
    expected = position.get("weights_sha256")
    if expected and model_weights.is_file() and sha256_of(model_weights) != expected:
        raise InputError(
            f"does not match {STATE_NAME} (a checkpoint write was cut short, e.g. by a full "
            "disk); the two files must come from the same step to resume exactly",
            model_weights,
        )
    load_weights(model, model_weights)
    return position
