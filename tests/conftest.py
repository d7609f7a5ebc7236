"""Shared data fixtures: the real datasets in ../shared/data and synthetic fundus images."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def shared_data_dir() -> Path:
    """``$OCTVESSEL_SHARED_DATA`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("OCTVESSEL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set OCTVESSEL_SHARED_DATA)")
    return root


def _dataset_dir(shared: Path, name: str) -> Path:
    d = shared / name
    if not d.is_dir():
        pytest.skip(f"{name} not found at {d}")
    return d


@pytest.fixture(scope="session")
def drive_dir(shared_data: Path) -> Path:
    return _dataset_dir(shared_data, "DRIVE")


@pytest.fixture(scope="session")
def stare_dir(shared_data: Path) -> Path:
    return _dataset_dir(shared_data, "STARE")


@pytest.fixture(scope="session")
def drive_samples(drive_dir: Path) -> list:
    """All 40 DRIVE samples (observer 1, official masks), loaded once per session."""
    from octvessel.data import load_dataset

    return load_dataset(drive_dir, require_labels=True)


@pytest.fixture(scope="session")
def stare_samples(stare_dir: Path) -> list:
    """The STARE samples with observer-1 labels and derived FOV, loaded once per session."""
    from octvessel.data import load_dataset

    return load_dataset(stare_dir, require_labels=True)


def fundus(
    h: int = 60,
    w: int = 64,
    *,
    radius: float = 0.45,
    center: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fundus photograph and its true disc.

    Returns (uint8 H x W x 3 image, bool H x W disc): an orange textured disc of radius
    ``radius * min(h, w)`` with dark vessel-like lines, on a near-black noisy surround.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = center if center is not None else ((h - 1) / 2, (w - 1) / 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= (radius * min(h, w)) ** 2
    img = np.empty((h, w, 3))
    img[..., 0] = 0.75 + 0.1 * np.sin(xx / 7.0)
    img[..., 1] = 0.40 + 0.05 * np.cos(yy / 5.0)
    img[..., 2] = 0.15
    vessels = (np.abs(np.sin((xx + 0.5 * yy) / 6.0)) < 0.12) & disc
    img[vessels] *= 0.55
    img += rng.normal(0, 0.02, img.shape)
    img[~disc] = 0.03 + rng.normal(0, 0.01, (int((~disc).sum()), 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), disc


@pytest.fixture
def make_fundus() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The :func:`fundus` generator, for tests that need fundus-like pictures."""
    return fundus


#: the smallest IterNet the tests build (one refinement, 4 base channels)
TINY_ITERNET = {"base_channels": 4, "iterations": 1}


def tiny_iternet(seed: int = 0, **config):
    """A tiny IterNet (``TINY_ITERNET`` plus ``config``), seeded, in eval mode."""
    import torch

    from octvessel.models import create_model

    torch.manual_seed(seed)
    return create_model("iternet", **{**TINY_ITERNET, **config}).eval()


@pytest.fixture
def make_tiny_iternet() -> Callable[..., object]:
    """The :func:`tiny_iternet` builder."""
    return tiny_iternet


def write_generic_dataset(
    root: Path, n: int = 3, h: int = 30, w: int = 34, seed: int = 0, fov_margin: int = 4
) -> dict[str, dict[str, np.ndarray]]:
    """A generic labelled dataset (images/, labels/, masks/, split ``test``) under ``root``.

    Returns ``{"labels": {name: bool H x W}, "fovs": {name: bool H x W}}``.
    """
    from octvessel import atomic
    from octvessel.data import write_image, write_mask

    rng = np.random.default_rng(seed)
    labels, fovs = {}, {}
    for i in range(n):
        name = f"case{i}"
        label = rng.random((h, w)) < 0.25
        fov = np.zeros((h, w), bool)
        fov[fov_margin:-fov_margin, fov_margin:-fov_margin] = True
        image = rng.random((h, w, 3)) * 0.5 + 0.4 * label[..., None]
        write_image(root / "images" / f"{name}.png", (image * 255).astype(np.uint8))
        write_mask(root / "labels" / f"{name}.png", label)
        write_mask(root / "masks" / f"{name}.png", fov)
        labels[name], fovs[name] = label, fov
    atomic.write_json(root / "dataset.json", {"splits": {"test": list(labels)}})
    return {"labels": labels, "fovs": fovs}


@pytest.fixture
def generic_dataset(tmp_path: Path) -> Path:
    """A 3-image generic labelled dataset (30 x 34, split ``test``) in a temporary folder."""
    root = tmp_path / "generic_dataset"
    write_generic_dataset(root)
    return root


@pytest.fixture
def leave_the_allocator_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process is shared with other tests: no process-wide malloc settings here
    (``OCTVESSEL_MALLOC_TUNING=0``, see :func:`octvessel.runtime.reuse_freed_memory`)."""
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")
