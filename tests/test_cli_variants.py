"""Variants through the pipeline: reconstruct -> predict -> evaluate -> report (issue 16).

Every variant of every volume is predicted under a name that keeps the variant,
prediction.json says per image what made it, evaluate refuses maps that are not the
variant it scores, and a phantom dataset goes through all four verbs with no option beyond
the folders, giving P1, P2 and P3 side by side.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from octvessel.cli import main

#: a small phantom: 24 B-scans of 40 A-scans (40 x 24 en-face), 96 samples deep
SHAPE = ["--shape", "24,96,40", "--field-mm", "3,3", "--axial-um", "8"]
VARIANTS = ("P1", "P2", "P3")


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """A 2-volume phantom dataset (images/ manual/ mask/ volumes/) written by the CLI."""
    root = tmp_path_factory.mktemp("phantom") / "ds"
    assert main(["phantom", "-o", str(root), "-n", "2", *SHAPE]) == 0
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny 1-channel IterNet bundle (gray preprocessing, random weights)."""
    import torch

    from octvessel.models import create_model, save_pretrained
    from octvessel.preprocessing import Preprocessing

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    net = create_model("iternet", base_channels=4, iterations=1, in_channels=1)
    save_pretrained(net, path, preprocessing=Preprocessing(color="gray"))
    return path


@pytest.fixture(scope="module")
def reconstructions(phantom, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "rec"
    assert main(["reconstruct", "-i", str(phantom / "volumes"), "-o", str(out)]) == 0
    return out


def predict(*args: str) -> int:
    return main(["predict", *args, "--no-progress"])


def prob_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*_prob.png"))


def test_a_reconstruction_folder_gives_every_variant_with_its_provenance(
    reconstructions, bundle, tmp_path, capsys
):
    from octvessel.models.pretrained import sha256_of

    out = tmp_path / "pred"
    assert predict("-i", str(reconstructions), "-o", str(out), "-m", str(bundle)) == 0
    printed = capsys.readouterr().out
    assert printed.count("variants: P1, P2, P3") == 1
    expected = [f"phantom_{i:03d}_fundus_{v}_prob.png" for i in range(2) for v in VARIANTS]
    assert prob_names(out) == expected
    manifest = json.loads((out / "prediction.json").read_text())
    sidecar = json.loads((reconstructions / "phantom_001_enface.json").read_text())
    record = manifest["images"]["phantom_001_fundus_P2"]
    assert record["variant"] == "P2"
    assert record["source"] == str((reconstructions / "phantom_001_fundus_P2.bmp").resolve())
    assert record["pixel_size_mm"] == pytest.approx(sidecar["spacing_mm"])
    assert record["pixel_size_source"] == "sidecar"
    assert record["scale"]["detail"].endswith("phantom_001_enface.json")
    assert record["weights_sha256"] == sha256_of(bundle / "model.safetensors")
    assert record["model"] == str(bundle) and record["threshold"] == 0.5
    assert record["inference"]["method"] == "auto"
    assert len(manifest["images"]) == 6

    # a rerun keeps its own outputs
    assert predict("-i", str(reconstructions), "-o", str(out), "-m", str(bundle)) == 0
    assert "0 predicted, 6 skipped" in capsys.readouterr().out


def test_a_p3_only_folder_is_predicted_and_variant_picks(phantom, bundle, tmp_path, capsys):
    rec = tmp_path / "rec3"
    args = ["reconstruct", "-i", str(phantom / "volumes"), "-o", str(rec), "--variant", "P3"]
    assert main(args) == 0
    assert predict("-i", str(rec), "-o", str(tmp_path / "p3"), "-m", str(bundle)) == 0
    assert prob_names(tmp_path / "p3") == [f"phantom_{i:03d}_fundus_P3_prob.png" for i in range(2)]
    capsys.readouterr()
    code = predict("-i", str(rec), "-o", str(tmp_path / "p2"), "-m", str(bundle), "--variant", "P2")
    err = capsys.readouterr().err
    assert code == 2 and "variants present: P3" in err
    assert not (tmp_path / "p2").exists()


def test_a_cavri_dataset_gives_every_variant_not_one(phantom, bundle, tmp_path, capsys):
    n_images = len(list((phantom / "images").glob("*.bmp")))
    assert predict("-i", str(phantom), "-o", str(tmp_path / "all"), "-m", str(bundle)) == 0
    assert len(prob_names(tmp_path / "all")) == n_images == 6
    out = tmp_path / "two"
    assert predict("-i", str(phantom), "-o", str(out), "-m", str(bundle), "--variant", "p2,P3") == 0
    assert "variants: P2, P3 (asked for)" in capsys.readouterr().out
    assert [n.split("_fundus_")[1] for n in prob_names(out)] == ["P2_prob.png", "P3_prob.png"] * 2


def test_evaluate_refuses_maps_that_are_not_the_variant_it_scores(
    phantom, bundle, tmp_path, capsys
):
    pred = tmp_path / "pred"
    assert predict("-i", str(phantom), "-o", str(pred), "-m", str(bundle), "--variant", "P1") == 0
    capsys.readouterr()
    ev = ["evaluate", "-d", str(phantom), "-p", str(pred), "--no-progress"]
    assert main([*ev, "-o", str(tmp_path / "e3"), "--variant", "P3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "records P1 only" in err
    # P1 maps copied under the P3 names: refused, naming the files
    for p in pred.glob("*_fundus_P1_prob.*"):
        shutil.copy(p, p.with_name(p.name.replace("_P1_", "_P3_")))
    assert main([*ev, "-o", str(tmp_path / "e3"), "--variant", "P3"]) == 2
    err = capsys.readouterr().err
    assert "phantom_000_fundus_P3_prob.tif" in err and "not predictions of the P3" in err
    assert not (tmp_path / "e3").exists()
    # by default only what was predicted is scored, and it says P1
    assert main([*ev, "-o", str(tmp_path / "e1")]) == 0
    result = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert result["variant"] == "P1" and result["source"]["made_by"]["model"] == str(bundle)


def test_phantom_reconstruct_predict_evaluate_report_gives_the_variants_side_by_side(
    phantom, reconstructions, tmp_path, capsys
):
    """Done when of issue 16: no option beyond the folders (the shipped iternet-oct)."""
    pred, ev = tmp_path / "pred", tmp_path / "eval"
    assert main(["predict", "-i", str(reconstructions), "-o", str(pred), "-m", "iternet-oct"]) == 0
    assert main(["evaluate", "-d", str(phantom), "-p", str(pred), "-o", str(ev)]) == 0
    printed = capsys.readouterr().out
    assert "variants side by side" in printed
    summary = json.loads((ev / "variants.json").read_text())
    assert list(summary["variants"]) == list(VARIANTS)
    for v in VARIANTS:
        metrics = json.loads((ev / v / "metrics.json").read_text())
        assert metrics["variant"] == v and metrics["n_images"] == 2
        assert summary["variants"][v]["pooled"] == metrics["pooled"]
        assert 0.5 < metrics["pooled"]["auc_roc"] <= 1.0  # the phantom vessels are found
    aucs = [summary["variants"][v]["pooled"]["auc_roc"] for v in VARIANTS]
    assert len(set(aucs)) == 3  # three different sets of images were scored
    assert main(["report", str(ev)]) == 0
    html = (ev / "report.html").read_text()
    assert "Variants side by side" in html
    for v in VARIANTS:
        assert f"Variant {v}" in html
    assert "missing: curves and image rows left out" not in html
    assert np.isfinite(aucs).all()
