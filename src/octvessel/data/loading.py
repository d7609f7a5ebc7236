"""Read one sample's files: image, label, FOV mask (derived when there is none).

Kept apart from :mod:`octvessel.data.layouts` (which finds the files) and
:mod:`octvessel.data.datasets` (which selects them), so neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from octvessel.data.fov import derive_fov
from octvessel.data.io import LUMA_WEIGHTS, read_image, read_mask
from octvessel.data.sample import Sample
from octvessel.errors import InputError

if TYPE_CHECKING:
    from octvessel.data.layouts import SampleRef

#: CAVRI-C scans are Optovue Avanti "3D Retina" 7 x 7 mm; native grid 141 x 385 (H x W),
#: and the authors' 385 x 385 resamples.
CAVRI_SCAN_MM = 7.0
CAVRI_NATIVE_SHAPES = ((141, 385), (385, 385))


def load_ref(ref: SampleRef) -> Sample:
    """Read one sample's files; the FOV is derived from the image when there is no mask."""
    image = read_image(ref.image_path)
    if ref.channels is not None and image.shape[2] != ref.channels:
        image = _convert_channels(image, ref.channels)
    h, w = image.shape[:2]
    label = None
    if ref.label_path is not None:
        label = read_mask(ref.label_path, what="label")
        _check_size(ref.label_path, "label", label.shape, ref.image_path, (h, w))
    if ref.mask_path is not None:
        fov = read_mask(ref.mask_path, what="FOV mask")
        _check_size(ref.mask_path, "FOV mask", fov.shape, ref.image_path, (h, w))
        source = "file"
    else:
        fov = derive_fov(image)
        source = "full" if fov.all() else "derived"
    spacing = ref.spacing
    if spacing is None and ref.format == "cavri" and (h, w) in CAVRI_NATIVE_SHAPES:
        spacing = (CAVRI_SCAN_MM / h, CAVRI_SCAN_MM / w)
    return Sample(
        image=image,
        label=label,
        fov=fov,
        name=ref.name,
        path=ref.image_path,
        spacing=spacing,
        split=ref.split,
        label_path=ref.label_path,
        fov_path=ref.mask_path,
        fov_source=source,
        meta={"format": ref.format, **ref.meta},
    )


def _check_size(
    path: Path, what: str, shape: tuple[int, ...], image_path: Path, hw: tuple[int, int]
) -> None:
    if tuple(shape) != hw:
        raise InputError(
            f"{what} is {shape[1]}x{shape[0]} (WxH) but image {image_path} is {hw[1]}x{hw[0]}; "
            "they must have the same size",
            path,
        )


def _convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """H x W x C float32 -> H x W x ``channels`` (RGB -> gray by BT.601 luminance)."""
    if channels == 3:
        return np.ascontiguousarray(np.repeat(image[..., :1], 3, axis=2))
    luma = np.array(LUMA_WEIGHTS, dtype=np.float32)
    return np.ascontiguousarray(np.clip(image[..., :3] @ luma, 0.0, 1.0)[..., None])


__all__ = ["CAVRI_NATIVE_SHAPES", "CAVRI_SCAN_MM", "load_ref"]
