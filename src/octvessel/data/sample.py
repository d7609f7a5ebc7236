"""The unit every reader returns: one image with its label and field-of-view mask."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Sample:
    """One labelled (or unlabelled) image.

    Attributes:
        image: float32 array, H x W x C, values in [0, 1] (C = 1 for grayscale, 3 for RGB).
        label: bool array, H x W (True = vessel), or None when the image has no label.
        fov: bool array, H x W, True inside the field of view (all True when the image has
            no dark surround, e.g. OCT reconstructions).
        name: short identifier, unique inside a dataset (e.g. ``"21"`` for DRIVE 21_training).
        path: the image file.
        spacing: (row, col) size of a pixel in millimetres, or None when unknown.
        split: the split the sample belongs to (``"training"``, ``"test"``) or None.
        label_path: the label file, or None.
        fov_path: the FOV mask file, or None when the mask was derived from the image.
        fov_source: ``"file"``, ``"derived"`` or ``"full"`` (whole image).
    """

    image: np.ndarray
    label: np.ndarray | None
    fov: np.ndarray
    name: str
    path: Path
    spacing: tuple[float, float] | None = None
    split: str | None = None
    label_path: Path | None = None
    fov_path: Path | None = None
    fov_source: str = "file"
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def channels(self) -> int:
        return int(self.image.shape[2])

    def __repr__(self) -> str:  # arrays would flood the terminal
        h, w = self.shape
        lab = "none" if self.label is None else f"{self.label.mean():.3f} vessel"
        return (
            f"Sample(name={self.name!r}, {h}x{w}x{self.channels}, label={lab}, "
            f"fov={self.fov_source}, split={self.split!r}, path='{self.path}')"
        )
