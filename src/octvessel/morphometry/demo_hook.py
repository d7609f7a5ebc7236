"""The demo's morphometry step: measure its predictions with the phantom's pixel size,
the fovea found from the detected surfaces, and the phantom's laterality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError


def measure_demo(
    out: Path, pred_dir: Path, phantom: Any, boundaries: dict[str, np.ndarray], overwrite: bool
) -> dict[str, Any]:
    """Write ``out/measurements`` for the demo's predictions; return the whole-image rows."""
    from octvessel.morphometry.inputs import fovea_from_surfaces
    from octvessel.morphometry.output import measure_folder

    shape = phantom.vessels.shape
    spacing = (phantom.config.spacing[0], phantom.config.spacing[2])
    fovea = fovea_from_surfaces(boundaries, shape)
    print(
        f"      morphometry: spacing {spacing[0]:.4f} x {spacing[1]:.4f} mm (phantom), fovea "
        f"({fovea[0]:.1f}, {fovea[1]:.1f}) from the detected surfaces (true "
        f"{phantom.fovea[0]:.1f}, {phantom.fovea[1]:.1f}), {phantom.volume.laterality}"
    )
    try:
        info = measure_folder(
            pred_dir, out / "measurements", spacing=spacing, fovea=fovea,
            laterality=phantom.volume.laterality, overwrite=overwrite,
            say=lambda s: print("      " + s),
        )  # fmt: skip
    except InputError as exc:  # e.g. a model whose mask is empty: the demo goes on without it
        print(f"      morphometry skipped: {exc}")
        return {}
    return {r["image"]: r for r in info["rows"] if r["region"] == "whole"}
