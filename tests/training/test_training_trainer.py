"""The trainer: recipes, augmentation, checkpoints, exact resume, signals, DDP, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from octvessel.data import write_image, write_mask
from octvessel.data.augment import AugmentConfig, random_crop
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.models import load_model
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training import TrainConfig, TrainingError, preset, resolve_config, train

TINY = dict(
    model_config={"base_channels": 4, "iterations": 2},
    preprocessing={"color": "gray"},
    epochs=3,
    steps_per_epoch=4,
    images_per_batch=2,
    crops_per_image=2,
    crop=32,
    val_fraction=0.25,
    seed=3,
)


def tiny_samples(n: int = 4, h: int = 40, w: int = 56) -> list[Sample]:
    out = []
    for i in range(n):
        im, lab, fov = render_image(VesselTreeConfig(height=h, width=w, root_radius=2.0), seed=i)
        out.append(Sample(image=im, label=lab, fov=fov, name=f"s{i}", path=None))
    return out


def write_generic(root: Path, n: int = 4) -> Path:
    for s in tiny_samples(n):
        write_image(root / "images" / f"{s.name}.png", s.image)
        write_mask(root / "labels" / f"{s.name}.png", s.label)
    return root


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


# ------------------------------------------------------------------ recipes


def test_presets_follow_the_design():
    ref = resolve_config("iternet-reference")
    assert (
        ref.optimizer,
        ref.lr,
        ref.images_per_batch,
        ref.crops_per_image,
        ref.crop,
        ref.epochs,
    ) == ("adam", 1e-3, 8, 4, 128, 200)
    assert ref.batch == 32 and ref.steps_for(20) == 63  # ceil(100 * 20 / 32)
    oct_ = resolve_config("iternet-oct")
    assert (oct_.crop, oct_.epochs) == (32, 25)
    with pytest.raises(UsageError, match="iternet-oct"):
        preset("no-such-preset")


def test_toml_and_overrides(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text("epochs = 7\ncrop = 48\n[model_config]\nbase_channels = 8\n")
    cfg = resolve_config("iternet-oct", toml, {"lr": 5e-4, "seed": None})
    assert (cfg.epochs, cfg.crop, cfg.lr, cfg.model_config) == (7, 48, 5e-4, {"base_channels": 8})
    toml.write_text("epochz = 7\n")
    with pytest.raises(UsageError, match="epochz"):
        resolve_config(None, toml)
    toml.write_text("epochs = [\n")
    with pytest.raises(InputError, match="TOML"):
        resolve_config(None, toml)
    with pytest.raises(UsageError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")


# ------------------------------------------------------------------ augmentation


def test_augmentation_moves_image_label_and_fov_together():
    rng = np.random.default_rng(0)
    field = rng.random((60, 70)).astype(np.float32)
    from scipy import ndimage

    field = ndimage.gaussian_filter(field, 3)
    field = (field - field.min()) / (field.max() - field.min())
    label, fov = field >= 0.5, field >= 0.3
    cfg = replace(AugmentConfig(), color_p=0.0, shear_p=0.5, zoom_p=0.5, shift_p=0.5)
    crops = [
        random_crop(field[None], label, fov, 32, np.random.default_rng(seed), cfg)
        for seed in range(20)
    ]
    for i, (x, y, f) in enumerate(crops):
        # the label and FOV were sampled with the same map as the image: they agree with
        # thresholds of the image up to interpolation at the edges ...
        assert np.mean(y == (x[0] >= 0.5)) > 0.97
        assert np.mean(f == (x[0] >= 0.3)) > 0.93  # nearest-neighbour sampled
        # ... and far less with another crop's image
        other = crops[(i + 1) % len(crops)][0][0]
        assert np.mean(y == (other >= 0.5)) < np.mean(y == (x[0] >= 0.5)) - 0.05
    a = random_crop(field[None], label, fov, 32, np.random.default_rng(5), AugmentConfig())
    b = random_crop(field[None], label, fov, 32, np.random.default_rng(5), AugmentConfig())
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_colour_jitter_changes_only_the_image():
    rng = np.random.default_rng(1)
    img = rng.random((3, 40, 40)).astype(np.float32)
    lab = img[0] > 0.5
    cfg = replace(AugmentConfig.preset("none"), color_p=1.0, brightness=0.2)
    x, y, _ = random_crop(img, lab, np.ones_like(lab), 40, np.random.default_rng(2), cfg)
    assert not np.allclose(x, img) and np.array_equal(y, lab)
    assert 0.0 <= x.min() and x.max() <= 1.0


# ------------------------------------------------------------------ runs


def test_train_writes_a_complete_run_folder(tmp_path):
    res = train(tiny_samples(), tmp_path / "run", TrainConfig(**TINY), progress=False)
    assert res.epochs_done == 3 and not res.interrupted
    names = {p.name for p in (tmp_path / "run").iterdir()}
    for f in (
        "best.safetensors",
        "last.safetensors",
        "config.json",
        "README.md",
        "training_state.safetensors",
        "train_config.json",
        "splits.json",
        "log.csv",
        "progress.png",
    ):
        assert f in names, f
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,steps,loss,loss_out0,loss_out1,loss_out2,lr")
    assert "val_auc" in log[0] and "data_share" in log[0] and len(log) == 4
    row = dict(zip(log[0].split(","), log[1].split(","), strict=True))
    px, patches = float(row["pixels_per_s"]), float(row["patches_per_s"])
    assert px == pytest.approx(patches * 32 * 32, rel=1e-4) and px > 0  # crop 32
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert len(splits["training"]) == 3 and len(splits["validation"]) == 1
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (
        cfg["metadata"]["seed"] == 3
        and cfg["metadata"]["fingerprint"]
        and cfg["metadata"]["torch_version"]
    )
    # the drop rate the layers really use (IterNet p = 0.1 at 1/256: 26/256), recorded
    assert cfg["metadata"]["dropout"] == {"random_bits": 8, "p_effective": {"0.1": 26 / 256}}
    assert "dropout as drawn" in (tmp_path / "run" / "README.md").read_text()
    model, bundle = load_model(tmp_path / "run")  # best.safetensors, sha256 checked
    assert bundle.preprocessing.color == "gray" and model.config.base_channels == 4
    with pytest.raises(InputError, match="resume"):
        train(tiny_samples(), tmp_path / "run", TrainConfig(**TINY), progress=False)


def test_interrupted_and_resumed_run_ends_with_identical_weights(tmp_path, capsys):
    # fp32: in bf16 the thread-count effect on the last bits is rounded away, so the
    # resumed-with-other-threads check below could not fail there
    cfg = TrainConfig(**{**TINY, "precision": "fp32"})
    threads = torch.get_num_threads()
    train(tiny_samples(), tmp_path / "a", cfg, progress=False)
    part = train(tiny_samples(), tmp_path / "b", cfg, progress=False, stop_after_steps=6)
    assert part.interrupted and part.epochs_done == 1
    pos = json.loads(
        __import__("safetensors")
        .safe_open(str(tmp_path / "b" / "training_state.safetensors"), "pt")
        .metadata()["position"]
    )
    assert (pos["epoch"], pos["step"], pos["threads"]) == (1, 2, threads)
    # resumed with another thread count (CPU results depend on it in the last bits): the
    # trainer runs on with the saved count, and gives the process its own back afterwards
    other = 1 if threads > 1 else 2
    torch.set_num_threads(other)
    try:
        done = train(tiny_samples(), tmp_path / "b", None, progress=False, resume=True)
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(threads)
    assert done.epochs_done == 3 and not done.interrupted
    a, b = (
        weights(tmp_path / "a" / "last.safetensors"),
        weights(tmp_path / "b" / "last.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert f"resuming with {threads} threads" in capsys.readouterr().out
    assert (tmp_path / "a" / "log.csv").read_text().count("\n") == (
        tmp_path / "b" / "log.csv"
    ).read_text().count("\n")
    with pytest.raises(UsageError, match="lr"):
        train(tiny_samples(), tmp_path / "b", replace(cfg, lr=0.5), progress=False, resume=True)


def test_bad_input(tmp_path):
    unlabelled = [replace(s, label=None) for s in tiny_samples(2)]
    with pytest.raises(InputError, match="label"):
        train(unlabelled, tmp_path / "x", TrainConfig(**TINY), progress=False)
    # crops larger than the images are mirrored, not refused
    res = train(
        tiny_samples(2, 20, 24),
        tmp_path / "big",
        TrainConfig(**{**TINY, "crop": 48, "val_fraction": 0.0, "epochs": 1}),
        progress=False,
    )
    assert res.epochs_done == 1
    # a NaN loss stops with a clear message and writes no weights
    bad = tiny_samples(2)
    bad[0].image[:] = np.nan
    bad[1].image[:] = np.nan
    with pytest.raises(TrainingError, match="loss became nan"):
        train(bad, tmp_path / "nan", TrainConfig(**{**TINY, "val_fraction": 0.0}), progress=False)
    assert not (tmp_path / "nan" / "last.safetensors").exists()
    with pytest.raises(InputError, match="resume"):
        train(tiny_samples(), tmp_path / "nothing", None, resume=True, progress=False)


def test_cli_train_on_a_dataset_folder_and_sigint_saves_a_checkpoint(tmp_path):
    data = write_generic(tmp_path / "data")
    base = [
        sys.executable,
        "-m",
        "octvessel",
        "train",
        "-d",
        str(data),
        "--base-channels",
        "4",
        "--iterations",
        "1",
        "--color",
        "gray",
        "--crop",
        "32",
        "--images-per-batch",
        "2",
        "--crops-per-image",
        "2",
        "--no-progress",
    ]
    ok = subprocess.run(
        [*base, "-o", str(tmp_path / "run"), "--epochs", "1", "--steps-per-epoch", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "run" / "best.safetensors").is_file()
    # a run that would take hours, interrupted by SIGINT once it is training
    proc = subprocess.Popen(
        [*base, "-o", str(tmp_path / "long"), "--epochs", "1", "--steps-per-epoch", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("[train]"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert (tmp_path / "long" / "training_state.safetensors").is_file()
    assert (tmp_path / "long" / "last.safetensors").is_file()
    # resuming with a changed recipe is refused with exit code 2
    again = subprocess.run(
        [*base, "-o", str(tmp_path / "long"), "--resume", "--lr", "0.5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "lr" in again.stderr


DDP_SCRIPT = textwrap.dedent(
    """
    import hashlib, os, sys
    import torch
    sys.path.insert(0, os.environ["TESTS_DIR"])
    from test_training_trainer import TINY, tiny_samples
    from octvessel.training import TrainConfig, train
    cfg = TrainConfig(**{**TINY, "epochs": 2, "steps_per_epoch": 3})
    res = train(tiny_samples(), sys.argv[1], cfg, progress=False)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in res.model.parameters())).hexdigest()
    with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.txt"), "w") as fh:
        fh.write(digest)
    """
)


def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "TESTS_DIR": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            str(script),
            str(tmp_path / "run"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    d0, d1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert d0 == d1
    assert (tmp_path / "run" / "last.safetensors").is_file()
    meta = json.loads((tmp_path / "run" / "config.json").read_text())["metadata"]
    assert meta["world_size"] == 2


def test_several_dataset_folders_are_pooled(tmp_path):
    a, b = write_generic(tmp_path / "a", 3), write_generic(tmp_path / "b", 3)
    cfg = TrainConfig(**{**TINY, "epochs": 1, "steps_per_epoch": 1, "val_fraction": 0.2})
    res = train([a, b], tmp_path / "run", cfg, progress=False)
    meta = json.loads((tmp_path / "run" / "config.json").read_text())["metadata"]
    assert meta["dataset"] == f"{a} + {b}"
    assert meta["n_train"] + meta["n_val"] == 6 and meta["n_val"] == 2
    names = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert any(n.startswith("a/") for n in names["training"] + names["validation"])
    assert any(n.startswith("b/") for n in names["training"] + names["validation"])
    assert res.epochs_done == 1


def test_fine_tuning_starts_from_given_weights(tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 1, "steps_per_epoch": 2, "val_fraction": 0.0})
    train(tiny_samples(), tmp_path / "a", cfg, progress=False)
    tuned = replace(cfg, init_from=str(tmp_path / "a"), lr=1e-12, model_config={})
    train(tiny_samples(), tmp_path / "b", tuned, progress=False)
    a, b = (
        weights(tmp_path / "a" / "last.safetensors"),
        weights(tmp_path / "b" / "last.safetensors"),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # architecture came from "a"
    meta = json.loads((tmp_path / "b" / "config.json").read_text())["metadata"]
    assert meta["init_from"] == str(tmp_path / "a") and len(meta["init_sha256"]) == 64
    fresh = weights(tmp_path / "a" / "last.safetensors")
    other = replace(cfg, seed=cfg.seed + 1)
    train(tiny_samples(), tmp_path / "c", other, progress=False)
    assert not all(
        torch.equal(fresh[k], v) for k, v in weights(tmp_path / "c" / "last.safetensors").items()
    )
    with pytest.raises(UsageError, match="unet-small"):
        train(tiny_samples(), tmp_path / "d", replace(tuned, model="unet-small"), progress=False)


def test_dataset_spec_picks_variants():
    from octvessel.training.trainer import parse_dataset_spec

    assert parse_dataset_spec("data/phantoms:P1,P2,P3", ["P1"]) == (
        Path("data/phantoms"),
        ["P1", "P2", "P3"],
    )
    assert parse_dataset_spec("data/octified", ["P2"]) == (Path("data/octified"), ["P2"])
    assert parse_dataset_spec("C:/scans/x", ["P1"]) == (Path("C:/scans/x"), ["P1"])
    assert parse_dataset_spec("odd:name", ["P1"]) == (Path("odd:name"), ["P1"])


# ------------------------------------------------------- killed and resumed, for real

KILL_RECIPE = [
    "--base-channels", "4", "--iterations", "1", "--color", "gray", "--crop", "32",
    "--images-per-batch", "2", "--crops-per-image", "2", "--epochs", "2",
    "--steps-per-epoch", "40", "--val-fraction", "0.25", "--seed", "5", "--no-progress",
]  # fmt: skip
#: log.csv columns that are results (the others are timings)
RESULT_COLUMNS = ("epoch", "steps", "loss", "loss_out0", "loss_out1", "lr", "val_auc", "val_loss")


def _train_cmd(data: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "octvessel", "train", "-d", str(data), "-o", str(run),
            *KILL_RECIPE, *extra]  # fmt: skip


def _results(run: Path) -> list[dict[str, str]]:
    import csv

    with open(run / "log.csv", newline="") as fh:
        return [{k: row[k] for k in RESULT_COLUMNS} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(dataset, run folder, environment) of one uninterrupted CLI run."""
    root = tmp_path_factory.mktemp("kill")
    data = write_generic(root / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OCTVESSEL_MALLOC_TUNING": "0"}
    proc = subprocess.run(
        _train_cmd(data, root / "ref"), capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return data, root / "ref", env


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_killed_and_resumed_ends_like_an_uninterrupted_run(tmp_path, uninterrupted, sig):
    """SIGINT early in epoch 1, SIGTERM during epoch 2 (after a validation and a best
    checkpoint); `--resume` then ends with bit-identical weights and the same log."""
    import time

    from safetensors import safe_open

    data, ref, env = uninterrupted
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _train_cmd(data, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:
        if line.startswith("[train]"):
            break
    if sig == signal.SIGTERM:  # wait for epoch 1 to be logged, then stop epoch 2
        deadline = time.monotonic() + 300
        while not (run / "log.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    assert "--resume" in err and "Traceback" not in err
    with safe_open(str(run / "training_state.safetensors"), "pt") as fh:
        pos = json.loads(fh.metadata()["position"])
    assert 0 < pos["epoch"] * 40 + pos["step"] < 80  # stopped part-way, not at the end
    assert pos["epoch"] == (1 if sig == signal.SIGTERM else 0)
    assert not list(run.glob(".*tmp*"))  # no half-written checkpoint
    again = subprocess.run(
        _train_cmd(data, run, "--resume"), capture_output=True, text=True, env=env, timeout=600
    )
    assert again.returncode == 0, again.stderr
    for name in ("last.safetensors", "best.safetensors"):
        a, b = weights(ref / name), weights(run / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert _results(run) == _results(ref)
    best = [json.loads((r / "config.json").read_text())["metadata"]["best"] for r in (ref, run)]
    assert best[0] == best[1]


def test_resume_refuses_weights_and_state_from_different_steps(tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 2, "steps_per_epoch": 2})
    part = train(tiny_samples(), tmp_path / "run", cfg, progress=False, stop_after_steps=3)
    assert part.interrupted
    other = train(tiny_samples(), tmp_path / "other", cfg, progress=False, stop_after_steps=1)
    assert other.interrupted
    # as if the disk filled after last.safetensors but before training_state.safetensors
    (tmp_path / "run" / "last.safetensors").write_bytes(
        (tmp_path / "other" / "last.safetensors").read_bytes()
    )
    with pytest.raises(InputError, match="does not match"):
        train(tiny_samples(), tmp_path / "run", None, progress=False, resume=True)


def test_resumed_fused_adam_moments_keep_the_channels_last_layout(tmp_path):
    """safetensors stores a channels-last moment contiguous; the fused Adam kernel walks the
    parameter and its moments in memory order, so loading must restore the parameter's
    layout or the resumed steps apply scrambled moments."""
    from octvessel.training.build import make_optimizer
    from octvessel.training.checkpoint import load_state, save_state

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)

    def steps(net: torch.nn.Module, opt: torch.optim.Optimizer, seeds: range) -> None:
        for s in seeds:
            g = torch.Generator().manual_seed(s)
            for p in net.parameters():
                p.grad = torch.empty_like(p).copy_(torch.randn(p.shape, generator=g))
            opt.step()

    cfg = TrainConfig(**TINY)
    a = model()
    opt_a = make_optimizer(cfg, a.parameters())
    assert opt_a.defaults["fused"]  # the fused kernel on CPU
    steps(a, opt_a, range(3))
    save_state(tmp_path / "state.safetensors", opt_a, {"epoch": 1, "step": 3})
    b = model()
    b.load_state_dict(a.state_dict())
    opt_b = make_optimizer(cfg, b.parameters())
    load_state(tmp_path / "state.safetensors", opt_b)
    moment = opt_b.state[b.weight]["exp_avg"]
    assert moment.stride() == b.weight.stride() != b.weight.contiguous().stride()
    steps(a, opt_a, range(3, 6))
    steps(b, opt_b, range(3, 6))
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
