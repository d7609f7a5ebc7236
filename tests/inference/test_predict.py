"""``octvessel predict`` and the Predictor: inputs, outputs, resuming, sharding, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from octvessel import atomic
from octvessel.cli import main
from octvessel.data import read_image, read_mask, write_image, write_mask
from octvessel.errors import InputError, UsageError
from octvessel.inference import InferenceConfig, predict_image
from octvessel.inference.predictor import (
    MANIFEST,
    OUTPUTS,
    Predictor,
    dist_rank,
    list_inputs,
    output_paths,
    shard,
)
from octvessel.models import create_model, load_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    """The test process is shared with other tests: no process-wide malloc settings here."""
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny IterNet weights bundle (random weights)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(path)
    return path


def write_images(folder: Path, n: int, h: int = 40, w: int = 52, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = (rng.random((h + i, w, 3)) * 255).astype(np.uint8)
        paths.append(write_image(folder / f"img{i}.png", img))
    return paths


def write_dataset(root: Path, n_train: int = 2, n_test: int = 2) -> Path:
    """A generic-layout dataset with a dataset.json split."""
    rng = np.random.default_rng(1)
    names = {"training": [], "test": []}
    for i in range(n_train + n_test):
        name = f"s{i}"
        write_image(
            root / "images" / f"{name}.png", (rng.random((36, 44, 3)) * 255).astype(np.uint8)
        )
        write_mask(root / "labels" / f"{name}.png", rng.random((36, 44)) < 0.2)
        names["training" if i < n_train else "test"].append(name)
    atomic.write_json(root / "dataset.json", {"splits": names})
    return root


# ------------------------------------------------------------------------------ inputs


def test_list_inputs_for_a_file_a_folder_and_a_dataset(tmp_path):
    files = write_images(tmp_path / "flat", 3)
    (tmp_path / "flat" / "notes.txt").write_text("not an image")
    assert [i.name for i in list_inputs(files[0])] == ["img0"]
    assert [i.name for i in list_inputs(tmp_path / "flat")] == ["img0", "img1", "img2"]
    root = write_dataset(tmp_path / "ds")
    assert [i.name for i in list_inputs(root)] == ["s0", "s1", "s2", "s3"]
    assert [i.name for i in list_inputs(root, split="test")] == ["s2", "s3"]
    with pytest.raises(InputError, match="not found"):
        list_inputs(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not an image"):
        list_inputs(tmp_path / "flat" / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        list_inputs(tmp_path / "empty")
    write_image(tmp_path / "flat" / "img0.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="share the name 'img0'"):
        list_inputs(tmp_path / "flat")
    with pytest.raises(UsageError, match="split"):
        list_inputs(tmp_path / "empty", split="test")


def test_shard_is_disjoint_and_complete():
    items = list(range(11))
    for world in (1, 2, 3, 4, 16):
        parts = [shard(items, r, world) for r in range(world)]
        assert sorted(x for p in parts for x in p) == items
    with pytest.raises(UsageError):
        shard(items, 2, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_reuse_freed_memory_stops_page_faults_on_big_reallocations():
    code = (
        "import resource, torch\n"
        "from octvessel.inference.predictor import reuse_freed_memory\n"
        "def faults_of_a_fresh_64_mib_buffer():\n"
        "    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0\n"
        "before = faults_of_a_fresh_64_mib_buffer()\n"
        "on = reuse_freed_memory()\n"
        "after = [faults_of_a_fresh_64_mib_buffer() for _ in range(5)]  # heap grows at first\n"
        "print(on, before, min(after))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OCTVESSEL_MALLOC_TUNING": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    on, before, after = out.stdout.split()
    # glibc's default: a fresh mmap, ~16,000 page faults; tuned: reused heap, (almost) none
    assert on == "True" and int(before) > 8000 and int(after) < 1000


def test_dist_rank_reads_torchrun_variables(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert dist_rank() == (0, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert dist_rank() == (2, 3)
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(UsageError, match="RANK"):
        dist_rank()


# ----------------------------------------------------------------------------- outputs


def test_predict_folder_writes_four_exact_outputs_and_resumes(tmp_path, bundle):
    write_images(tmp_path / "in", 3)
    predictor = Predictor.from_pretrained(bundle, config=InferenceConfig(method="whole"))
    out = tmp_path / "out"
    summary = predictor.predict_folder(tmp_path / "in", out, threshold=0.5, progress=False)
    assert summary.predicted == ["img0", "img1", "img2"] and not summary.failed
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST] + [f"img{i}{s}" for i in range(3) for s in OUTPUTS.values()]
    )
    model, _ = load_model(bundle)
    image = read_image(tmp_path / "in" / "img1.png")
    expected = predict_image(model, image, method="whole")
    paths = output_paths(out, "img1")
    tif = read_image(paths["prob_tif"])[..., 0]
    np.testing.assert_allclose(tif, expected, atol=1e-6)  # float32 TIFF: exact
    png = read_image(paths["prob_png"])[..., 0]
    assert np.abs(png - expected).max() <= 0.5 / 65535 + 1e-7  # 16-bit PNG
    mask = read_mask(paths["mask"])
    assert np.array_equal(mask, expected >= 0.5)
    assert read_image(paths["overlay"]).shape == (*image.shape[:2], 3)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["threshold"] == 0.5 and manifest["inference"]["method"] == "whole"

    # an interrupted run continues: nothing redone, a lost file is written again alone
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("img*")}
    paths["mask"].unlink()
    again = predictor.predict_folder(tmp_path / "in", out, progress=False)
    assert again.skipped == ["img0", "img2"] and again.predicted == ["img1"]
    assert paths["mask"].exists()
    for p, t in stamps.items():
        if p != paths["mask"]:
            assert p.stat().st_mtime_ns == t, p
    # overwrite redoes everything
    redo = predictor.predict_folder(tmp_path / "in", out, overwrite=True, progress=False)
    assert redo.predicted == ["img0", "img1", "img2"] and not redo.skipped


def test_threshold_and_another_model_are_not_mixed_into_a_folder(tmp_path, bundle):
    write_images(tmp_path / "in", 1)
    predictor = Predictor.from_pretrained(bundle)
    predictor.predict_folder(tmp_path / "in", tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="threshold"):
        predictor.predict_folder(tmp_path / "in", tmp_path / "out", threshold=0.3, progress=False)
    other = Predictor.from_pretrained(bundle, config=InferenceConfig(method="tiles", tile=32))
    with pytest.raises(InputError, match="inference"):
        other.predict_folder(tmp_path / "in", tmp_path / "out", progress=False)
    done = other.predict_folder(tmp_path / "in", tmp_path / "out", overwrite=True, progress=False)
    assert done.predicted == ["img0"]
    with pytest.raises(UsageError, match="threshold"):
        predictor.predict_file(tmp_path / "in" / "img0.png", threshold=2.0)


def test_unreadable_image_is_reported_and_the_rest_predicted(tmp_path, bundle, capsys):
    write_images(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    predictor = Predictor.from_pretrained(bundle)
    summary = predictor.predict_folder(tmp_path / "in", tmp_path / "out", progress=False)
    assert summary.predicted == ["img0", "img1"]
    assert [p.name for p, _ in summary.failed] == ["broken.png"]
    code = main(
        ["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "-m", str(bundle)]
        + ["--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.png" in err and "Traceback" not in err
    assert (tmp_path / "out2" / "img1_prob.tif").exists()
    # a single unreadable file is an error at once
    assert (
        main(
            [
                "predict",
                "-i",
                str(tmp_path / "in" / "broken.png"),
                "-o",
                str(tmp_path / "o3"),
                "-m",
                str(bundle),
            ]
        )
        == 2
    )


def test_cli_predict_one_image_and_refuses_bad_model(tmp_path, bundle, capsys):
    [img] = write_images(tmp_path, 1)
    code = main(
        [
            "predict",
            "-i",
            str(img),
            "-o",
            str(tmp_path / "out"),
            "-m",
            str(bundle),
            "--method",
            "tiles",
            "--tile",
            "32",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "1 predicted" in out and "tiles x1" in out
    assert (tmp_path / "out" / "img0_overlay.png").exists()
    code = main(
        ["predict", "-i", str(img), "-o", str(tmp_path / "o2"), "-m", str(tmp_path / "no-model")]
    )
    assert code == 2 and "no-model" in capsys.readouterr().err
    code = main(
        [
            "predict",
            "-i",
            str(img),
            "-o",
            str(tmp_path / "o2"),
            "-m",
            str(bundle),
            "--overlap",
            "1.5",
        ]
    )
    assert code == 2 and "overlap" in capsys.readouterr().err


def test_torchrun_shards_the_images_without_duplicates_or_gaps(tmp_path, bundle):
    write_images(tmp_path / "in", 5, h=24, w=28)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "octvessel", "predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    cmd += ["-m", str(bundle), "--no-progress"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    counts = [
        int(line.split(":")[1].split()[0])
        for line in run.stdout.splitlines()
        if "predicted," in line
    ]
    assert sorted(counts) == [2, 3]  # 5 images: ranks took 3 and 2, none twice
    written = sorted(p.name for p in (tmp_path / "out").glob("*_prob.tif"))
    assert written == [f"img{i}_prob.tif" for i in range(5)]
    # both processes' records end up in the one prediction.json (merged under a lock)
    records = json.loads((tmp_path / "out" / MANIFEST).read_text())["images"]
    assert sorted(records) == [f"img{i}" for i in range(5)]
    assert "overwrite_pending" not in json.loads((tmp_path / "out" / MANIFEST).read_text())
