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
