"""The viewer's data from an ``octvessel reconstruct`` folder (+ ``octvessel predict`` maps).

A reconstruction folder holds ``NAME_enface.json`` (sidecar: source, spacing, images,
warnings) and the en-face PNGs. Vessel probabilities ``<image stem>_prob.png`` are looked
for beside them, in ``predictions/`` and in ``--predictions`` folders. Surfaces come from
``NAME_surfaces.npz`` (or the sidecar's boundary file) when reconstruct wrote one, else from the source volume: its own
boundaries, or ``octvessel.oct.layers.detect_boundaries``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octvessel.errors import InputError
from octvessel.report.page import read_json
from octvessel.report.viewer import ViewerData


def sidecars(d: Path) -> list[Path]:
    return sorted(d.glob("*_enface.json"))


def _prob(stem: str, folders: list[Path]) -> np.ndarray | None:
    from octvessel.evaluation import read_probability

    for f in folders:
        p = f / f"{stem}_prob.png"
        if p.is_file():
            return read_probability(p)
    return None


def viewer_data(sidecar: Path, predictions: list[Path] | None = None) -> ViewerData:
    """ViewerData of one reconstructed volume (reads its source volume for the B-scans)."""
    from octvessel.data import read_image
    from octvessel.oct import read_volume
    from octvessel.oct.layers import detect_boundaries

    info = read_json(sidecar)
    d = sidecar.parent
    src = info.get("source")
    if not src or not Path(src).exists():
        raise InputError(f"the source volume {src!r} named in the sidecar is gone", sidecar)
    spacing = tuple(info["volume_spacing_mm"])
    volume = read_volume(src, spacing=spacing)
    folders = [d, d / "predictions", *(predictions or [])]
    enfaces, probs, slabs = {}, {}, {}
    for fname, meta in info.get("images", {}).items():
        if not (d / fname).is_file():
            continue
        name = meta.get("preset") or meta.get("variant") or Path(fname).stem
        enfaces[name] = read_image(d / fname)
        p = _prob(Path(fname).stem, folders)
        if p is not None:
            probs[name] = p
        slab = meta.get("slab") or {}
        slabs[name] = (slab.get("top", "top"), slab.get("bottom", "bottom"))
    npz = d / sidecar.name.replace("_enface.json", "_surfaces.npz")
    bfile = (info.get("boundaries") or {}).get("file")
    if not npz.is_file() and bfile and (d / bfile).is_file():
        npz = d / bfile
    if npz.is_file():
        with np.load(npz) as z:
            surfaces = {k: z[k] for k in z.files if k != "confidence"}
        print(f"viewer: surfaces from {npz.name}")
    elif volume.boundaries:
        surfaces = dict(volume.boundaries)
    else:
        print(f"viewer: detecting layer surfaces of {src} (no {npz.name})")
        surfaces = detect_boundaries(volume)
    return ViewerData(
        bscans=volume.data,
        spacing=spacing,
        enfaces=enfaces,
        probabilities=probs,
        surfaces=surfaces,
        slabs=slabs,
        warnings=list(info.get("warnings") or []),
        fovea=None,
    )
