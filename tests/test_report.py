"""`octvessel report`: one self-contained HTML file for a run, an evaluation or a cv."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from octvessel.cli import main
from octvessel.cv import CVConfig, recipes_for, run_cv
from octvessel.errors import InputError
from octvessel.report import (
    ReportConfig,
    build_report,
    detect_kind,
    find_chromium,
    image_stats,
    looks_rendered,
    screenshot,
    write_report,
)


@pytest.fixture(scope="module")
def cv_dir(tmp_path_factory) -> Path:
    """A 2-fold cv of a tiny IterNet on 4 small phantoms (about 3 s on one core)."""
    from octvessel.oct.phantom import PhantomConfig, write_dataset

    root = tmp_path_factory.mktemp("report")
    cfg = PhantomConfig(bscans=32, depth=96, ascans=48, field_mm=(3.0, 3.0), axial_um=8.0)
    write_dataset(root / "data", n=4, seed=1, config=cfg, volumes=False)
    recipes = recipes_for(
        ("iternet",),
        "quick",
        None,
        {"epochs": 2, "steps_per_epoch": 2, "crop": 32, "images_per_batch": 2,
         "crops_per_image": 1, "device": "cpu", "val_fraction": 0.34},
        {"base_channels": 4, "iterations": 1},
        "gray",
    )  # fmt: skip
    res = run_cv(root / "data", root / "cv", CVConfig(folds=2), recipes, progress=False)
    assert not res.interrupted
    return root / "cv"


def embedded_images(text: str) -> list[Image.Image]:
    """Every ``src``/``href`` must be an inline PNG; returns them decoded."""
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    return [Image.open(io.BytesIO(base64.b64decode(r.split(",", 1)[1]))) for r in refs]


def test_cv_report_is_one_self_contained_file(cv_dir, capsys):
    assert detect_kind(cv_dir) == "cv"
    assert main(["report", str(cv_dir)]) == 0
    path = cv_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"https?://|<script|<link|@import|url\(", text)
    images = embedded_images(text)
    # ROC + PR + training curves + one row per test image (4)
    assert len(images) == 3 + 4 and all(im.format == "PNG" for im in images)
    rows = images[3:]
    assert all(im.width > 4 * im.height for im in rows)  # image | label | prob | errors
    for needle in ("Cross-validation", "fold 1", "fold 2", "pooled", "fold mean", "image std",
                   "ROC", "precision-recall", "Training curves", "false positive",
                   "Recipe", "octvessel 0.1.0", "torch", "phantom_000"):  # fmt: skip
        assert needle in text, needle
    seed = json.loads((cv_dir / "cv.json").read_text())["arms"][0]["recipe"]["seed"]
    assert f"Seed {seed}" in text
    # never overwritten without --overwrite
    assert main(["report", str(cv_dir)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["report", str(cv_dir), "--overwrite", "--max-images", "1"]) == 0
    assert len(embedded_images(path.read_text(encoding="utf-8"))) == 3 + 1


def test_evaluation_and_run_reports(cv_dir, tmp_path):
    eval_dir = cv_dir / "iternet-P1" / "fold_1" / "eval"
    run_dir = cv_dir / "iternet-P1" / "fold_1" / "run"
    assert detect_kind(eval_dir) == "evaluation" and detect_kind(run_dir) == "run"
    out = write_report(eval_dir, tmp_path / "eval.html")
    text = out.read_text(encoding="utf-8")
    assert "Per image" in text and "phantom_000" in text and "AUC" in text
    assert "Training curves" in text  # the model is a run folder: its log is shown
    assert len(embedded_images(text)) == 2 + 1 + 2  # ROC, PR, training, 2 image rows
    text = build_report(run_dir, ReportConfig(title="my run"))
    assert "<title>my run</title>" in text and "holds no test metrics" in text
    assert "val_auc" in text  # the log table of a run with validation images
    assert len(embedded_images(text)) == 1  # the training curves
    with pytest.raises(InputError, match="not a training run"):
        detect_kind(tmp_path)
    with pytest.raises(InputError, match="max_images"):
        ReportConfig(max_images=-1)


def test_report_without_the_dataset_says_so_and_keeps_the_saved_curves(cv_dir, tmp_path):
    moved = tmp_path / "cv"
    shutil.copytree(cv_dir, moved, ignore=shutil.ignore_patterns("*.safetensors", "report.html"))
    info = json.loads((moved / "cv.json").read_text())
    info["dataset"] = str(tmp_path / "gone")
    (moved / "cv.json").write_text(json.dumps(info))
    text = build_report(moved)
    assert "is not found" in text
    assert len(embedded_images(text)) == 3  # the arm's saved roc.png and pr.png + training


def test_image_stats_tell_a_blank_page_from_a_rendered_one(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 300, 3), 255, np.uint8)).save(blank)
    assert not looks_rendered(image_stats(blank))
    rng = np.random.default_rng(0)
    busy = tmp_path / "busy.png"
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(busy)
    assert looks_rendered(image_stats(busy))


def test_report_renders_in_headless_chromium(cv_dir, tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium (chromium, chromium-browser, google-chrome) on PATH")
    html = cv_dir / "report.html"
    if not html.is_file():
        write_report(cv_dir)
    png = screenshot(html, tmp_path / "shot.png", width=1280, height=2000)
    stats = image_stats(png)
    assert (stats["width"], stats["height"]) == (1280, 2000)
    assert looks_rendered(stats), stats


def test_demo_folder_report(tmp_path):
    from octvessel.data import write_image, write_mask

    d = tmp_path / "demo"
    rng = np.random.default_rng(0)
    truth = rng.random((30, 40)) < 0.2
    write_mask(d / "reconstructions" / "phantom_truth.png", truth)
    metrics = {}
    for v in ("P1", "P2"):
        write_image(
            d / "reconstructions" / f"phantom_{v}.png", rng.random((30, 40, 1)).astype(np.float32)
        )
        prob = np.clip(truth * 0.6 + rng.random((30, 40)) * 0.4, 0, 1).astype(np.float32)
        write_image(d / "predictions" / f"phantom_{v}_prob.png", prob)
        metrics[v] = {"auc_roc": 0.9, "f1": 0.5, "accuracy": 0.8}
    (d / "metrics.json").write_text(
        json.dumps(
            {
                "demo": {"seed": 0, "threshold": 0.5},
                "model": {"reference": "x"},
                "boundary_errors_px": {"ILM": {"median": 0.5, "p95": 1.0}},
                "metrics": metrics,
                "octvessel_version": "0.1.0",
            }
        )  # fmt: skip
    )
    assert detect_kind(d) == "demo"
    text = build_report(d)
    assert "Demo demo" in text and "ILM" in text and "variant P2" in text
    assert len(embedded_images(text)) == 2  # one row per variant (no summary.png here)
    (d / "metrics.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(InputError, match="neither an `octvessel evaluate` output"):
        detect_kind(d)
