"""What ``octvessel measure`` reads: masks or probability maps, their pixel size, fovea
and laterality, from the files themselves and the metadata octvessel writes beside them.

Pixel size, first found wins (:mod:`octvessel.scale`, the order every command shares):
``--spacing``; a reconstruction sidecar (``*_enface.json``, ``spacing_mm``) listing the
image; ``dataset.json`` (``spacing``) in the folder or up to two folders above; a
HEYEX-style XML beside it; ``prediction.json`` (``spacing``, ``images[NAME].spacing`` or
``scale.images[NAME].spacing_mm``); else none (pixel units). Laterality: ``--laterality``, the sidecar, or dataset.json's sample
of that name. Fovea: ``--fovea``, else the thinnest retina of the surfaces beside a
reconstruction (``NAME_surfaces.npz`` or the sidecar's boundaries file: ``ILM`` with
``BM``/``RPE``; the ILM pit alone when only ``ILM`` is there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from octvessel.data.io import is_image_file, read_image, read_mask
from octvessel.errors import InputError, UsageError
from octvessel.scale import folders_above, json_object, spacing_from_files

PROB_SUFFIXES = ("_prob",)
MASK_SUFFIXES = ("_mask",)


@dataclass(frozen=True)
class MeasureInput:
    """One image to measure: ``path``, ``name`` (stem without _prob/_mask), ``kind``."""

    path: Path
    name: str
    kind: str  # "probability" or "mask"


def _name(path: Path) -> tuple[str, str]:
    stem = path.stem
    for suf in PROB_SUFFIXES:
        if stem.endswith(suf):
            return stem[: -len(suf)], "probability"
    for suf in MASK_SUFFIXES:
        if stem.endswith(suf):
            return stem[: -len(suf)], "mask"
    return stem, "mask"


def list_measure_inputs(source: str | Path) -> list[MeasureInput]:
    """The images of a file or folder (a prediction folder: its ``_prob.tif`` maps,
    else ``_prob.png``, else ``_mask.png``; any other folder: every image, as a mask)."""
    p = Path(source)
    if p.is_file():
        name, kind = _name(p)
        return [MeasureInput(p, name, kind)]
    if not p.is_dir():
        raise InputError(
            "no such file or folder; expected a mask, a probability map or a folder", p
        )
    files = sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
    for pattern in ("_prob.tif", "_prob.png", "_mask.png"):
        chosen = [f for f in files if f.name.endswith(pattern)]
        if chosen:
            files = chosen
            break
    else:
        files = [f for f in files if not f.stem.endswith("_overlay")]
    if not files:
        raise InputError("holds no image files; expected masks or probability maps", p)
    return [MeasureInput(f, *_name(f)) for f in files]


def read_vessels(item: MeasureInput, threshold: float) -> np.ndarray:
    """bool H x W: a probability map at ``>= threshold``, or a strict two-level mask."""
    if item.kind == "probability":
        img = read_image(item.path)
        return img[..., 0] >= threshold if img.shape[2] == 1 else img.mean(axis=2) >= threshold
    try:
        return read_mask(item.path, what="vessel mask")
    except InputError as exc:
        raise InputError(
            f"{exc}; name probability maps NAME_prob.png / NAME_prob.tif to threshold them"
        ) from None


@dataclass(frozen=True)
class Metadata:
    """What the files beside an image say (None where they say nothing)."""

    spacing: tuple[float, float] | None
    spacing_source: str
    laterality: str | None
    surfaces: dict[str, np.ndarray] | None
    surfaces_source: str
    native_rows: int | None


def find_metadata(item: MeasureInput) -> Metadata:
    """Spacing, laterality and surfaces for ``item`` from sidecars (module docstring).

    The pixel size comes from :func:`octvessel.scale.spacing_from_files`, the source order
    every command shares; ``spacing_source`` is the file it was read from.
    """
    found = spacing_from_files(item.path, item.name)
    spacing = found.spacing if found is not None else None
    source = found.detail if found is not None else "none"
    lat, surf, surf_src, native_rows = None, None, "none", None
    for folder in folders_above(item.path.parent):
        for side in sorted(folder.glob("*_enface.json")):
            info = json_object(side) or {}
            images = info.get("images") or {}
            if not any(Path(f).stem == item.name for f in images):
                continue
            lat = info.get("laterality")
            native_rows = (info.get("native_shape") or [None])[0]
            prefix = side.name[: -len("_enface.json")]
            candidates = [folder / f"{prefix}_surfaces.npz"]
            bfile = (info.get("boundaries") or {}).get("file")
            if bfile:
                candidates.append(folder / bfile)
            for c in candidates:
                if c.is_file():
                    with np.load(c) as z:
                        surf = {k: np.asarray(z[k], float) for k in z.files}
                    surf_src = str(c)
                    break
            else:
                surf_src = f"none: {side.name} has no surfaces beside it"
            break
        if surf_src != "none" or lat is not None:
            break
    if lat is None:
        for folder in folders_above(item.path.parent):
            ds = json_object(folder / "dataset.json")
            if ds:
                for s in ds.get("samples") or []:
                    if isinstance(s, dict) and item.name.startswith(str(s.get("name", "\0"))):
                        lat = s.get("laterality")
                        break
                break
    return Metadata(spacing, source, lat, surf, surf_src, native_rows)


def fovea_from_surfaces(
    surfaces: dict[str, np.ndarray], shape: tuple[int, int], native_rows: int | None = None
) -> tuple[float, float]:
    """(row, col) of the fovea on an image of ``shape``: the thinnest retina (BM or RPE
    minus ILM, smoothed, sigma 3 pixels) in the central half of the field; with only
    ``ILM``, its deepest point after removing a fitted plane (the pit).

    Surfaces are (B-scans, A-scans) height maps in depth samples (larger = deeper); rows
    map to an isotropic image's rows as octvessel's reconstructions do.
    """
    if "ILM" not in surfaces:
        raise InputError(f"surfaces have no ILM (found: {', '.join(surfaces) or 'none'})")
    ilm = surfaces["ILM"]
    floor = surfaces.get("BM", surfaces.get("RPE"))
    if floor is not None and floor.shape == ilm.shape:
        score = -(floor - ilm)
    else:
        yy, xx = np.indices(ilm.shape)
        a = np.c_[yy.ravel(), xx.ravel(), np.ones(ilm.size)]
        coef, *_ = np.linalg.lstsq(a, ilm.ravel(), rcond=None)
        score = ilm - (a @ coef).reshape(ilm.shape)
    score = ndimage.gaussian_filter(np.nan_to_num(score, nan=-np.inf), 3.0)
    h, w = score.shape
    inner = np.full(score.shape, -np.inf)
    inner[h // 4 : h - h // 4, w // 4 : w - w // 4] = score[
        h // 4 : h - h // 4, w // 4 : w - w // 4
    ]
    r, c = np.unravel_index(int(np.argmax(inner)), score.shape)
    rows = native_rows or h
    row = (r + 0.5) * shape[0] / rows - 0.5
    col = (c + 0.5) * shape[1] / w - 0.5
    return float(row), float(col)


def parse_pair(text: str | None, what: str) -> tuple[float, float] | None:
    """ "A,B" -> (A, B) floats, or None."""
    if text is None:
        return None
    try:
        a, b = (float(v) for v in str(text).split(","))
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected two numbers, comma-separated") from None
    return a, b
