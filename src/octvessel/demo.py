"""``octvessel demo``: the main job end to end on embedded synthetic data.

1. draws a synthetic labelled dataset of OCT en-face-like images on the native Avanti grid
   (385 wide x 141 high) and writes it in the generic layout;
2. reads it back with :func:`octvessel.data.load_dataset`;
3. trains a compact IterNet with ``octvessel.training.train`` (CPU, a couple of minutes):
   the run folder holds best/last safetensors, config.json, model card, log and curve;
4. reloads the best weights through :func:`octvessel.models.load_model`;
5. predicts the held-out images and writes probability maps, masks and overlays;
6. scores them with the one metric protocol and writes ``metrics.json`` and pictures.

Everything is synthetic (see :mod:`octvessel.sim.vessels`): it shows the pipeline works,
not how well a model does on real scans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octvessel import __version__, atomic
from octvessel.config import JsonConfig
from octvessel.data import load_dataset, write_image, write_mask
from octvessel.errors import InputError, UsageError
from octvessel.inference import predict_image
from octvessel.metrics import evaluate, format_table
from octvessel.models import load_model
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training import TrainConfig, train
from octvessel.visualize import error_map, overlay, save_figure


@dataclass(frozen=True)
class DemoConfig(JsonConfig):
    """What the demo does; the defaults are the README's main job."""

    n_train: int = 12
    n_test: int = 4
    height: int = 141
    width: int = 385
    base_channels: int = 16
    iterations: int = 3
    steps: int = 300
    crop: int = 64
    batch: int = 8
    lr: float = 2e-3
    seed: int = 0
    bf16: bool = True
    val_fraction: float = 0.17

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_test < 1:
            raise UsageError("the demo needs at least one training and one test image")


def make_dataset(root: Path, cfg: DemoConfig, overwrite: bool) -> None:
    """Write the synthetic dataset in the generic layout with a dataset.json split."""
    tree = VesselTreeConfig(height=cfg.height, width=cfg.width)
    names = {"training": [], "test": []}
    for i in range(cfg.n_train + cfg.n_test):
        split = "training" if i < cfg.n_train else "test"
        name = f"synth_{i:03d}"
        image, label, _ = render_image(tree, seed=cfg.seed * 1000 + i, style="enface")
        write_image(root / "images" / f"{name}.png", image, overwrite=overwrite)
        write_mask(root / "labels" / f"{name}.png", label, overwrite=overwrite)
        names[split].append(name)
    atomic.write_json(
        root / "dataset.json",
        {
            "name": "octvessel synthetic en-face demo",
            "splits": names,
            "channels": 1,
            "spacing": [0.05, 0.0182],
        },
        overwrite=overwrite,
    )


def train_config(cfg: DemoConfig) -> TrainConfig:
    """The demo's recipe: a compact IterNet on gray en-face crops, flips, bf16 on CPU."""
    epochs = min(6, cfg.steps)
    return TrainConfig(
        model="iternet",
        model_config={"base_channels": cfg.base_channels, "iterations": cfg.iterations},
        preprocessing={"color": "gray"},
        epochs=epochs,
        steps_per_epoch=max(cfg.steps // epochs, 1),
        images_per_batch=cfg.batch,
        crops_per_image=1,
        crop=cfg.crop,
        lr=cfg.lr,
        augment="flips",
        val_fraction=cfg.val_fraction if cfg.n_train > 1 else 0.0,
        seed=cfg.seed,
        precision="bf16" if cfg.bf16 else "fp32",
        device="cpu",
    )


def run_demo(
    out: str | Path, cfg: DemoConfig | None = None, overwrite: bool = False, progress: bool = True
) -> dict:
    """Run the demo into folder ``out``; returns the evaluation result."""
    cfg = cfg or DemoConfig()
    out = Path(out)
    if (out / "metrics.json").exists() and not overwrite:
        raise InputError("holds a finished demo already; pass --overwrite to redo it", out)
    t0 = time.perf_counter()
    print(
        f"[1/5] drawing {cfg.n_train}+{cfg.n_test} synthetic en-face images ({cfg.width}x{cfg.height}) -> {out / 'data'}"
    )
    make_dataset(out / "data", cfg, overwrite=True)
    test = load_dataset(out / "data", split="test", require_labels=True)

    recipe = train_config(cfg)
    print(
        f"[2/5] training IterNet (k={cfg.base_channels}, {cfg.iterations} iterations): {recipe.epochs} epochs x "
        f"{recipe.steps_per_epoch} steps of {cfg.batch} crops of {cfg.crop}^2, seed {cfg.seed} -> {out / 'model'}"
    )
    result = train(
        out / "data",
        out / "model",
        recipe,
        overwrite=True,
        progress=progress,
        command="octvessel demo",
    )
    atomic.write_json(
        out / "demo_config.json",
        {"demo": cfg.to_dict(), "octvessel_version": __version__},
        overwrite=True,
    )
    chosen = "validation AUC" if recipe.val_fraction else "minus training loss"
    print(
        f"[3/5] reloading the best weights ({chosen} {result.best:.4f} at epoch {result.best_epoch}) from {out / 'model'}"
    )
    model, _ = load_model(out / "model")
    train_seconds = sum(h["seconds"] for h in result.history)

    print(f"[4/5] predicting {len(test)} held-out images -> {out / 'predictions'}")
    probs = []
    t_pred = time.perf_counter()
    for s in test:
        prob = predict_image(model, s.image, bf16=cfg.bf16)
        probs.append(prob)
        pred_dir = out / "predictions"
        write_image(pred_dir / f"{s.name}_prob.png", prob, overwrite=True)
        write_mask(pred_dir / f"{s.name}_mask.png", prob >= 0.5, overwrite=True)
        write_image(
            pred_dir / f"{s.name}_overlay.png",
            overlay(s.image, prob >= 0.5).astype(np.float32) / 255,
            overwrite=True,
        )
    pred_seconds = (time.perf_counter() - t_pred) / len(test)

    print("[5/5] scoring (pooled FOV pixels, threshold 0.5)")
    scores = evaluate(
        probs, [s.label for s in test], [s.fov for s in test], names=[s.name for s in test]
    )
    scores["timing"] = {
        "train_seconds": train_seconds,
        "predict_seconds_per_image": pred_seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    atomic.write_json(out / "metrics.json", scores, overwrite=True)
    _figures(out, test, probs)
    print(format_table(scores))
    print(
        f"done in {scores['timing']['total_seconds']:.0f} s; pictures: {out / 'summary.png'}, {out / 'model' / 'progress.png'}"
    )
    return scores


def _figures(out: Path, test, probs) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(test)
    fig, axes = plt.subplots(rows, 4, figsize=(16, 1.6 * rows * 141 / 141 + 0.6), squeeze=False)
    for r, (s, p) in enumerate(zip(test, probs, strict=True)):
        panels = [
            (s.image[..., 0], "image"),
            (s.label, "label"),
            (p, "probability"),
            (error_map(p >= 0.5, s.label, s.fov), "TP white / FP red / FN blue"),
        ]
        for c, (arr, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    save_figure(fig, out / "summary.png")
