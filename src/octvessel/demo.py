"""``octvessel demo``: the main job end to end on embedded defaults, in well under two minutes.

1. makes a deterministic synthetic OCT volume (:mod:`octvessel.oct.phantom`: 141 B-scans x
   640 samples x 385 A-scans over 7 x 7 mm, the Avanti 3D Retina grid) with known layer
   boundaries and a known vessel tree;
2. detects the ILM / RPE / BM boundaries (:func:`octvessel.oct.layers.detect_boundaries`) and
   scores them against the truth;
3. reconstructs the P1 / P2 / P3 en-face images (:func:`octvessel.oct.enface.reconstruct_all`);
4. segments the vessels of each with a shipped model (default ``iternet-oct``);
5. scores the vessel maps against the phantom's truth with the one metric protocol;
6. writes probability maps, masks, overlays, a summary picture and an HTML report.

Everything is synthetic: it shows the pipeline works and what it produces, not how well a
model does on real scans (no labelled OCT data exists in this project; see the model card).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__, atomic, layout
from octvessel.config import JsonConfig, check_bool, check_int
from octvessel.data import write_image, write_mask
from octvessel.errors import InputError
from octvessel.inference import predict_image
from octvessel.metrics import evaluate
from octvessel.visualize import error_map, overlay, save_figure

VARIANTS = ("P1", "P2", "P3")


@dataclass(frozen=True)
class DemoConfig(JsonConfig):
    """What the demo does; the defaults are the README's main job.

    Attributes:
        model: the vessel model: a shipped name, a run or bundle folder, or a ``.safetensors``.
        seed: the phantom's seed (same seed -> the same volume, bit for bit).
        bf16: bfloat16 autocast for inference (faster on AVX-512 bf16 / AMX CPUs).
        threshold: probability threshold of the binary masks.
    """

    model: str = "iternet-oct"
    seed: int = 0
    bf16: bool = True
    threshold: float = 0.5

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)
        check_bool("bf16", self.bf16)
        if not 0.0 < float(self.threshold) < 1.0:
            raise InputError(f"threshold={self.threshold!r}: expected a value in (0, 1)")


def run_demo(
    out: str | Path, cfg: DemoConfig | None = None, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the demo into folder ``out``; returns the metrics (per variant) and timings."""
    from octvessel.models import load_model
    from octvessel.oct.enface import reconstruct_all
    from octvessel.oct.layers import boundary_errors, detect_boundaries
    from octvessel.oct.phantom import make_volume

    cfg = cfg or DemoConfig()
    out = Path(out)
    if (out / layout.METRICS_JSON).exists() and not overwrite:
        raise InputError("holds a finished demo already; pass --overwrite to redo it", out)
    atomic.check_writable(out / layout.METRICS_JSON, overwrite=True)
    model, bundle = load_model(cfg.model)  # fail early on a bad model reference
    timing: dict[str, float] = {}
    t0 = time.perf_counter()

    print(f"[1/6] synthetic OCT volume (phantom, seed {cfg.seed})")
    phantom = make_volume(seed=cfg.seed)
    volume = phantom.volume
    timing["phantom_s"] = time.perf_counter() - t0
    print(
        f"      {volume.shape[0]} B-scans x {volume.shape[1]} samples x {volume.shape[2]} A-scans, "
        f"spacing {', '.join(f'{s:.4f}' for s in volume.spacing)} mm"
    )

    t = time.perf_counter()
    print("[2/6] detecting layer surfaces (ILM, OPL, EZ, RPE, BM; graph search)")
    boundaries = detect_boundaries(volume)
    timing["boundaries_s"] = time.perf_counter() - t
    errors = boundary_errors(boundaries, phantom.boundaries)
    for name, e in errors.items():
        print(f"      {name}: median error {e['median']:.2f} px, p95 {e['p95']:.2f} px")

    t = time.perf_counter()
    print("[3/6] en-face reconstructions P1 (full depth), P2 (retina), P3 (shadow slab)")
    enfaces = reconstruct_all(volume, VARIANTS, boundaries=boundaries)
    timing["reconstruct_s"] = time.perf_counter() - t
    recon_dir = out / layout.RECONSTRUCTIONS_DIR
    for ef in enfaces:
        write_image(recon_dir / f"phantom_{ef.preset}.png", ef.image, overwrite=overwrite)
    write_mask(recon_dir / layout.PHANTOM_TRUTH, phantom.vessels, overwrite=overwrite)

    t = time.perf_counter()
    print(
        f"[4/6] vessel maps with {cfg.model} ({bundle.model}, {model.count_parameters():,} parameters)"
    )
    probs = [predict_image(model, ef.image.astype(np.float32), bf16=cfg.bf16) for ef in enfaces]
    timing["predict_s_per_image"] = (time.perf_counter() - t) / len(enfaces)
    pred_dir = out / layout.PREDICTIONS_DIR
    for ef, prob in zip(enfaces, probs, strict=True):
        stem = f"phantom_{ef.preset}"
        mask = prob >= cfg.threshold
        write_image(pred_dir / f"{stem}_prob.png", prob, overwrite=overwrite)
        write_mask(pred_dir / f"{stem}_mask.png", mask, overwrite=overwrite)
        write_image(
            pred_dir / f"{stem}_overlay.png",
            overlay(ef.image, mask).astype(np.float32) / 255,
            overwrite=overwrite,
        )

    print(
        f"[5/6] scoring against the phantom's vessel truth (all pixels, threshold {cfg.threshold})"
    )
    fov = np.ones_like(phantom.vessels, dtype=bool)
    scores = {
        ef.preset: evaluate([p], [phantom.vessels], [fov], threshold=cfg.threshold)
        for ef, p in zip(enfaces, probs, strict=True)
    }
    timing["total_s"] = time.perf_counter() - t0
    result = {
        "demo": cfg.to_dict(),
        "model": {"architecture": bundle.model, "reference": cfg.model, "sha256": bundle.sha256},
        "boundary_errors_px": errors,
        "metrics": {v: s["pooled"] for v, s in scores.items()},
        "timing": timing,
        "octvessel_version": __version__,
    }
    print_table(result["metrics"])

    from octvessel.morphometry.demo_hook import measure_demo  # morphometry hook

    result["morphometry"] = measure_demo(out, pred_dir, phantom, boundaries, overwrite)
    print("[6/6] pictures and report")
    _summary_figure(
        out / layout.DEMO_SUMMARY, volume, boundaries, phantom, enfaces, probs, cfg.threshold
    )
    _viewer(out, volume, boundaries, enfaces, probs, phantom.fovea, cfg.threshold)
    atomic.write_json(out / layout.METRICS_JSON, result, overwrite=True)
    report = _report(out)
    print(
        f"done in {time.perf_counter() - t0:.1f} s. Look at: {out / 'summary.png'}"
        + (f", {report}" if report else "")
        + f"; numbers in {out / 'metrics.json'}"
    )
    return result


def print_table(metrics: dict[str, dict[str, float]]) -> None:
    """One line per variant: AUC-ROC, AUC-PR, accuracy, sensitivity, specificity, F1."""
    keys = ("auc_roc", "auc_pr", "accuracy", "sensitivity", "specificity", "f1")
    print("      variant  " + "  ".join(f"{k:>11}" for k in keys))
    for variant, m in metrics.items():
        print(f"      {variant:<7}  " + "  ".join(f"{m.get(k, float('nan')):11.4f}" for k in keys))


def _viewer(out, volume, boundaries, enfaces, probs, fovea, threshold) -> None:
    """The linked OCT viewer's HTML fragment (viewer.html), embedded by the demo report."""
    from octvessel.report.viewer import ViewerData, viewer_html

    data = ViewerData(
        bscans=volume.data,
        spacing=volume.spacing,
        enfaces={ef.preset or ef.variant: ef.image for ef in enfaces},
        probabilities={ef.preset or ef.variant: p for ef, p in zip(enfaces, probs, strict=True)},
        surfaces=dict(boundaries),
        slabs={ef.preset or ef.variant: (ef.slab.top, ef.slab.bottom) for ef in enfaces},
        fovea=tuple(fovea),
        threshold=threshold,
    )
    atomic.write_text(out / "viewer.html", viewer_html(data), overwrite=True)


def _report(out: Path) -> Path | None:
    """The HTML report of the demo folder, when the report module can make one."""
    try:
        from octvessel.report import write_report
    except ImportError:
        return None
    return write_report(out, overwrite=True)


def _summary_figure(
    path: Path,
    volume: Any,
    boundaries: dict[str, np.ndarray],
    phantom: Any,
    enfaces: list[Any],
    probs: list[np.ndarray],
    threshold: float,
) -> None:
    from octvessel.visualize import new_figure

    nb = volume.shape[0]
    fig = new_figure(figsize=(16, 11))
    grid = fig.add_gridspec(4, 3, height_ratios=[1.4, 1, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    row = nb // 2
    ax.imshow(volume.data[row], cmap="gray", aspect="auto", interpolation="nearest")
    for name, color in (("ILM", "tab:orange"), ("RPE", "tab:green"), ("BM", "tab:cyan")):
        if name in boundaries:
            ax.plot(boundaries[name][row], color=color, lw=1, label=f"{name} detected")
        if name in phantom.boundaries:
            ax.plot(phantom.boundaries[name][row], color="white", lw=0.6, ls="--")
    ax.set_title(f"B-scan {row}: detected boundaries (colour) and truth (white dashes)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_axis_off()
    for r, (ef, prob) in enumerate(zip(enfaces, probs, strict=True), start=1):
        panels = [
            (ef.image, f"{ef.preset} ({ef.variant}) reconstruction"),
            (prob, "vessel probability"),
            (
                error_map(prob >= threshold, phantom.vessels),
                "TP white / FP red / FN blue vs truth",
            ),
        ]
        for c, (arr, title) in enumerate(panels):
            a = fig.add_subplot(grid[r, c])
            a.imshow(arr, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            a.set_title(title, fontsize=9)
            a.set_axis_off()
    save_figure(fig, path)
