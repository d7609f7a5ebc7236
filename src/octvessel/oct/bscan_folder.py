"""A folder of B-scan images as an OCT volume, with the spacing of a HEYEX XML beside it.

The images are taken in natural name order (``b2`` before ``b10``), colour images as
luma (:data:`octvessel.data.io.LUMA_WEIGHTS`). A HEYEX-style export keeps its B-scans in
a ``bscans`` sub-folder; :func:`bscan_subfolder` finds it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from octvessel.data.io import LUMA_WEIGHTS, is_image_file, read_image
from octvessel.errors import InputError
from octvessel.oct.read_common import check_voxels, natural_key, plain_volume
from octvessel.oct.volume import Volume

__all__ = ["bscan_subfolder", "read_bscans", "spacing_from_xml"]

_LUMA = np.array(LUMA_WEIGHTS, dtype=np.float32)


def read_bscans(path: Path) -> Volume:
    files = sorted((p for p in path.iterdir() if is_image_file(p)), key=natural_key)
    if not files:
        raise InputError("no B-scan images in this folder", path)
    scans: list[np.ndarray] = []
    for f in files:
        img = read_image(f)
        if not scans:
            check_voxels((len(files), *img.shape[:2]), path, "B-scan folder")
        gray = img[..., 0] if img.shape[2] == 1 else img[..., :3] @ _LUMA
        if scans and gray.shape != scans[0].shape:
            raise InputError(
                f"B-scan is {gray.shape[1]}x{gray.shape[0]} (WxH) but {files[0].name} is "
                f"{scans[0].shape[1]}x{scans[0].shape[0]}; all B-scans must have the same size",
                f,
            )
        scans.append(gray.astype(np.float32))
    vol = plain_volume(np.stack(scans), path, "bscans", files=[f.name for f in files])
    return spacing_from_xml(vol, path)


def bscan_subfolder(folder: Path) -> Path | None:
    """The one sub-folder of B-scan images of a folder that has none itself, else None."""
    if any(is_image_file(q) for q in folder.iterdir()):
        return None
    subs = [q for q in folder.iterdir() if q.is_dir() and q.name.lower() in ("bscans", "b-scans")]
    return subs[0] if len(subs) == 1 else None


def spacing_from_xml(vol: Volume, folder: Path) -> Volume:
    """Take the spacing from a HEYEX-style XML beside the B-scan folder, when it fits."""
    from octvessel.oct.heyex_xml import find_heyex_xml, read_heyex_geometry

    xml = find_heyex_xml(folder)
    if xml is None:
        return vol
    geo = read_heyex_geometry(xml)
    nb, nd, na = vol.shape
    if (geo.height, geo.width) != (nd, na) or geo.bscans != nb:
        vol.meta["warnings"] = [
            *(vol.meta.get("warnings") or []),
            f"{xml.name} describes {geo.bscans} B-scans of {geo.width}x{geo.height} but the "
            f"folder holds {nb} of {na}x{nd}; its spacing is not used",
        ]
        return vol
    notes = [w for w in vol.meta.get("warnings") or [] if not w.startswith("spacing assumed")]
    meta = {**vol.meta, "spacing_source": "file", "spacing_file": str(xml), "warnings": notes}
    return replace(vol, spacing=geo.spacing, meta=meta)
