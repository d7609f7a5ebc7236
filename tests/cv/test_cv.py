"""Cross-validation: pure splits and aggregation, and `octvessel cv` end to end on phantoms."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from octvessel.cli import main
from octvessel.cv import (
    CVConfig,
    aggregate_folds,
    balanced_cuts,
    comparison_csv,
    format_comparison,
    group_names,
    make_folds,
    read_splits,
    recipes_for,
    run_cv,
)
from octvessel.errors import InputError, UsageError
from octvessel.metrics import METRICS, evaluate

# --------------------------------------------------------------------------- splits


def test_contiguous_blocks_in_natural_order_like_the_paper():
    names = [f"im{i}" for i in range(1, 25)]  # natural order: im2 before im10
    folds = make_folds(list(reversed(names)), 6)
    assert [len(f.test) for f in folds] == [4] * 6
    assert folds[0].test == ("im1", "im2", "im3", "im4")
    assert folds[5].test == ("im21", "im22", "im23", "im24")
    for f in folds:
        assert set(f.train) == set(names) - set(f.test) and f.index == folds.index(f) + 1


@pytest.mark.parametrize("n, k", [(26, 6), (25, 6), (7, 3), (5, 5)])
def test_remainder_is_distributed_never_dropped(n, k):
    names = [f"s{i:02d}" for i in range(n)]
    folds = make_folds(names, k)
    expected = [list(a) for a in np.array_split(np.array(names), k)]
    assert [list(f.test) for f in folds] == expected
    assert sorted(n for f in folds for n in f.test) == names
    assert max(len(f.test) for f in folds) - min(len(f.test) for f in folds) <= 1


def test_shuffle_is_reproducible_by_seed():
    names = [f"s{i:02d}" for i in range(20)]
    a = make_folds(names, 4, shuffle=True, seed=7)
    b = make_folds(names, 4, shuffle=True, seed=7)
    c = make_folds(names, 4, shuffle=True, seed=8)
    assert a == b and a != c
    assert a != make_folds(names, 4)
    assert sorted(n for f in a for n in f.test) == names
    assert all(list(f.test) == sorted(f.test) for f in a)  # natural order inside a fold


def test_group_by_keeps_a_subject_in_one_fold():
    names = [f"p{s}_{eye}" for s in range(1, 8) for eye in ("OD", "OS")] + ["p8_OD"]
    for shuffle in (False, True):
        folds = make_folds(names, 3, group_by=r"^(p\d+)_", shuffle=shuffle, seed=1)
        where = {n: f.index for f in folds for n in f.test}
        for s in range(1, 8):
            assert where[f"p{s}_OD"] == where[f"p{s}_OS"]
        assert sorted(where) == sorted(names)
        assert max(len(f.test) for f in folds) - min(len(f.test) for f in folds) <= 2
    assert group_names(["a1x", "a1y", "b2x"], r"[ab]\d") == {"a1x": "a1", "a1y": "a1", "b2x": "b2"}


def test_balanced_cuts_by_hand():
    # sizes 2,1,1,2,1,1 (8 images) into 3: array_split targets 3 and 6 images
    assert balanced_cuts([2, 1, 1, 2, 1, 1], 3) == [0, 2, 4, 6]
    assert balanced_cuts([1] * 7, 3) == [0, 3, 5, 7]
    assert balanced_cuts([5, 1, 1], 3) == [0, 1, 2, 3]  # every fold keeps a group


def test_split_errors_are_clear():
    with pytest.raises(InputError, match="not a valid regular expression"):
        make_folds(["a", "b", "c"], 2, group_by="(")
    with pytest.raises(UsageError, match="does not match 1 image name"):
        make_folds(["s1_a", "s2_b", "x"], 2, group_by=r"^(s\d)_")
    with pytest.raises(UsageError, match="only 2 groups"):
        make_folds(["s1_a", "s1_b", "s2_a"], 3, group_by=r"^(s\d)_")
    with pytest.raises(UsageError, match="only 3 images"):
        make_folds(["a", "b", "c"], 6)
    with pytest.raises(UsageError, match="folds=1"):
        make_folds(["a", "b"], 1)
    with pytest.raises(UsageError, match="repeat"):
        make_folds(["a", "a", "b"], 2)


def test_cv_config_and_recipes_are_validated():
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        CVConfig(models=("nope",))
    with pytest.raises(UsageError, match="variant 'P4'"):
        CVConfig(variants=("P4",))
    with pytest.raises(UsageError, match="regular expression"):
        CVConfig(group_by="[")
    assert CVConfig(variants=["p2"]).variants == ("P2",)
    recipes = recipes_for(
        ("iternet", "unet-small", "fr-unet"), "quick", None, {"epochs": 1}, {"base_channels": 8}
    )
    assert recipes["iternet"].model_config == {"base_channels": 8}
    assert recipes["unet-small"].model_config == {"base_channels": 8}
    assert "base_channels" not in recipes["fr-unet"].model_config
    assert {r.epochs for r in recipes.values()} == {1}
    with pytest.raises(UsageError, match="iterations apply to none"):
        recipes_for(("unet-small",), "quick", None, {}, {"iterations": 2})
    with pytest.raises(UsageError, match="val_fraction"):
        recipes_for(("iternet",), "quick", None, {"train_split": "training"})
    assert list(recipes_for(None, "unet-small-oct")) == ["unet-small"]


# --------------------------------------------------------------------------- aggregation


def _fold(seed: int, names: list[str]) -> tuple[dict, list, list]:
    rng = np.random.default_rng(seed)
    labels = [rng.random(50) < 0.3 for _ in names]
    probs = [np.clip(lab * 0.4 + rng.random(50) * 0.6, 0, 1).astype(np.float32) for lab in labels]
    result = evaluate(probs, labels, None, 0.5, names)
    for row, p, lab in zip(result["per_image"], probs, labels, strict=True):
        pred = p >= 0.5
        row.update(tp=int((pred & lab).sum()), fp=int((pred & ~lab).sum()))
        row.update(fn=int((~pred & lab).sum()), tn=int((~pred & ~lab).sum()))
    return result, probs, labels


def test_aggregate_folds_pools_pixels_and_averages_folds():
    f1, p1, l1 = _fold(1, ["a", "b"])
    f2, p2, l2 = _fold(2, ["c", "d", "e"])
    pooled = evaluate(p1 + p2, l1 + l2, None, 0.5, ["a", "b", "c", "d", "e"])
    agg = aggregate_folds([f1, f2], pooled)
    assert agg["n_folds"] == 2 and agg["n_images"] == 5 and agg["n_pixels"] == 250
    for k in ("tp", "fp", "fn", "tn"):
        assert agg["confusion"][k] == f1["confusion"][k] + f2["confusion"][k]
    tp, fp, fn, tn = (agg["confusion"][k] for k in ("tp", "fp", "fn", "tn"))
    assert agg["pooled"]["accuracy"] == pytest.approx((tp + tn) / 250)
    a1, a2 = f1["pooled"]["accuracy"], f2["pooled"]["accuracy"]
    assert agg["fold_mean"]["accuracy"] == pytest.approx((a1 + a2) / 2)
    assert agg["fold_std"]["accuracy"] == pytest.approx(abs(a1 - a2) / 2)
    accs = [r["accuracy"] for r in f1["per_image"] + f2["per_image"]]
    assert agg["image_mean"]["accuracy"] == pytest.approx(np.mean(accs))
    assert [r["fold"] for r in agg["per_image"]] == [1, 1, 2, 2, 2]
    assert agg["per_image"][2]["tp"] == f2["per_image"][0]["tp"]
    bad = evaluate(p1 + p2, l1 + l2, None, 0.4, ["a", "b", "c", "d", "e"])
    with pytest.raises(ValueError, match="confusion"):
        aggregate_folds([f1, f2], bad)
    arms = [
        {"name": "x", "model": "iternet", "variant": "P1", "metrics": agg},
        {"name": "y", "model": "unet", "variant": "P1", "metrics": agg},
    ]
    table = format_comparison(arms)
    assert "x" in table.splitlines()[0] and len(table.splitlines()) == len(METRICS) + 2
    rows = comparison_csv(arms).splitlines()
    assert len(rows) == 3 and rows[0].startswith("arm,model,variant,n_folds,n_images,auc_roc,")


# --------------------------------------------------------------------------- end to end

TINY_ARGS = [
    "--folds", "3", "--model", "iternet", "--preset", "quick", "--base-channels", "4",
    "--iterations", "1", "--color", "gray", "--epochs", "2", "--steps-per-epoch", "3",
    "--crop", "32", "--images-per-batch", "2", "--crops-per-image", "2", "--device", "cpu",
    "--no-progress",
]  # fmt: skip


def tiny_recipes():
    return recipes_for(
        ("iternet",),
        "quick",
        None,
        {"epochs": 2, "steps_per_epoch": 3, "crop": 32, "images_per_batch": 2,
         "crops_per_image": 2, "device": "cpu"},
        {"base_channels": 4, "iterations": 1},
        "gray",
    )  # fmt: skip


@pytest.fixture(scope="module")
def phantom_data(tmp_path_factory) -> Path:
    from octvessel.oct.phantom import PhantomConfig, write_dataset

    root = tmp_path_factory.mktemp("phantom") / "cavri"
    cfg = PhantomConfig(bscans=32, depth=96, ascans=48, field_mm=(3.0, 3.0), axial_um=8.0)
    write_dataset(root, n=6, seed=0, config=cfg, volumes=False)
    return root


@pytest.fixture(scope="module")
def cv_dir(phantom_data, tmp_path_factory) -> Path:
    """An uninterrupted 3-fold cv through the command line (in process)."""
    out = tmp_path_factory.mktemp("cv") / "cv"
    assert main(["cv", "-d", str(phantom_data), "-o", str(out), *TINY_ARGS]) == 0
    return out


def test_cv_end_to_end_writes_splits_folds_and_aggregates(cv_dir, capsys):
    splits = json.loads((cv_dir / "splits.json").read_text())
    assert splits["fold_sizes"] == [2, 2, 2] and splits["n_images"] == 6
    assert [f.test for f in read_splits(cv_dir / "splits.json")][0] == (
        "phantom_000",
        "phantom_001",
    )
    doc = json.loads((cv_dir / "cv_metrics.json").read_text())
    (arm,) = doc["arms"]
    assert arm["name"] == "iternet-P1"
    agg = arm["metrics"]
    assert agg["n_folds"] == 3 and agg["n_images"] == 6 and agg["n_pixels"] == 6 * 32 * 48
    fold_sum = {k: 0 for k in ("tp", "fp", "fn", "tn")}
    for i in (1, 2, 3):
        fold_dir = cv_dir / "iternet-P1" / f"fold_{i}"
        m = json.loads((fold_dir / "eval" / "metrics.json").read_text())
        assert [r["name"] for r in m["per_image"]] == list(splits["splits"][i - 1]["test"])
        assert m["variant"] == "P1"
        for k in fold_sum:
            fold_sum[k] += m["confusion"][k]
        assert (fold_dir / "run" / "best.safetensors").is_file()
        assert json.loads((fold_dir / "fold.json").read_text())["epochs"] == 2
    assert agg["confusion"] == fold_sum
    assert 0.0 <= agg["pooled"]["auc_roc"] <= 1.0
    assert (cv_dir / "iternet-P1" / "roc.png").is_file()
    rows = (cv_dir / "cv_metrics.csv").read_text().splitlines()
    assert rows[0].startswith("arm,model,variant,row,n_images,auc_roc")
    assert [r.split(",")[3] for r in rows[1:]] == [
        "fold_1", "fold_2", "fold_3", "pooled", "fold_mean", "fold_std", "image_mean", "image_std"
    ]  # fmt: skip
    assert (cv_dir / "comparison.csv").read_text().count("\n") == 2
    # a rerun skips every finished fold and gives the same numbers
    capsys.readouterr()
    assert main(["cv", "-d", str(cv_dir.parent.parent / "x"), "-o", str(cv_dir), *TINY_ARGS]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    again = run_cv(
        json.loads((cv_dir / "cv.json").read_text())["dataset"],
        cv_dir,
        CVConfig(folds=3),
        tiny_recipes(),
        progress=False,
        log=lambda s: None,
    )
    assert len(again.skipped) == 3 and not again.trained
    assert again.arms[0]["metrics"]["pooled"] == pytest.approx(agg["pooled"])
    # another recipe or other folds in the same folder are refused
    other = recipes_for(("iternet",), "quick", None, {"lr": 0.5}, {"base_channels": 4})
    with pytest.raises(InputError, match="another recipe"):
        run_cv(phantom_dir(cv_dir), cv_dir, CVConfig(folds=3), other, progress=False, log=print)
    with pytest.raises(InputError, match="folds saved here differ"):
        run_cv(phantom_dir(cv_dir), cv_dir, CVConfig(folds=2), tiny_recipes(), progress=False)


def phantom_dir(cv_dir: Path) -> str:
    return json.loads((cv_dir / "cv.json").read_text())["dataset"]


def test_interrupted_cv_resumes_to_the_same_weights_and_metrics(cv_dir, phantom_data, tmp_path):
    out = tmp_path / "cv"
    cfg = CVConfig(folds=3)
    # 1) stopped inside fold 1's second epoch, as a signal in the trainer stops it
    first = run_cv(
        phantom_data, out, cfg, tiny_recipes(), progress=False,
        stop_after_steps={("iternet-P1", 1): 4}, log=lambda s: None,
    )  # fmt: skip
    assert first.interrupted and not first.arms
    assert (out / "iternet-P1" / "fold_1" / "run" / "training_state.safetensors").is_file()
    assert not (out / "iternet-P1" / "fold_1" / "fold.json").exists()

    # 2) a real SIGTERM when fold 3 starts: the cv stops before scoring fold 3
    def log(line: str) -> None:
        if "fold 3/3: training" in line:
            os.kill(os.getpid(), signal.SIGTERM)

    second = run_cv(phantom_data, out, cfg, tiny_recipes(), progress=False, log=log)
    assert second.interrupted and second.trained == ["iternet-P1 fold 1/3", "iternet-P1 fold 2/3"]
    assert second.stop_signal == signal.SIGTERM  # the CLI exits 128 + 15 = 143
    assert not (out / "iternet-P1" / "fold_3" / "fold.json").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    # 3) the rerun finishes; weights and metrics equal the uninterrupted run's
    third = run_cv(phantom_data, out, cfg, tiny_recipes(), progress=False, log=lambda s: None)
    assert not third.interrupted and len(third.skipped) == 2
    for i in (1, 2, 3):
        for name in ("last.safetensors", "best.safetensors"):
            a = load_file(str(cv_dir / "iternet-P1" / f"fold_{i}" / "run" / name))
            b = load_file(str(out / "iternet-P1" / f"fold_{i}" / "run" / name))
            assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a), (i, name)
    ref = json.loads((cv_dir / "cv_metrics.json").read_text())["arms"][0]["metrics"]
    got = json.loads((out / "cv_metrics.json").read_text())["arms"][0]["metrics"]
    assert got["pooled"] == ref["pooled"] and got["fold_mean"] == ref["fold_mean"]
    assert got["confusion"] == ref["confusion"]


def test_comparison_of_variants_gives_one_side_by_side_table(phantom_data, tmp_path, capsys):
    args = [a if a != "3" else "2" for a in TINY_ARGS]  # 2 folds
    args[args.index("--epochs") + 1] = "1"
    out = tmp_path / "cmp"
    code = main(["cv", "-d", str(phantom_data), "-o", str(out), *args, "--variant", "P1,P3"])
    assert code == 0
    text = capsys.readouterr().out
    assert "comparison:" in text and "iternet-P1" in text and "iternet-P3" in text
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["arm"] for r in rows] == ["iternet-P1", "iternet-P3"]
    assert {r["variant"] for r in rows} == {"P1", "P3"}
    assert rows[0]["accuracy"] != rows[1]["accuracy"] or rows[0]["auc_roc"] != rows[1]["auc_roc"]
    # variants are refused on a layout that has none; unknown models list the valid ones
    generic = tmp_path / "generic"
    (generic / "images").mkdir(parents=True)
    (generic / "labels").mkdir()
    from octvessel.data import write_image, write_mask

    for i in range(3):
        write_image(generic / "images" / f"g{i}.png", np.full((20, 20, 1), 0.5, np.float32))
        write_mask(generic / "labels" / f"g{i}.png", np.eye(20, dtype=bool))
    assert main(["cv", "-d", str(generic), "-o", str(tmp_path / "g"), "--variant", "P2"]) == 2
    assert "CAVRI-C datasets only" in capsys.readouterr().err
    assert main(["cv", "-d", str(generic), "-o", str(tmp_path / "g"), "--model", "x,y"]) == 2
    assert "available: iternet" in capsys.readouterr().err
    assert main(["cv", "-d", str(generic), "-o", str(tmp_path / "g"), "--group-by", "(("]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err


def test_cv_help_reuses_the_train_options_and_report_is_implemented(capsys):
    from octvessel.commands import cv as cv_command
    from octvessel.commands import report as report_command

    for module in (cv_command, report_command):
        assert "not implemented" not in module.HELP
    with pytest.raises(SystemExit) as exc:
        main(["cv", "-h"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--preset", "--config", "--base-channels", "--device", "--variant",
                 "--folds", "--shuffle", "--split-seed", "--group-by", "'all'"):  # fmt: skip
        assert flag in out, flag


def test_cli_ctrl_c_exits_130_and_the_rerun_finishes(phantom_data, tmp_path, monkeypatch, capsys):
    import octvessel.training as training

    real_train = training.train

    def train_after_ctrl_c(*args, **kwargs):  # Ctrl-C arrives as fold 1 starts training
        monkeypatch.setattr(training, "train", real_train)
        os.kill(os.getpid(), signal.SIGINT)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", train_after_ctrl_c)
    args = [a if a != "3" else "2" for a in TINY_ARGS]
    args[args.index("--epochs") + 1] = "1"
    out = tmp_path / "cv"
    assert main(["cv", "-d", str(phantom_data), "-o", str(out), *args]) == 130
    assert "run the same command again" in capsys.readouterr().err
    assert (out / "splits.json").is_file() and not (out / "cv_metrics.json").exists()
    assert main(["cv", "-d", str(phantom_data), "-o", str(out), *args]) == 0
    # fold 1 had finished training but was not scored: the rerun resumes (no step) and scores it
    text = capsys.readouterr().out
    assert "fold 1/2: resuming" in text and "2 fold(s) trained, 0 skipped" in text
    assert json.loads((out / "cv_metrics.json").read_text())["arms"][0]["metrics"]["n_folds"] == 2


def test_cv_model_all_compares_every_registered_network(phantom_data, tmp_path, capsys):
    """Issue 7: `octvessel cv --model all` trains and scores all six networks, one table."""
    from octvessel.models import list_models

    args = [a if a != "3" else "2" for a in TINY_ARGS]  # 2 folds
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--steps-per-epoch") + 1] = "1"
    out = tmp_path / "all"
    assert main(["cv", "-d", str(phantom_data), "-o", str(out), *args, "--model", "all"]) == 0
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["arm"].rsplit("-P", 1)[0] for r in rows] == list(list_models())
    assert len(rows) == 6
    for r in rows:
        assert 0.0 <= r["auc_roc"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0
        fold_dirs = sorted(p.name for p in (out / r["arm"]).iterdir() if p.is_dir())
        assert len([d for d in fold_dirs if d.startswith("fold")]) == 2, (r["arm"], fold_dirs)
    text = capsys.readouterr().out
    assert all(name in text for name in list_models())


def test_cv_dataset_option_is_advertised_once_and_path_variants_work(
    phantom_data, tmp_path, capsys
):
    """Issue 16 case 6: `-d` once in the help, and `PATH:P1,P3` means `--variant P1,P3`."""
    with pytest.raises(SystemExit):
        main(["cv", "-h"])
    out = capsys.readouterr().out
    assert out.count("-d DATASET, --dataset DATASET") == 1 and "repeat to pool" not in out
    assert "PATH:P1,P3 is PATH with --variant P1,P3" in " ".join(out.split())
    args = [a if a != "3" else "2" for a in TINY_ARGS]  # 2 folds
    args[args.index("--epochs") + 1] = "1"
    out_dir = tmp_path / "cv"
    assert main(["cv", "-d", f"{phantom_data}:P3", "-o", str(out_dir), *args]) == 0
    rows = json.loads((out_dir / "comparison.json").read_text())
    assert [(r["arm"], r["variant"]) for r in rows] == [("iternet-P3", "P3")]
    capsys.readouterr()
    code = main(["cv", "-d", f"{phantom_data}:P2", "-o", str(tmp_path / "x"), *args,
                 "--variant", "P3"])  # fmt: skip
    assert code == 2
    assert "give the variants once" in capsys.readouterr().err
