"""The one place that decides an input's pixel size (DESIGN.md section 11).

:func:`resolve_pixel_size` answers "how large is a pixel of this image?" for every command
(``predict``, ``evaluate``, ``cv``, ``train``, ``measure``) and the Python API, first found
wins:

1. the user: ``--spacing ROW,COL`` (mm per pixel), then ``--fov-px N`` (the diameter of a
   photograph's field of view in pixels);
2. the data: the reconstruction sidecar ``*_enface.json`` listing the image
   (``spacing_mm``), ``dataset.json`` (``spacing``) in the image's folder or up to two
   folders above (or the spacing a dataset reader put on the sample), a HEYEX-style XML
   beside the image (``ScaleX`` and the B-scan distance), a ``prediction.json`` that
   recorded it;
3. an estimate, for photographs only: the FOV diameter (widest row or column) of the
   given or derived FOV mask. A FOV diameter is not a length: it becomes one relative to
   a model that records the FOV diameter of its training images (same field angle
   assumed; see docs/scale.md);
4. else none: the image is taken to be on the model's grid (no resampling).

Bad values (zero, negative, not finite, over :data:`MAX_SPACING_MM`, a FOV under
:data:`MIN_FOV_FRACTION` of the image) raise :class:`~octvessel.errors.UsageError` (given
by the user) or :class:`~octvessel.errors.InputError` (found in a file): one line, exit 2.

:class:`ModelScale` is the other half: what a network learned at (a bundle's
``config.json`` ``scale``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.data.fov import MIN_FOV_FRACTION, derive_fov, fov_diameter
from octvessel.oct.heyex_xml import find_heyex_xml, read_heyex_geometry
from octvessel.pixel_size import (
    MAX_SPACING_MM,
    SOURCES,
    ModelScale,
    PixelSize,
    check_fov_px,
    check_spacing,
    parse_spacing,
)

#: a derived FOV covering at least this fraction of the image means "no surround" (an OCT
#: en-face image, a cropped photograph): no estimate
_NO_SURROUND = 0.98

__all__ = [
    "MAX_SPACING_MM",
    "MIN_FOV_FRACTION",
    "SOURCES",
    "ModelScale",
    "PixelSize",
    "check_fov_px",
    "check_spacing",
    "parse_spacing",
    "resolve_pixel_size",
    "spacing_from_files",
]


# ------------------------------------------------------------------------------ the data


def json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def folders_above(path: Path, levels: int = 2) -> list[Path]:
    """``path``'s folder (``path`` itself when it is one) and up to ``levels`` above it."""
    folder = path.parent if not path.is_dir() else path
    return [folder, *list(folder.parents)[:levels]]


def _lists(images: Any, name: str) -> bool:
    return any(
        Path(str(f)).stem == name or Path(str(f)).stem.startswith(name + "_") for f in images
    )


def spacing_from_files(path: str | Path, name: str | None = None) -> PixelSize | None:
    """The pixel size the files beside ``path`` record (step 2 of the module docstring).

    ``name``: the image's name (default: the file stem; ``_prob``/``_mask`` suffixes are the
    caller's business).
    """
    path = Path(path)
    name = name or path.stem
    folders = folders_above(path)
    for folder in folders:
        for side in sorted(folder.glob("*_enface.json")):
            info = json_object(side) or {}
            if info.get("spacing_mm") and _lists(info.get("images") or {}, name):
                return PixelSize(
                    check_spacing(info["spacing_mm"], "spacing_mm", side),
                    None,
                    "sidecar",
                    str(side),
                )
    for folder in folders:
        ds = json_object(folder / "dataset.json")
        if ds and ds.get("spacing"):
            where = folder / "dataset.json"
            return PixelSize(
                check_spacing(ds["spacing"], "spacing", where), None, "dataset", str(where)
            )
    xml = find_heyex_xml(path.parent)
    if xml is not None:
        geo = read_heyex_geometry(xml)
        spacing = check_spacing((geo.spacing[0], geo.spacing[2]), "HEYEX spacing", xml)
        return PixelSize(spacing, None, "heyex-xml", str(xml))
    pj_path = path.parent / "prediction.json"
    pj = json_object(pj_path) or {}
    per = (pj.get("images") or {}).get(name) or {}
    recorded = ((pj.get("scale") or {}).get("images") or {}).get(name) or {}
    value = (
        per.get("pixel_size_mm")
        or per.get("spacing")
        or recorded.get("spacing_mm")
        or pj.get("spacing")
    )
    if value:
        return PixelSize(check_spacing(value, "spacing", pj_path), None, "prediction", str(pj_path))
    return None


def _fov_estimate(image: np.ndarray | None, fov: np.ndarray | None, name: str) -> PixelSize | None:
    given = fov is not None
    mask = np.asarray(fov, bool) if given else (derive_fov(image) if image is not None else None)
    if mask is None:
        return None
    if mask.mean() >= _NO_SURROUND:
        return None  # no dark surround: not a photograph, nothing to estimate from
    diameter = fov_diameter(mask, name)
    how = "given FOV mask" if given else "derived FOV mask"
    return PixelSize(None, diameter, "fov-estimate", f"FOV diameter {diameter:g} px ({how})")


def resolve_pixel_size(
    *,
    spacing: Any = None,
    fov_px: Any = None,
    path: str | Path | None = None,
    name: str | None = None,
    data_spacing: Any = None,
    data_source: str = "dataset",
    image: np.ndarray | None = None,
    fov: np.ndarray | None = None,
    estimate: bool = True,
) -> PixelSize:
    """An input's pixel size and its source, in the order of the module docstring.

    Args:
        spacing: the user's ``--spacing`` (row, col) mm, or None.
        fov_px: the user's ``--fov-px``, or None.
        path: the image file (its sidecars, dataset.json and XML are looked for beside it).
        name: the image's name for sidecars (default: the file stem).
        data_spacing: a spacing the data already carry (e.g. ``Sample.spacing``).
        data_source: what to call ``data_spacing``'s source.
        image, fov: the image (float H x W x C) and its FOV mask, for the estimate.
        estimate: False skips the FOV estimate (``measure`` needs millimetres).
    """
    if spacing is not None:
        return PixelSize(check_spacing(spacing, "--spacing"), None, "--spacing")
    if fov_px is not None:
        return PixelSize(None, check_fov_px(fov_px), "--fov-px")
    if data_spacing is not None:
        return PixelSize(
            check_spacing(data_spacing, "spacing", path), None, data_source, str(path or "")
        )
    if path is not None:
        found = spacing_from_files(path, name)
        if found is not None:
            return found
    if estimate:
        found = _fov_estimate(image, fov, str(path or name or "image"))
        if found is not None:
            return found
    return PixelSize()
