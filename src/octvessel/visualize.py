"""Pictures as pure functions returning uint8 RGB arrays (H x W x 3), plus figure helpers."""

from __future__ import annotations

from pathlib import Path

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


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:  # noqa: ANN001 (matplotlib Figure)
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def _thin(x: np.ndarray, y: np.ndarray, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points of a curve (evenly spaced by index, end points kept)."""
    if len(x) <= n:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, n).round().astype(int))
    return x[idx], y[idx]


def roc_figure(
    pooled,  # noqa: ANN001 (octvessel.metrics.Curves)
    auc: float,
    *,
    operating_point: tuple[float, float] | None = None,
    threshold: float = 0.5,
    per_image: list | None = None,
    title: str = "ROC (pooled FOV pixels)",
):  # noqa: ANN201 (matplotlib Figure)
    """ROC figure: the pooled curve, thin per-image curves, and the point at the threshold.

    ``operating_point`` is (false positive rate, true positive rate) at ``threshold``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5))
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
    pooled,  # noqa: ANN001 (octvessel.metrics.Curves)
    ap: float,
    *,
    operating_point: tuple[float, float] | None = None,
    threshold: float = 0.5,
    f1_optimal: dict | None = None,
    per_image: list | None = None,
    title: str = "precision-recall (pooled FOV pixels)",
):  # noqa: ANN201 (matplotlib Figure)
    """Precision-recall figure with iso-F1 lines, the threshold's point and the F1-optimal one.

    ``operating_point`` is (recall, precision) at ``threshold``; ``f1_optimal`` is
    :meth:`octvessel.metrics.Curves.f1_optimal`'s dict.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5))
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
