"""Pictures as pure functions returning uint8 RGB arrays (H x W x 3), plus figure helpers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import atomic

#: colours of the error map: true positive, false positive, false negative
TP_COLOR, FP_COLOR, FN_COLOR = (255, 255, 255), (230, 60, 60), (60, 140, 255)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """float H x W [x C] in [0, 1] -> uint8 H x W x 3."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)


def overlay(
    image: np.ndarray,
    prob: np.ndarray,
    color: tuple[int, int, int] = (40, 255, 80),
    alpha: float = 0.7,
) -> np.ndarray:
    """Vessel probability painted over the image: uint8 H x W x 3."""
    base = to_rgb8(image).astype(np.float32)
    a = (alpha * np.clip(prob, 0, 1))[..., None]
    out = base * (1 - a) + np.asarray(color, np.float32) * a
    return (out + 0.5).astype(np.uint8)


def error_map(pred: np.ndarray, label: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """TP white, FP red, FN blue, TN black, outside the FOV dark gray: uint8 H x W x 3."""
    pred, label = np.asarray(pred, bool), np.asarray(label, bool)
    out = np.zeros((*label.shape, 3), np.uint8)
    out[pred & label] = TP_COLOR
    out[pred & ~label] = FP_COLOR
    out[~pred & label] = FN_COLOR
    if fov is not None:
        out[~np.asarray(fov, bool)] = (40, 40, 40)
    return out


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` made outside pyplot (``kwargs``: figsize ...).

    No backend is chosen or switched (``matplotlib.use`` is never called), so the library
    leaves a notebook's or an application's matplotlib settings alone; PNGs render with Agg.
    """
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically as PNG and close it (if pyplot manages it)."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)
    return Path(path)


def _thin(x: np.ndarray, y: np.ndarray, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points of a curve (evenly spaced by index, end points kept)."""
    if len(x) <= n:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, n).round().astype(int))
    return x[idx], y[idx]


def roc_figure(
    pooled,
    auc: float,
    *,
    operating_point: tuple[float, float] | None = None,
    threshold: float = 0.5,
    per_image: list | None = None,
    title: str = "ROC (pooled FOV pixels)",
):
    """ROC figure: the pooled curve, thin per-image curves, and the point at the threshold.

    ``operating_point`` is (false positive rate, true positive rate) at ``threshold``.
    """
    fig = new_figure(figsize=(5.2, 5))
    ax = fig.subplots()
    for c in per_image or []:
        if c is not None:
            ax.plot(*_thin(c.fpr, c.tpr, 800), color="0.75", lw=0.6)
    ax.plot(*_thin(pooled.fpr, pooled.tpr), color="C0", lw=1.6, label=f"pooled, AUC {auc:.4f}")
    if operating_point is not None:
        ax.plot(*operating_point, "o", color="C3", label=f"threshold {threshold:g}")
    ax.plot([0, 1], [0, 1], ":", color="0.5", lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (1 - specificity)")
    ax.set(ylabel="true positive rate (sensitivity)", title=title)
    if per_image:
        ax.plot([], [], color="0.75", lw=0.6, label="per image")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def pr_figure(
    pooled,
    ap: float,
    *,
    operating_point: tuple[float, float] | None = None,
    threshold: float = 0.5,
    f1_optimal: dict | None = None,
    per_image: list | None = None,
    title: str = "precision-recall (pooled FOV pixels)",
):
    """Precision-recall figure with iso-F1 lines, the threshold's point and the F1-optimal one.

    ``operating_point`` is (recall, precision) at ``threshold``; ``f1_optimal`` is
    :meth:`octvessel.metrics.Curves.f1_optimal`'s dict.
    """
    fig = new_figure(figsize=(5.2, 5))
    ax = fig.subplots()
    r = np.linspace(0.01, 1, 200)
    for f in (0.2, 0.4, 0.6, 0.8):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = f * r / (2 * r - f)
        ok = (p > 0) & (p <= 1)
        ax.plot(r[ok], p[ok], color="0.85", lw=0.6)
        ax.annotate(f"F1 {f}", (1.0, f / (2 - f)), fontsize=7, color="0.6", ha="right")
    for c in per_image or []:
        if c is not None:
            ax.plot(*_thin(c.recall, c.precision, 800), color="0.75", lw=0.6)
    ax.plot(
        *_thin(pooled.recall, pooled.precision), color="C0", lw=1.6, label=f"pooled, AP {ap:.4f}"
    )
    if operating_point is not None:
        ax.plot(*operating_point, "o", color="C3", label=f"threshold {threshold:g}")
    if f1_optimal is not None:
        ax.plot(
            f1_optimal["recall"],
            f1_optimal["precision"],
            "s",
            color="C2",
            label=f"best F1 {f1_optimal['f1']:.4f} at {f1_optimal['threshold']:.3f}",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (sensitivity)", ylabel="precision")
    ax.set(title=title)
    if per_image:
        ax.plot([], [], color="0.75", lw=0.6, label="per image")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def fold_curves_figure(
    kind: str,
    pooled,
    pooled_value: float,
    parts: list[tuple[str, object, float]] | None = None,
    *,
    title: str | None = None,
):
    """ROC (``kind="roc"``) or precision-recall (``"pr"``) curves: pooled bold, parts thin.

    ``parts`` are (label, Curves or None, AUC or AP) of e.g. each cross-validation fold;
    ``pooled_value`` is the pooled AUC-ROC (roc) or average precision (pr).
    """
    if kind not in ("roc", "pr"):
        raise ValueError(f"kind={kind!r}: expected 'roc' or 'pr'")
    fig = new_figure(figsize=(5.2, 5))
    ax = fig.subplots()
    what = "AUC" if kind == "roc" else "AP"

    def xy(c) -> tuple[np.ndarray, np.ndarray]:
        return (c.fpr, c.tpr) if kind == "roc" else (c.recall, c.precision)

    for i, (label, c, value) in enumerate(parts or []):
        if c is not None:
            ax.plot(
                *_thin(*xy(c), 800),
                color=f"C{(i + 1) % 10}",
                lw=0.8,
                alpha=0.8,
                label=f"{label}, {what} {value:.4f}",
            )
    if pooled is not None:
        ax.plot(*_thin(*xy(pooled)), color="k", lw=1.8, label=f"pooled, {what} {pooled_value:.4f}")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ":", color="0.5", lw=0.8)
        ax.set(
            xlabel="false positive rate (1 - specificity)",
            ylabel="true positive rate (sensitivity)",
        )
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.set(xlabel="recall (sensitivity)", ylabel="precision")
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(title or ("ROC" if kind == "roc" else "precision-recall") + " (FOV pixels)")
    ax.grid(alpha=0.3)
    return fig


def panel_row(
    panels: list[np.ndarray], gap: int = 4, max_panel_width: int = 400, min_panel_width: int = 0
) -> np.ndarray:
    """Equal-size uint8 H x W x 3 panels side by side with a white ``gap``: uint8 H' x W' x 3.

    A panel wider than ``max_panel_width`` is shrunk (area average); one narrower than
    ``min_panel_width`` is enlarged by a whole factor (nearest neighbour, pixels stay crisp).
    """
    from PIL import Image

    h, w = panels[0].shape[:2]
    scale = min(1.0, max_panel_width / w)
    if min_panel_width and w < min_panel_width:
        scale = float(max(1, min_panel_width // w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    scaled = []
    for p in panels:
        if p.shape[:2] != (h, w):
            raise ValueError(f"panel shapes differ: {p.shape[:2]} and {(h, w)}")
        im = Image.fromarray(np.ascontiguousarray(p, dtype=np.uint8))
        if scale != 1.0:
            im = im.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST)
        scaled.append(np.asarray(im))
    out = np.full((size[1], len(panels) * size[0] + gap * (len(panels) - 1), 3), 255, np.uint8)
    for i, p in enumerate(scaled):
        x = i * (size[0] + gap)
        out[:, x : x + size[0]] = p
    return out


def training_curves_figure(histories: list[tuple[str, list[dict]]], *, title: str = "training"):
    """Loss (left) and validation AUC-ROC (right, when logged) per epoch of one or more runs.

    ``histories`` are (label, rows of a trainer's log.csv as dicts with ``epoch``, ``loss``
    and optionally ``val_auc``).
    """
    has_val = any(r.get("val_auc") is not None for _, rows in histories for r in rows)
    fig = new_figure(figsize=(10 if has_val else 5.5, 3.8))
    axes = fig.subplots(1, 2 if has_val else 1)
    axes = list(np.atleast_1d(axes))
    for i, (label, rows) in enumerate(histories):
        epochs = [r["epoch"] for r in rows]
        axes[0].plot(epochs, [r["loss"] for r in rows], "o-", ms=3, color=f"C{i % 10}", label=label)
        if has_val:
            pts = [(r["epoch"], r["val_auc"]) for r in rows if r.get("val_auc") is not None]
            if pts:
                axes[1].plot(*zip(*pts, strict=True), "s-", ms=3, color=f"C{i % 10}", label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss (sum over outputs)", title=title)
    if has_val:
        axes[1].set(xlabel="epoch", ylabel="validation AUC-ROC", title="validation")
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(histories) > 1 or histories and histories[0][0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
