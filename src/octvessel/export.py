"""ONNX export of a model's final vessel probability, checked against PyTorch.

The exported graph maps ``image`` (float32, N x C x H x W, the model's *preprocessed*
input) to ``probability`` (float32, N x 1 x H x W in [0, 1]): the sigmoid of the network's
last output, exactly what :meth:`SegmentationModel.predict_proba` returns. Padding to the
network's size multiple (16 for IterNet) and cropping back happen inside the graph, so
any H and W work (with ``dynamic=True``; at least ``min_size`` when the model pads by
reflection). Preprocessing does not: the caller applies the bundle's
:class:`octvessel.preprocessing.Preprocessing` (colour mode, CLAHE, gamma, normalisation),
which is written into a JSON sidecar ``<file>.onnx.json`` next to the model together with
the input/output layout and the verification result.

The TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) is used; it needs the
``onnx`` package. :func:`verify_onnx` needs ``onnxruntime``; both come with the optional
extra ``pip install "octvessel[onnx]"``.
"""

from __future__ import annotations

import importlib.util
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from octvessel import __version__, atomic
from octvessel.errors import InputError, OctvesselError, UsageError
from octvessel.models.base import SegmentationModel
from octvessel.models.pretrained import sha256_of
from octvessel.preprocessing import Preprocessing

__all__ = [
    "DEFAULT_OPSET",
    "ExportResult",
    "ProbabilityGraph",
    "VerifyResult",
    "export_onnx",
    "onnxruntime_available",
    "read_sidecar",
    "sample_input",
    "verify_onnx",
]

DEFAULT_OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probability"
ORT_HINT = 'pip install onnxruntime (or pip install "octvessel[onnx]")'
ONNX_HINT = 'pip install onnx (or pip install "octvessel[onnx]")'
SIDECAR_SCHEMA = 1


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class ProbabilityGraph(nn.Module):
    """What is exported: pad to the size multiple, run the model, crop, sigmoid of the last output.

    The padding amounts are computed from the input's traced shape, so the exported graph
    pads correctly for any H and W (the model's own Python-level padding would be frozen
    at the example size by the tracer).
    """

    def __init__(self, model: SegmentationModel) -> None:
        super().__init__()
        self.model = model
        self.multiple = int(model.size_multiple)
        mode = getattr(model.config, "pad_mode", "reflect")
        self.pad_mode = "constant" if mode == "zeros" else mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W float32 -> N x 1 x H x W vessel probability."""
        h, w = x.shape[-2], x.shape[-1]
        m = self.multiple
        if m > 1:
            x = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode=self.pad_mode)
        logits = self.model(x)[-1]
        return torch.sigmoid(logits[..., :h, :w].float())


@dataclass(frozen=True)
class VerifyResult:
    """ONNX Runtime vs PyTorch probabilities on one test input."""

    max_abs_diff: float
    mean_abs_diff: float
    input_shape: tuple[int, ...]
    atol: float
    onnxruntime_version: str
    seconds_onnxruntime: float
    seconds_torch: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "atol": self.atol,
            "input_shape": list(self.input_shape),
            "onnxruntime_version": self.onnxruntime_version,
            "seconds_onnxruntime": round(self.seconds_onnxruntime, 4),
            "seconds_torch": round(self.seconds_torch, 4),
        }

    def line(self) -> str:
        n, c, h, w = self.input_shape
        verdict = "<=" if self.passed else "EXCEEDS"
        return (
            f"ONNX Runtime {self.onnxruntime_version} vs PyTorch on a {w}x{h} test image: max "
            f"|probability difference| {self.max_abs_diff:.2e} {verdict} {self.atol:.0e}"
        )


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and how it was checked (``verification`` None: skipped)."""

    path: Path
    sidecar: Path
    seconds: float
    parameters: int
    verification: VerifyResult | None
    skipped: str | None = None


def _load(model_ref: Any) -> tuple[SegmentationModel, Preprocessing, str]:
    """(model in eval mode on CPU, its preprocessing, a description) from MODEL or a module."""
    if isinstance(model_ref, SegmentationModel):
        from octvessel.models.registry import get_spec

        bundle = getattr(model_ref, "bundle_config", None)
        name = getattr(model_ref, "registry_name", model_ref.name)
        pre = bundle.preprocessing if bundle is not None else get_spec(name).preprocessing
        return model_ref.cpu().eval(), pre, f"<in-memory {name}>"
    from octvessel.models.pretrained import load_model

    model, config = load_model(model_ref, "cpu")
    return model, config.preprocessing, str(model_ref)


def _min_size(graph: ProbabilityGraph) -> int:
    """Smallest H and W the graph accepts: reflection needs pad < size."""
    return graph.multiple // 2 + 1 if graph.pad_mode == "reflect" and graph.multiple > 1 else 1


def _check_size(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name}={value!r}: expected a positive integer (pixels)")
    return value


def sample_input(
    preprocessing: Preprocessing, height: int, width: int, channels: int, seed: int = 0
) -> torch.Tensor:
    """A deterministic, vessel-like network input: 1 x C x H x W float32 (preprocessed)."""
    from octvessel.sim.vessels import VesselTreeConfig, render_image

    cfg = VesselTreeConfig(height=max(height, 8), width=max(width, 8))
    image = render_image(cfg, seed=seed, style="enface")[0][:height, :width]
    x = preprocessing(image)
    if x.shape[0] != channels:
        raise UsageError(
            f"the bundle's preprocessing gives {x.shape[0]} channel(s) but the model takes "
            f"{channels}"
        )
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]


def export_onnx(
    model_ref: Any,
    out_path: str | Path,
    *,
    height: int = 141,
    width: int = 385,
    dynamic: bool = True,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    verify: bool = True,
    atol: float = 1e-4,
) -> ExportResult:
    """Export MODEL's final probability to ONNX (atomically), write the sidecar, verify.

    Args:
        model_ref: a shipped name, run or bundle folder, ``.safetensors`` file, or a
            :class:`SegmentationModel` instance.
        out_path: the ``.onnx`` file; the sidecar is ``<out_path>.json``.
        height, width: the example input traced (and the fixed size when not ``dynamic``);
            also the size of the verification image.
        dynamic: batch, height and width are free in the graph.
        opset: ONNX opset version.
        overwrite: replace existing files.
        verify: compare ONNX Runtime with PyTorch (skipped, with the reason recorded, when
            onnxruntime is not installed).
        atol: the largest accepted absolute difference of probabilities.

    Returns:
        :class:`ExportResult`; ``verification.passed`` may be False (the caller decides).

    Raises:
        InputError: unknown model, existing output without ``overwrite``, ``onnx`` missing.
        UsageError: bad sizes or opset.
    """
    _check_size("height", height)
    _check_size("width", width)
    if not isinstance(opset, int) or not 9 <= opset <= 25:
        raise UsageError(f"opset={opset!r}: expected an integer in 9..25 (default {DEFAULT_OPSET})")
    out = Path(out_path)
    sidecar = out.with_name(out.name + ".json")
    for p in (out, sidecar):
        atomic.check_writable(p, overwrite)
    model, pre, source = _load(model_ref)  # a bad model reference is named first
    if importlib.util.find_spec("onnx") is None:
        raise InputError(f"ONNX export needs the onnx package: {ONNX_HINT}")
    graph = ProbabilityGraph(model).eval()
    min_size = _min_size(graph)
    if min(height, width) < min_size:
        raise UsageError(f"height and width must be at least {min_size} for this model")
    channels = model.config.in_channels
    example = sample_input(pre, height, width, channels)
    axes = {0: "batch", 2: "height", 3: "width"}
    start = time.perf_counter()
    with atomic.atomic_path(out, overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter about the exporter
        torch.onnx.export(
            graph,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None,
            opset_version=opset,
            do_constant_folding=True,
        )
        import onnx

        onnx.checker.check_model(str(tmp))
    seconds = time.perf_counter() - start

    verification, skipped = None, None
    if not verify:
        skipped = "not requested"
    elif not onnxruntime_available():
        skipped = f"onnxruntime is not installed: {ORT_HINT}"
    else:
        verification = verify_onnx(out, model, example=example, atol=atol)

    bundle = getattr(model, "bundle_config", None)
    info = {
        "schema_version": SIDECAR_SCHEMA,
        "onnx_file": out.name,
        "sha256": sha256_of(out),
        "source_model": source,
        "model": getattr(model, "registry_name", model.name),
        "model_config": model.config.to_dict(),
        "parameters": model.count_parameters(),
        "input": {
            "name": INPUT_NAME,
            "layout": "N x C x H x W",
            "dtype": "float32",
            "channels": channels,
            "height": "dynamic" if dynamic else height,
            "width": "dynamic" if dynamic else width,
            "batch": "dynamic" if dynamic else 1,
            "min_size": min_size,
            "what": "the image AFTER the preprocessing below (octvessel.preprocessing."
            "Preprocessing(**preprocessing)(image_hwc_in_0_1) gives C x H x W); padding to a "
            f"multiple of {graph.multiple} happens inside the graph",
        },
        "output": {
            "name": OUTPUT_NAME,
            "layout": "N x 1 x H x W",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "what": "vessel probability: sigmoid of the network's last output (threshold 0.5 "
            "for a mask), as SegmentationModel.predict_proba",
        },
        "preprocessing": pre.to_dict(),
        "opset": opset,
        "exporter": "torch.onnx.export, TorchScript (dynamo=False)",
        "torch_version": torch.__version__,
        "octvessel_version": __version__,
        "export_seconds": round(seconds, 3),
        "verification": verification.to_dict() if verification else {"skipped": skipped},
        "bundle_metadata": bundle.metadata if bundle is not None else {},
    }
    atomic.write_json(sidecar, info, overwrite=True)
    return ExportResult(
        path=out,
        sidecar=sidecar,
        seconds=seconds,
        parameters=model.count_parameters(),
        verification=verification,
        skipped=skipped,
    )


def verify_onnx(
    onnx_path: str | Path,
    model_ref: Any,
    *,
    height: int = 141,
    width: int = 385,
    batch: int = 1,
    example: torch.Tensor | None = None,
    atol: float = 1e-4,
    seed: int = 0,
) -> VerifyResult:
    """Run the ``.onnx`` file in ONNX Runtime (CPU) and PyTorch on one input; compare.

    Args:
        onnx_path: the exported file.
        model_ref: MODEL (as :func:`export_onnx`) or the model instance it came from.
        height, width, batch: size of the synthetic test input (when ``example`` is None);
            the input is a vessel-like picture passed through the bundle's preprocessing.
        example: an explicit N x C x H x W float32 input instead.
        atol: the accepted max absolute difference (reported in the result).

    Raises:
        InputError: onnxruntime missing, or the file cannot be loaded.
    """
    if not onnxruntime_available():
        raise InputError(f"checking an ONNX model needs onnxruntime: {ORT_HINT}")
    import onnxruntime as ort

    model, pre, _ = _load(model_ref)
    if example is None:
        _check_size("height", height)
        _check_size("width", width)
        one = sample_input(pre, height, width, model.config.in_channels, seed)
        example = torch.cat([one] * _check_size("batch", batch))
    x = example.detach().cpu().float().contiguous()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InputError(f"ONNX Runtime cannot load this file ({exc})", onnx_path) from exc
    t0 = time.perf_counter()
    try:
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    except Exception as exc:
        raise OctvesselError(
            f"{onnx_path}: ONNX Runtime failed on a {tuple(x.shape)} input ({exc})"
        ) from exc
    t1 = time.perf_counter()
    with torch.no_grad():
        ref = model.predict_proba(x).numpy()
    t2 = time.perf_counter()
    if got.shape != ref.shape:
        raise OctvesselError(
            f"{onnx_path}: ONNX output shape {got.shape} differs from PyTorch's {ref.shape}"
        )
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    return VerifyResult(
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        input_shape=tuple(int(v) for v in x.shape),
        atol=float(atol),
        onnxruntime_version=ort.__version__,
        seconds_onnxruntime=t1 - t0,
        seconds_torch=t2 - t1,
    )


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of an exported model (``model.onnx`` or ``model.onnx.json``)."""
    p = Path(path)
    if p.suffix != ".json":
        p = p.with_name(p.name + ".json")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("sidecar not found; export writes <file>.onnx.json", p) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable JSON sidecar ({exc})", p) from None
