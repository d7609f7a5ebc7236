"""octvessel.export and ``octvessel export``: ONNX graph = PyTorch probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from octvessel.cli import main
from octvessel.errors import InputError, OctvesselError
from octvessel.export import ProbabilityGraph, sample_input
from octvessel.models import create_model

# A tiny IterNet (one mini-UNet pass) and the retina-unet with its gray/CLAHE/gamma recipe.
TINY = {"iternet": {"base_channels": 4, "iterations": 1}, "unet-small": {}}


def sharpened(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Rescale the final 1x1 head so random-init probabilities spread over (0, 1), not ~0.5."""
    from octvessel.models.registry import get_spec

    model.eval()
    head = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and m.out_channels <= 2
    ][-1]
    x = sample_input(get_spec(name).preprocessing, 64, 64, model.config.in_channels)
    with torch.no_grad():
        if head.out_channels == 1:  # logits a * (L - median(L)) with std 3
            logits = model(x)[-1]
            a = 3.0 / float(logits.std())
            head.weight *= a
            head.bias.copy_(a * (head.bias - logits.median()))
        else:  # two-class head behind a ReLU: widening it is enough
            head.weight *= 200.0
    return model


@pytest.fixture(scope="module", params=sorted(TINY))
def bundle(request, tmp_path_factory):
    torch.manual_seed(0)
    model = sharpened(create_model(request.param, **TINY[request.param]), request.param)
    return model.save_pretrained(tmp_path_factory.mktemp(request.param) / "bundle")


@pytest.fixture(scope="module")
def exported(bundle):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package (octvessel[onnx])")
    from octvessel.export import export_onnx

    out = bundle.parent / "model.onnx"
    result = export_onnx(bundle, out, height=64, width=48)
    return bundle, result


def test_graph_equals_predict_proba_at_odd_sizes():
    torch.manual_seed(0)
    model = create_model("iternet", base_channels=4, iterations=1).eval()
    graph = ProbabilityGraph(model).eval()
    for shape in ((2, 3, 37, 53), (1, 3, 141, 385), (1, 3, 16, 16)):
        x = torch.rand(shape)
        with torch.no_grad():
            assert torch.equal(graph(x), model.predict_proba(x))


@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 141, 385)])
def test_onnxruntime_matches_torch(exported, shape):
    pytest.importorskip("onnxruntime", reason="the check needs onnxruntime (octvessel[onnx])")
    from octvessel.export import verify_onnx
    from octvessel.models.pretrained import load_model

    bundle, result = exported
    assert result.verification is not None and result.verification.passed
    n, h, w = shape
    v = verify_onnx(result.path, bundle, height=h, width=w, batch=n)
    assert v.input_shape[0] == n and v.input_shape[2:] == (h, w)
    assert v.max_abs_diff <= 1e-4, v.line()
    # the comparison means something: the probabilities spread over the picture
    model, config = load_model(bundle)
    x = sample_input(config.preprocessing, h, w, model.config.in_channels)
    probs = model.predict_proba(x)
    assert float(probs.max() - probs.min()) > 0.3


def test_sidecar_records_layout_and_preprocessing(exported):
    from octvessel.export import read_sidecar
    from octvessel.models.pretrained import load_model

    bundle, result = exported
    info = read_sidecar(result.path)
    _, config = load_model(bundle)
    assert info == json.loads(result.sidecar.read_text())
    assert info["preprocessing"] == config.preprocessing.to_dict()
    assert info["input"]["layout"] == "N x C x H x W" and info["input"]["height"] == "dynamic"
    assert info["output"]["name"] == "probability" and info["output"]["range"] == [0.0, 1.0]
    assert info["opset"] == 17 and "dynamo=False" in info["exporter"]
    from octvessel.models.pretrained import sha256_of

    assert info["sha256"] == sha256_of(result.path)


def test_static_export_refuses_other_sizes_and_overwrite(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
    pytest.importorskip("onnxruntime", reason="the check needs onnxruntime")
    from octvessel.export import export_onnx, verify_onnx

    torch.manual_seed(0)
    model = create_model("iternet", base_channels=4, iterations=1)
    out = tmp_path / "fixed.onnx"
    result = export_onnx(model, out, height=32, width=48, dynamic=False)
    assert result.verification.passed
    assert json.loads(result.sidecar.read_text())["input"]["height"] == 32
    with pytest.raises(OctvesselError, match="ONNX Runtime failed"):
        verify_onnx(out, model, height=40, width=48)
    with pytest.raises(InputError, match="overwrite"):
        export_onnx(model, out, height=32, width=48)
    again = export_onnx(model, out, height=32, width=48, overwrite=True)
    assert again.verification.passed
    from octvessel.models.pretrained import sha256_of

    assert json.loads(again.sidecar.read_text())["sha256"] == sha256_of(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_without_onnxruntime_the_check_is_skipped(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
    import octvessel.export as export

    monkeypatch.setattr(export, "onnxruntime_available", lambda: False)
    torch.manual_seed(0)
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(tmp_path / "b")
    assert main(["export", "-m", str(tmp_path / "b"), "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == (
        "check skipped: onnxruntime is not installed: pip install onnxruntime (or pip install "
        '"octvessel[onnx]")'
    )
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert "onnxruntime" in side["verification"]["skipped"]
    with pytest.raises(InputError, match="onnxruntime"):
        export.verify_onnx(tmp_path / "m.onnx", tmp_path / "b")


def test_cli_export_and_errors(exported, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the check needs onnxruntime")
    bundle, _ = exported
    out = tmp_path / "cli.onnx"
    assert (
        main(["export", "-m", str(bundle), "-o", str(out), "--height", "45", "--width", "67"]) == 0
    )
    text = capsys.readouterr().out
    assert "check: ONNX Runtime" in text and "67x45 test image" in text and "<= 1e-04" in text
    assert out.is_file() and (tmp_path / "cli.onnx.json").is_file()
    assert main(["export", "-m", str(bundle), "-o", str(out)]) == 2  # exists
    assert "overwrite" in capsys.readouterr().err
    missing = tmp_path / "no-such-model"
    assert main(["export", "-m", str(missing), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0] and not (tmp_path / "x.onnx").exists()
    assert main(["export", "-m", str(bundle), "-o", str(tmp_path / "y.onnx"), "--opset", "3"]) == 2


def test_sample_input_is_preprocessed_and_deterministic():
    from octvessel.preprocessing import Preprocessing

    a = sample_input(Preprocessing("gray", normalize="minmax"), 41, 77, 1)
    assert a.shape == (1, 1, 41, 77) and a.dtype == torch.float32
    assert np.isclose(float(a.min()), 0.0) and np.isclose(float(a.max()), 1.0)
    assert torch.equal(a, sample_input(Preprocessing("gray", normalize="minmax"), 41, 77, 1))
    assert sample_input(Preprocessing(), 20, 30, 3).shape == (1, 3, 20, 30)
