"""Issue 16, cases 4 and 5 through `octvessel train`: validation splits keep every variant of
one scan (and with --group-by one subject) on one side; --resume keeps the saved recipe,
says when a run is finished and names the metric that picked the best epoch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from octvessel.cli import main
from octvessel.data import write_image, write_mask
from octvessel.data.sample import Sample

#: a 1-step, tiny-network run (seconds on one CPU thread)
TINY = [
    "--preset", "quick", "--base-channels", "4", "--iterations", "1", "--color", "gray",
    "--crop", "32", "--images-per-batch", "1", "--crops-per-image", "1",
    "--steps-per-epoch", "1", "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """A CAVRI-C folder of 4 phantom scans, each reconstructed as P1, P2 and P3."""
    from octvessel.oct.phantom import PhantomConfig, write_dataset

    root = tmp_path_factory.mktemp("ph") / "ph"
    cfg = PhantomConfig(bscans=24, depth=96, ascans=40, field_mm=(3.0, 3.0), axial_um=8.0)
    write_dataset(root, n=4, seed=0, config=cfg, volumes=False)
    return root


def write_eyes(root: Path, subjects: int = 3) -> Path:
    """A generic folder: both eyes (``sNN_OD``, ``sNN_OS``) of ``subjects`` subjects."""
    rng = np.random.default_rng(0)
    for i in range(subjects):
        for eye in ("OD", "OS"):
            label = rng.random((24, 24)) < 0.3
            image = (rng.random((24, 24, 1)) * 0.5 + 0.4 * label[..., None]).astype(np.float32)
            write_image(root / "images" / f"s{i:02d}_{eye}.png", image)
            write_mask(root / "labels" / f"s{i:02d}_{eye}.png", label)
    return root


def splits(run: Path) -> dict:
    return json.loads((run / "splits.json").read_text())


# ------------------------------------------------------------------ case 4: no leaks


def test_pooled_variants_of_one_scan_stay_on_one_side(phantoms, tmp_path, capsys):
    run = tmp_path / "run"
    spec = f"{phantoms}:P1,P2,P3"
    args = ["train", "-d", spec, "-o", str(run), *TINY, "--epochs", "1", "--val-fraction", "0.25"]
    assert main(args) == 0
    doc = splits(run)
    assert doc["validation"], "a quarter of the scans is held out"

    def scan(name: str) -> str:  # "ph/P2/phantom_001" -> "phantom_001"
        return name.rsplit("/", 1)[-1]

    train_scans = {scan(n) for n in doc["training"]}
    val_scans = {scan(n) for n in doc["validation"]}
    assert train_scans and val_scans and not train_scans & val_scans
    assert len(doc["validation"]) == 3 * len(val_scans)  # all three variants of each
    assert doc["group_by"] is None and "scan" in doc["grouping"]
    assert {doc["groups"][n] for n in doc["validation"]} == val_scans


def test_group_by_keeps_a_subject_together_and_resume_keeps_it(tmp_path, capsys):
    data = write_eyes(tmp_path / "eyes")
    run = tmp_path / "run"
    base = ["train", "-d", str(data), "-o", str(run), *TINY, "--epochs", "1"]
    assert main([*base, "--val-fraction", "0.3", "--group-by", r"^(s\d+)_"]) == 0
    doc = splits(run)
    subjects = {re.match(r"s\d+", n).group(0) for n in doc["validation"]}
    assert len(subjects) == 1 and len(doc["validation"]) == 2  # both eyes of one subject
    held = subjects.pop()
    assert not any(n.startswith(held) for n in doc["training"])
    assert doc["group_by"] == r"^(s\d+)_"
    capsys.readouterr()
    # resumed without --group-by: the saved grouping (by image it would split 2 of 6 otherwise)
    assert main(["train", "-d", str(data), "-o", str(run), "--resume", "--no-progress"]) == 0
    assert "finished already" in capsys.readouterr().out
    # another grouping would put other images on the validation side: refused, one line
    args = ["train", "-d", str(data), "-o", str(run), "--resume", "--group-by", r"_(O[DS])$"]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "splits.json" in err and "--overwrite" in err and len(err.splitlines()) == 1
    other = ["train", "-d", str(data), "-o", str(tmp_path / "r2"), *TINY, "--group-by", "^s"]
    assert main(other) == 2  # nothing to group without a validation split
    assert "give --val-fraction" in capsys.readouterr().err


def test_one_grouping_rule_for_train_and_cv():
    from octvessel.cv import splits as cv_splits
    from octvessel.data.groups import group_names, sample_groups
    from octvessel.training.data import split_validation
    from octvessel.training.samples import split_holdout

    assert cv_splits.group_names is group_names
    names = ["s01_OD", "s01_OS", "s02_OD", "s02_OS", "s03_OD"]
    folds = cv_splits.make_folds(names, 3, group_by=r"^(s\d+)")
    assert {frozenset(f.test) for f in folds} == {
        frozenset({"s01_OD", "s01_OS"}),
        frozenset({"s02_OD", "s02_OS"}),
        frozenset({"s03_OD"}),
    }
    samples = [
        Sample(np.zeros((4, 4, 1), np.float32), None, np.ones((4, 4), bool), n, None) for n in names
    ]
    assert sample_groups(samples, r"^(s\d+)") == ["s01", "s01", "s02", "s02", "s03"]
    train, val = split_holdout(samples, 0.3, seed=1, group_by=r"^(s\d+)")
    assert {s.name[:3] for s in train}.isdisjoint({s.name[:3] for s in val})
    # one image per scan: the split of earlier versions (runs made by them resume)
    for seed in range(5):
        old = split_validation(samples, 0.4, seed)
        new = split_holdout(samples, 0.4, seed)
        assert [[s.name for s in part] for part in old] == [[s.name for s in p] for p in new]


# ------------------------------------------------------------------ case 5: resume


def test_resume_keeps_the_preset_recipe_and_says_when_finished(tmp_path, capsys):
    from octvessel.training import resolve_config, train

    data = write_eyes(tmp_path / "eyes")
    run = tmp_path / "run"
    # started from --preset quick (2 epochs here), stopped after the first epoch
    cfg = resolve_config(
        "quick",
        None,
        {"epochs": 2, "steps_per_epoch": 1, "crop": 32, "images_per_batch": 1,
         "crops_per_image": 1, "val_fraction": 0.3, "device": "cpu",
         "model_config": {"base_channels": 4, "iterations": 1}},
    )  # fmt: skip
    assert train(data, run, cfg, progress=False, stop_after_steps=1).interrupted
    capsys.readouterr()
    resume = ["train", "-d", str(data), "-o", str(run), "--resume", "--no-progress"]
    assert main(resume) == 0  # no options: the saved recipe, not the defaults
    out = capsys.readouterr().out
    assert "epochs 2-2" in out and "trained epoch 2 of 2" in out
    assert "by validation AUC-ROC (highest)" in out
    assert main(resume) == 0
    out = capsys.readouterr().out
    assert "finished already (2 of 2 epochs)" in out and "trained" not in out
    assert main([*resume, "--epochs", "3"]) == 2  # a setting given that differs: named
    assert "epochs 3 (the run has 2)" in capsys.readouterr().err


def test_without_validation_the_best_epoch_is_named_by_training_loss(tmp_path, capsys):
    data = write_eyes(tmp_path / "eyes", subjects=2)
    run = tmp_path / "run"
    assert main(["train", "-d", str(data), "-o", str(run), *TINY, "--epochs", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("trained epochs 1-2 of 2; no validation images: best epoch")
    assert "by training loss (lowest)" in out
    assert not re.search(r"best -?\d", out)  # never a bare "best <loss>" as if a score
