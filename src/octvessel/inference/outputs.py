"""The files a prediction folder holds, and how they are written and checked.

Per image ``NAME``: ``NAME_prob.png`` (16-bit probability, 0..65535), ``NAME_prob.tif``
(float32 probability, exact), ``NAME_mask.png`` (8-bit {0, 255} at the threshold),
``NAME_overlay.png`` (the mask over the image); the folder's ``prediction.json`` records
what made them. File names come from :mod:`octvessel.layout`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import layout
from octvessel.data.io import write_image, write_mask
from octvessel.errors import InputError, UsageError
from octvessel.visualize import overlay

#: output kinds and their file-name suffixes
OUTPUTS = layout.PREDICTION_OUTPUTS
MANIFEST = layout.PREDICTION_MANIFEST
#: inference settings that change resources, not results: free to differ on a rerun
RESOURCE_SETTINGS = ("memory_budget_mb", "batch_size")
#: manifest entries that must agree before new outputs join a folder
RESULT_KEYS = ("weights_sha256", "preprocessing", "inference", "threshold")


def output_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The output files of image ``name``: kind -> path (see :data:`OUTPUTS`)."""
    return layout.prediction_paths(out_dir, name)


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """This rank's share: items ``rank``, ``rank + world_size``, ... (disjoint, complete)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank={rank}, world_size={world_size}: expected 0 <= rank < world_size")
    return items[rank::world_size]


def write_outputs(
    out_dir: str | Path,
    name: str,
    image: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float = 0.5,
    overwrite: bool = False,
    kinds: tuple[str, ...] | None = None,
) -> list[Path]:
    """Write the probability (16-bit PNG, float32 TIFF), mask and overlay of one image.

    ``image``: float32 H x W x C in [0, 1]; ``prob``: float32 H x W in [0, 1]. Only
    ``kinds`` (default all of :data:`OUTPUTS`) are written; each atomically. Existing files
    raise :class:`InputError` unless ``overwrite``.
    """
    paths = output_paths(out_dir, name)
    mask = prob >= threshold
    writers = {
        "prob_png": lambda p: write_image(p, prob, bits=16, overwrite=overwrite),
        "prob_tif": lambda p: write_image(p, prob, overwrite=overwrite),
        "mask": lambda p: write_mask(p, mask, overwrite=overwrite),
        "overlay": lambda p: write_image(p, overlay(image, mask), overwrite=overwrite),
    }
    return [writers[kind](paths[kind]) for kind in kinds or tuple(OUTPUTS)]


def comparable(manifest: Any) -> Any:
    """``manifest`` without the resource settings (:data:`RESOURCE_SETTINGS`)."""
    if isinstance(manifest, dict) and isinstance(manifest.get("inference"), dict):
        inference = {k: v for k, v in manifest["inference"].items() if k not in RESOURCE_SETTINGS}
        return {**manifest, "inference": inference}
    return manifest


def check_manifest(out_dir: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix outputs of another model or threshold into a folder (unless overwrite).

    Resource settings (memory budget, batch size) may differ between runs.
    """
    path = Path(out_dir) / MANIFEST
    mine = comparable(manifest)
    if path.is_file() and not overwrite:
        try:
            theirs = comparable(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            theirs = None
        if isinstance(theirs, dict) and any(theirs.get(k) != mine[k] for k in RESULT_KEYS):
            differ = [k for k in RESULT_KEYS if theirs.get(k) != mine[k]]
            raise InputError(
                f"holds predictions made with another {' / '.join(differ)}; "
                "pass --overwrite (overwrite=True) to redo them, or choose another folder",
                out_dir,
            )


__all__ = [
    "MANIFEST",
    "OUTPUTS",
    "RESOURCE_SETTINGS",
    "check_manifest",
    "comparable",
    "output_paths",
    "shard",
    "write_outputs",
]
