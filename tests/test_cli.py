"""The command line: verbs, exit codes, the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from octvessel.cli import main

DESIGN_VERBS = (
    "reconstruct",
    "phantom",
    "train",
    "predict",
    "evaluate",
    "cv",
    "report",
    "models",
    "demo",
    "export",
)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "octvessel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_help_lists_every_design_verb():
    proc = run_cli("-h")
    assert proc.returncode == 0
    for verb in DESIGN_VERBS:
        assert verb in proc.stdout


@pytest.mark.parametrize("verb", [*DESIGN_VERBS, "octify"])
def test_each_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "-h"])
    assert exc.value.code == 0
    assert verb in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = run_cli("export", "-m", str(tmp_path / "no-model"), "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 2
    assert "no-model" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_models_lists_architectures(capsys):
    assert main(["models", "--count"]) == 0
    out = capsys.readouterr().out
    assert "iternet" in out and "8,244,356" in out and "unet" in out


def test_demo_end_to_end_small(tmp_path, capsys):
    import torch

    from octvessel.models import create_model, save_pretrained
    from octvessel.preprocessing import Preprocessing

    bundle = tmp_path / "tiny model"
    torch.manual_seed(0)  # an untrained net: unseeded, its mask was sometimes empty
    tiny = create_model("iternet", base_channels=4, iterations=1, in_channels=1)
    save_pretrained(tiny, bundle, preprocessing=Preprocessing(color="gray"))
    out = tmp_path / "demo out"  # a space in the path on purpose
    assert main(["demo", "-o", str(out), "-m", str(bundle), "--no-progress"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert set(result["metrics"]) == {"P1", "P2", "P3"}
    for m in result["metrics"].values():
        for key in ("auc_roc", "f1", "accuracy"):
            assert 0.0 <= m[key] <= 1.0
    assert result["boundary_errors_px"]["ILM"]["median"] < 2.0
    for name in (
        "summary.png",
        "reconstructions/phantom_P3.png",
        "reconstructions/phantom_truth.png",
    ):
        assert (out / name).is_file(), name
    preds = sorted(p.name for p in (out / "predictions").iterdir())
    assert len(preds) == 9 and all(p.endswith(".png") for p in preds)
    # a finished demo is not overwritten by accident
    assert main(["demo", "-o", str(out), "-m", str(bundle), "--no-progress"]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_evaluate_scores_the_chosen_cavri_variant(tmp_path):
    from octvessel.models import create_model, save_pretrained
    from octvessel.oct.phantom import PhantomConfig, write_dataset
    from octvessel.preprocessing import Preprocessing

    data = tmp_path / "cavri"
    cfg = PhantomConfig(bscans=24, depth=96, ascans=40, field_mm=(3.0, 3.0), axial_um=8.0)
    write_dataset(data, n=2, seed=0, config=cfg, volumes=False)
    bundle = tmp_path / "m"
    tiny = create_model("iternet", base_channels=4, iterations=1, in_channels=1)
    save_pretrained(tiny, bundle, preprocessing=Preprocessing(color="gray"))
    aucs = {}
    for v in ("P1", "P3"):
        out = tmp_path / f"ev{v}"
        assert (
            main(["evaluate", "-d", str(data), "--variant", v, "-m", str(bundle), "-o", str(out)])
            == 0
        )
        result = json.loads((out / "metrics.json").read_text())
        assert result["variant"] == v
        aucs[v] = result["pooled"]["auc_roc"]
    assert aucs["P1"] != aucs["P3"]  # different images were scored


def test_demo_with_the_shipped_iternet_oct_finds_the_phantom_vessels(tmp_path, monkeypatch, capsys):
    """The README's main job: shipped weights, from any directory, scored against the truth."""
    monkeypatch.chdir(tmp_path)  # -m iternet-oct must not depend on the working directory
    assert main(["demo", "-o", "out"]) == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["model"]["reference"] == "iternet-oct"
    for variant in ("P1", "P2", "P3"):  # measured 0.973-0.978 / F1 0.83-0.84 when shipped
        assert result["metrics"][variant]["auc_roc"] > 0.95, variant
        assert result["metrics"][variant]["f1"] > 0.75, variant
    assert (tmp_path / "out" / "report.html").stat().st_size > 100_000
    capsys.readouterr()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "iternet-fundus" in out and "iternet-oct" in out and "DRIVE test 01-20: AUC" in out


def test_demo_goes_on_when_the_model_finds_no_vessel(tmp_path, capsys):
    """A model whose mask is empty: scored (sensitivity 0), morphometry skipped with a note."""
    import torch

    from octvessel.models import create_model, save_pretrained
    from octvessel.preprocessing import Preprocessing

    torch.manual_seed(0)
    blind = create_model("iternet", base_channels=4, iterations=1, in_channels=1)
    with torch.no_grad():
        for name, p in blind.named_parameters():
            if name.endswith("bias"):
                p.fill_(-10.0)
    save_pretrained(blind, tmp_path / "blind", preprocessing=Preprocessing(color="gray"))
    out = tmp_path / "out"
    assert main(["demo", "-o", str(out), "-m", str(tmp_path / "blind"), "--no-progress"]) == 0
    assert "morphometry skipped" in capsys.readouterr().out
    result = json.loads((out / "metrics.json").read_text())
    assert all(m["sensitivity"] == 0.0 for m in result["metrics"].values())
    assert (out / "report.html").is_file()
