"""Writing reconstructions: CAVRI-C-style en-face images, a JSON sidecar, the boundaries.

For a volume named ``<prefix>`` and the variants asked for, in the output folder:

- ``<prefix>_fundus_P1.bmp`` / ``_P2`` / ``_P3`` (``full``/``retina``/``shadow`` are written
  under their preset names; custom slabs as ``_slab1``, ``_slab2`` ...): 8-bit grayscale.
- ``<prefix>_enface.json``: the sidecar -- source file and format, volume shape and
  spacing, laterality, grid (native or isotropic) with the native shape and the row
  mapping, pixel spacing, boundary source and detector settings, and per image its slab,
  reducer, normalisation and stretch range. :func:`octvessel.oct.to_native_grid` uses
  ``native_shape`` to map predictions on an isotropic image back to the native grid.
- ``<prefix>_boundaries.npz``: the boundary height maps used (B-scans x A-scans, samples),
  when any slab needed boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__
from octvessel.atomic import atomic_path, check_writable, write_json
from octvessel.data.io import write_image, write_mask
from octvessel.oct.enface import (
    EnFace,
    EnFaceConfig,
    check_enface_volume,
    normalize_stripes,
    parse_variant,
    reconstruct_all,
    resolve_boundaries,
    vessel_contrast,
)
from octvessel.oct.layers import DETECTED, DetectConfig, boundary_errors, detect_boundaries
from octvessel.oct.volume import Volume, write_volume

__all__ = ["output_names", "sidecar", "write_dataset_sample", "write_reconstructions"]


def output_names(prefix: str, variants: Sequence[str], shadow_um: float = 60.0) -> list[str]:
    """File names of the images for ``variants`` (validated): ``<prefix>_fundus_P1.bmp`` ..."""
    names, slabs = [], 0
    for v in variants:
        name, _ = parse_variant(v, shadow_um)
        if name == "slab":
            slabs += 1
            tag = f"slab{slabs}"
        else:
            tag = {"full": "P1", "retina": "P2", "shadow": "P3"}.get(name, name)
        names.append(f"{prefix}_fundus_{tag}.bmp")
    if len(set(names)) != len(names):
        raise_duplicate(names)
    return names


def raise_duplicate(names: list[str]) -> None:
    from octvessel.errors import UsageError

    dup = sorted({n for n in names if names.count(n) > 1})
    raise UsageError(f"variants ask for the same image twice: {', '.join(dup)}")


def sidecar(
    volume: Volume,
    images: Sequence[EnFace],
    files: Sequence[str],
    boundary_source: str,
    boundary_file: str | None,
    config: EnFaceConfig,
    detect_config: DetectConfig | None,
) -> dict[str, Any]:
    """The JSON sidecar of one volume's reconstructions."""
    first = images[0]
    return {
        "schema": 1,
        "octvessel": __version__,
        "source": str(volume.path) if volume.path else None,
        "format": volume.meta.get("format"),
        "axes": ["B-scan", "depth", "A-scan"],
        "volume_shape": list(volume.shape),
        "volume_spacing_mm": list(volume.spacing),
        "spacing_source": volume.meta.get("spacing_source"),
        "laterality": volume.laterality,
        "grid": "isotropic" if config.isotropic else "native",
        "native_shape": list(first.native_shape),
        "shape": list(first.image.shape),
        "spacing_mm": list(first.spacing),
        "row_mapping": "output row j samples native row (j + 0.5) * native_rows / rows - 0.5, "
        "linearly; octvessel.oct.to_native_grid inverts it",
        "boundaries": {
            "source": boundary_source,
            "file": boundary_file,
            "detector": (detect_config or DetectConfig()).to_dict()
            if boundary_source == "detected"
            else None,
        },
        "normalization": "row, then column, stripes removed: median level minus its "
        "Gaussian trend (sigma 6 rows / 8 columns)"
        if config.normalize
        else None,
        "config": config.to_dict(),
        "images": {
            f: {
                "variant": e.variant,
                "preset": e.preset,
                "slab": e.slab.to_dict(),
                "description": e.slab.describe(),
                "stretch_range": e.meta["stretch"]["range"],
            }
            for f, e in zip(files, images, strict=True)
        },
        "warnings": list(volume.meta.get("warnings") or []),
    }


def check_isotropic_spacing(volume: Volume, config: EnFaceConfig) -> None:
    """``isotropic`` needs a physical spacing: not one assumed for want of any source.

    Raw Avanti files are the exception: their spacing is the device protocol's.
    """
    if (
        config.isotropic
        and volume.meta.get("spacing_source") == "assumed"
        and volume.meta.get("format") != "avanti"
    ):
        from octvessel.errors import UsageError

        raise UsageError(
            f"--isotropic needs the scan's physical spacing, and {volume.path or 'the volume'} "
            "gives none; pass --spacing SLOW,AXIAL,FAST (mm)"
        )


def write_reconstructions(
    volume: Volume,
    out_dir: str | Path,
    prefix: str | None = None,
    variants: Sequence[str] = ("P1", "P2", "P3"),
    config: EnFaceConfig | None = None,
    *,
    detect_config: DetectConfig | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Reconstruct ``variants`` of ``volume`` and write images, sidecar and boundaries.

    Every output is checked before any work, so an existing file (without ``overwrite``)
    fails fast. With ``overwrite``, files of an earlier reconstruction of this volume that
    the new one does not write (other variants, boundaries no longer needed) are removed
    once the new sidecar is written. Returns the sidecar dict (also written as
    ``<prefix>_enface.json``).
    """
    cfg = config or EnFaceConfig()
    if prefix is None:
        prefix = volume.path.stem if volume.path else "volume"
    out = Path(out_dir)
    names = output_names(prefix, variants, cfg.shadow_um)
    json_path = out / f"{prefix}_enface.json"
    bnd_path = out / f"{prefix}_boundaries.npz"
    needed = sorted({b for v in variants for b in parse_variant(v, cfg.shadow_um)[1].boundaries})
    surf_path = out / f"{prefix}_surfaces.npz"
    qc_path = out / f"{prefix}_qc.png"
    extra = [bnd_path, surf_path, qc_path] if needed else []
    for p in [*(out / n for n in names), json_path, *extra]:
        check_writable(p, overwrite)
    check_enface_volume(volume)
    check_isotropic_spacing(volume, cfg)
    earlier = sidecar_files(json_path) if overwrite else []
    boundaries: dict[str, np.ndarray] = {}
    source = "none"
    if needed:
        boundaries, source = resolve_boundaries(volume, needed, cfg.boundaries, detect_config)
    images = reconstruct_all(volume, variants, cfg, boundaries=boundaries)
    boundary_file = None
    if needed:
        for e in images:
            if e.slab.boundaries:
                e.meta["boundary_source"] = source
        with atomic_path(bnd_path, overwrite) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, **{k: np.asarray(v, np.float32) for k, v in boundaries.items()}
                )
        boundary_file = bnd_path.name
    for name, e in zip(names, images, strict=True):
        write_image(out / name, e.to_uint8(), overwrite=overwrite)
    info = sidecar(volume, images, names, source, boundary_file, cfg, detect_config)
    if needed and all(k in boundaries for k in ("ILM", "RPE", "BM")):
        info.update(write_quality(volume, boundaries, surf_path, qc_path, prefix, overwrite))
        info["warnings"] = [*info["warnings"], *info["quality"]["warnings"]]
    write_json(json_path, info, overwrite)
    written = {json_path.name, *names, *([bnd_path.name] if boundary_file else [])}
    written |= {(info.get(k) or {}).get("file") for k in ("surfaces", "qc")} - {None}
    for name in earlier:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    return info


def sidecar_files(path: Path) -> list[str]:
    """The files an existing sidecar says its reconstruction wrote (none if unreadable)."""
    import json

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(info, dict):
        return []
    files = list(info.get("images") or {})
    for key in ("boundaries", "surfaces", "qc"):
        entry = info.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            files.append(entry["file"])
    # only plain names beside the sidecar: never a path elsewhere
    return [f for f in files if isinstance(f, str) and Path(f).name == f]


def write_quality(
    volume: Volume,
    surfaces: dict[str, np.ndarray],
    surf_path: Path,
    qc_path: Path,
    title: str,
    overwrite: bool,
) -> dict[str, Any]:
    """Assess the surfaces, write NAME_surfaces.npz and NAME_qc.png; sidecar entries."""
    from octvessel.oct.qc import write_qc
    from octvessel.oct.quality import assess

    named = {k: surfaces[k] for k in DETECTED if k in surfaces}
    q = assess(volume.data, named, volume.spacing)
    with atomic_path(surf_path, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                **{k: np.asarray(v, np.float32) for k, v in named.items()},
                confidence=q["confidence"],
            )
    shown = write_qc(
        qc_path, volume.data, named, q["confidence"], q["jump_map"], volume.spacing,
        f"{title}: surfaces and quality (octvessel {__version__})", overwrite,
    )  # fmt: skip
    return {
        "surfaces": {
            "file": surf_path.name,
            "names": list(named),
            "arrays": "float32 (B-scans, A-scans): depth in samples (voxel centres); "
            "'confidence' in [0, 1]",
        },
        "qc": {"file": qc_path.name, **shown},
        "quality": {k: v for k, v in q.items() if k not in ("confidence", "jump_map")},
    }


# ---------------------------------------------------------------------------- phantom


def write_dataset_sample(
    root: Path, name: str, phantom: Any, *, volumes: bool, overwrite: bool
) -> dict[str, Any]:
    """Write one phantom into a CAVRI-C-style dataset folder; return its statistics."""
    volume = phantom.volume
    detected = detect_boundaries(volume)
    images = reconstruct_all(volume, ("P1", "P2", "P3"), boundaries=detected)
    for e in images:
        e.meta["boundary_source"] = "detected"
        write_image(
            root / "images" / f"{name}_fundus_{e.preset}.bmp", e.to_uint8(), overwrite=overwrite
        )
    write_mask(root / "manual" / f"{name}_fundus_ref.bmp", phantom.vessels, overwrite=overwrite)
    write_mask(
        root / "mask" / f"{name}_mask.bmp",
        np.ones(phantom.vessels.shape, bool),
        overwrite=overwrite,
    )
    if volumes:
        write_volume(
            root / "volumes" / f"{name}.npz",
            phantom.with_truth(),
            dtype="uint8",
            extra={"vessels": phantom.vessels, "vessel_diameter_um": phantom.diameter_um},
            compress=False,  # speckle hardly compresses (-17 %) and deflate takes seconds
            overwrite=overwrite,
        )
        from octvessel.sim.morphometry_truth import (
            write_phantom_truth,  # the phantom's true morphometry
        )

        write_phantom_truth(root / "volumes" / f"{name}_morphometry.json", phantom, overwrite)
    errors = boundary_errors(detected, phantom.boundaries)
    contrast = {
        e.preset: vessel_contrast(normalize_stripes(e.raw), phantom.vessels) for e in images
    }
    return {
        "name": name,
        "seed": phantom.seed,
        "laterality": volume.laterality,
        "vessel_fraction": float(phantom.vessels.mean()),
        "boundary_error_px": {
            k: {m: round(v[m], 3) for m in ("median", "p95")} for k, v in errors.items()
        },
        "vessel_contrast": {k: round(v["contrast"], 4) for k, v in contrast.items()},
        "vessel_cnr": {k: round(v["cnr"], 3) for k, v in contrast.items()},
    }
