"""``evaluate --save-predictions`` resumes: the outputs saved by an interrupted run are kept.

A rerun of the same command (same model, preprocessing, inference settings and threshold:
the folder's ``prediction.json``) reads the probability of every image whose four outputs
are all there (``NAME_prob.tif``, float32, exact) instead of predicting it again, and
predicts the rest; another model's folder is refused unless ``overwrite``, which redoes
every image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import atomic
from octvessel.errors import InputError


@dataclass
class SavedPredictions:
    """The ``predictions/`` folder of an evaluation with a model.

    Attributes:
        folder: where the outputs go.
        predictor: the :class:`~octvessel.inference.predictor.Predictor` that makes them.
        threshold: the mask threshold (part of what made the outputs).
        overwrite: redo every image (else keep complete saved outputs).
        kept: names whose saved outputs were read back.
    """

    folder: Path
    predictor: Any
    threshold: float
    overwrite: bool
    kept: list[str] = field(default_factory=list)
    _recorded: bool = False

    def __post_init__(self) -> None:
        from octvessel.inference.outputs import MANIFEST, check_manifest

        check_manifest(self.folder, self.predictor.manifest(self.threshold), self.overwrite)
        if (
            not self.overwrite
            and not (self.folder / MANIFEST).is_file()
            and self.folder.is_dir()
            and any(self.folder.iterdir())
        ):
            raise InputError(
                f"holds files but no {MANIFEST} that says what made them; pass --overwrite "
                "(overwrite=True) to redo them, or choose another output folder",
                self.folder,
            )

    def saved(self, name: str) -> np.ndarray | None:
        """The saved probability of ``name`` when all its outputs are there (and not overwrite)."""
        from octvessel.data import read_image
        from octvessel.inference.outputs import output_paths

        if self.overwrite:
            return None
        paths = output_paths(self.folder, name)
        if not all(p.is_file() for p in paths.values()):
            return None
        self.kept.append(name)
        return read_image(paths["prob_tif"])[..., 0]  # float32 TIFF: the exact probability

    def write(self, name: str, image: np.ndarray, prob: np.ndarray) -> None:
        """Write the outputs of ``name`` (files of a cut-short earlier try are replaced)."""
        from octvessel.inference.outputs import MANIFEST

        if not self._recorded:  # what made the folder's outputs, before the first one lands
            atomic.write_json(
                self.folder / MANIFEST, self.predictor.manifest(self.threshold), overwrite=True
            )
            self._recorded = True
        self.predictor.write_outputs(
            self.folder, name, image, prob, threshold=self.threshold, overwrite=True
        )


__all__ = ["SavedPredictions"]
