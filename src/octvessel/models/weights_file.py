"""Safetensors weights files: write (sorted header, sha256), read the header, check and load.

The file-level half of a weights bundle (:mod:`octvessel.models.pretrained` holds the
folder: ``config.json``, the model card, shipped names). Nothing here unpickles: tensors
come only from safetensors; a file's header (names and shapes) is checked against the
network before any data is read, the sha256 before the values, and non-finite values
are refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from octvessel import __version__, atomic, layout
from octvessel.errors import InputError

CONFIG_NAME = layout.BUNDLE_CONFIG
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(
    model: torch.nn.Module, path: str | Path, dtype: str = "float32", overwrite: bool = True
) -> str:
    """Write the state dict as safetensors (atomically); return its sha256."""
    if dtype not in WEIGHT_DTYPES:
        raise InputError(f"dtype={dtype!r}: expected one of {', '.join(WEIGHT_DTYPES)}")
    tensors = {
        k: (v.detach().to(WEIGHT_DTYPES[dtype]) if v.is_floating_point() else v.detach())
        .contiguous()
        .cpu()
        for k, v in model.state_dict().items()
    }
    meta = {"format": "pt", "octvessel_version": __version__}
    with atomic.atomic_path(path, overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        sort_header(tmp)
    return sha256_of(path)


def sort_header(path: str | Path) -> None:
    """Rewrite a safetensors file's JSON header in place with its keys sorted.

    safetensors writes ``__metadata__`` in hash-map order, which changes from process to
    process, so the same tensors gave a different file (and sha256) on every save. The
    sorted header has the same length, so the data offsets do not move.
    """
    with open(path, "r+b") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(text) <= n:  # never move the data: otherwise keep safetensors' own header
            fh.seek(8)
            fh.write(text.ljust(n, b" "))


def read_header(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a safetensors file, from its header only (no data read)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except FileNotFoundError:
        raise InputError("weights file not found", path) from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a readable safetensors file ({_one_line(exc)})", path) from None


def check_fit(model: torch.nn.Module, header: dict[str, tuple[int, ...]], path: Path) -> None:
    """Raise :class:`InputError` unless ``header``'s tensors are exactly ``model``'s state dict."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(own) - set(header))
    unexpected = sorted(set(header) - set(own))
    wrong = [
        f"{k} {header[k]} != {shape}"
        for k, shape in own.items()
        if k in header and header[k] != shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {wrong[0]})")
        raise InputError(
            f"weights do not fit the architecture in config.json: {'; '.join(parts)}", path
        )


def check_channels(model: torch.nn.Module, header: dict[str, tuple[int, ...]], path: Path) -> None:
    """The weights' first layer takes the ``model_config.in_channels`` of ``config.json``.

    Raises :class:`InputError` naming the weights file (a clearer line than
    :func:`check_fit`'s shape list for the commonest mix-up).
    """
    wanted = getattr(getattr(model, "config", None), "in_channels", None)
    if not isinstance(wanted, int):
        return
    first = next(
        (
            (k, tuple(v.shape))
            for k, v in model.state_dict().items()
            if len(v.shape) == 4 and v.shape[1] == wanted
        ),
        None,
    )
    if first is not None and first[0] in header:
        shape = header[first[0]]
        if len(shape) == 4 and shape[1] != wanted and shape[0] == first[1][0]:
            raise InputError(
                f"{CONFIG_NAME} says in_channels={wanted}, the weights take {shape[1]} "
                f"channel(s) ({first[0]} {shape}); they are not this config's weights",
                path,
            )


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`InputError` unless the file's sha256 is ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise InputError(
            f"sha256 {actual[:12]}... does not match the {expected[:12]}... recorded in "
            "config.json (corrupt or replaced file)",
            path,
        )


def load_weights(
    model: torch.nn.Module, path: str | Path, expected_sha256: str | None = None
) -> None:
    """Load safetensors weights into ``model`` (strict); mismatches raise :class:`InputError`.

    The header is checked against ``model`` and the sha256 (when given) before any tensor
    is read; non-finite values are refused.
    """
    path = Path(path)
    check_fit(model, read_header(path), path)
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a readable safetensors file ({_one_line(exc)})", path) from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError(
            f"weights hold NaN or infinite values in {len(bad)} tensor(s) (e.g. {bad[0]}); "
            "the training run that wrote them diverged",
            path,
        )
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=True)


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
