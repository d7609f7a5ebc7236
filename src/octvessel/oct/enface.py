"""En-face (fundus) reconstructions of an OCT volume: projections of depth slabs.

A slab runs from one boundary to another (``"top"`` / ``"bottom"`` are the image's first and
last sample), each shifted by an offset in micrometres (positive = deeper), and is reduced
over depth by ``mean``, ``sum``, ``max``, ``min`` or ``median``. Voxel ``z`` belongs to the
slab when ``top <= z < bottom`` (voxel centres; at least one voxel per A-scan).

Named variants and the presets of the OCT-vessel paper (Marciniak et al., Sensors 2023):

| preset | variant | slab |
|---|---|---|
| P1 | ``full`` | whole A-scan, mean |
| P2 | ``retina`` | ILM .. RPE, mean |
| P3 | ``shadow`` | RPE - ``shadow_um`` .. RPE, mean |

``shadow_um`` defaults to 60 um, about the photoreceptor inner and outer segments (external
limiting membrane to RPE): a bright band that lies wholly below the inner-retinal vessels,
so their shadows are not filled in by the vessels' own reflections.

The paper does not publish its layer ranges; these presets are octvessel's choice,
not a reproduction.

Post-processing, in order: per-B-scan and per-column normalisation against striping
(default on; :func:`normalize_stripes`: each row's level, a median along the row, minus
its smooth trend over rows is subtracted, then the same for columns -- additive, because
OCT intensities are log-compressed, where a gain change is an offset), optional isotropic
resampling of the slow axis, and a percentile contrast stretch to [0, 1] (8 bits on
output).

Image layout: rows = B-scans (file order), columns = A-scans; the native grid of an Avanti
3D Retina scan is 141 rows x 385 columns.

The pieces: slabs and variants in :mod:`.slabs`, boundaries and the reduction over depth
in :mod:`.projection`, de-striping, stretch and grids in :mod:`.postprocess`, the vessel
contrast measure in :mod:`.contrast`. This module holds the configuration, the result and
:func:`reconstruct` / :func:`reconstruct_all`, which chain them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from octvessel.config import JsonConfig
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.oct.contrast import vessel_contrast
from octvessel.oct.layers import DetectConfig
from octvessel.oct.postprocess import (
    isotropic_rows,
    normalize_stripes,
    resample_rows,
    stretch,
    to_native_grid,
)
from octvessel.oct.projection import project, resolve_boundaries
from octvessel.oct.slabs import (
    BOUNDARY_SOURCES,
    EDGES,
    NAMED_SLABS,
    NEEDED,
    PRESETS,
    REDUCERS,
    VARIANTS,
    Slab,
    parse_variant,
)
from octvessel.oct.volume import Volume

__all__ = [
    "BOUNDARY_SOURCES",
    "EDGES",
    "NEEDED",
    "PRESETS",
    "REDUCERS",
    "VARIANTS",
    "EnFace",
    "EnFaceConfig",
    "NAMED_SLABS",
    "Slab",
    "check_enface_volume",
    "isotropic_rows",
    "normalize_stripes",
    "parse_variant",
    "project",
    "reconstruct",
    "reconstruct_all",
    "resample_rows",
    "resolve_boundaries",
    "stretch",
    "to_native_grid",
    "vessel_contrast",
]


@dataclass(frozen=True)
class EnFaceConfig(JsonConfig):
    """How to turn a volume into en-face images.

    Attributes:
        shadow_um: thickness of the ``shadow`` (P3) slab above the RPE, micrometres.
        normalize: per-B-scan and per-column normalisation against striping.
        percentiles: (low, high) percentiles mapped to 0 and 1 by the contrast stretch.
        isotropic: resample the slow axis to the fast axis' spacing.
        boundaries: ``auto`` (the file's when it has those needed, else detected),
            ``file`` (the file's, an error when missing) or ``detect`` (always detect).
    """

    shadow_um: float = 60.0
    normalize: bool = True
    percentiles: tuple[float, float] = (0.5, 99.5)
    isotropic: bool = False
    boundaries: str = "auto"

    def __post_init__(self) -> None:
        check_choice("boundaries", self.boundaries, BOUNDARY_SOURCES)
        if not self.shadow_um > 0:
            raise UsageError(f"shadow_um={self.shadow_um!r} is not valid; expected > 0")
        lo, hi = (float(v) for v in self.percentiles)
        if not 0 <= lo < hi <= 100:
            raise UsageError(
                f"percentiles={self.percentiles!r} is not valid; expected 0 <= low < high <= 100"
            )
        object.__setattr__(self, "percentiles", (lo, hi))


@dataclass(eq=False)
class EnFace:
    """One en-face reconstruction.

    Attributes:
        image: float32 (rows, columns) in [0, 1] after normalisation and stretch.
        raw: float32 (rows, columns), the projection before normalisation and stretch,
            always on the native grid (B-scans x A-scans), in the volume's units.
        variant: ``full``, ``retina``, ``shadow`` or ``slab``; preset: ``P1``..``P3`` or None.
        slab: the slab projected.
        spacing: (row, column) pixel size in mm of ``image``.
        native_shape: (B-scans, A-scans) of the volume.
        meta: stretch range, normalisation, boundary source ...
    """

    image: np.ndarray
    raw: np.ndarray
    variant: str
    preset: str | None
    slab: Slab
    spacing: tuple[float, float]
    native_shape: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def isotropic(self) -> bool:
        return tuple(self.image.shape) != tuple(self.native_shape)

    def to_uint8(self) -> np.ndarray:
        """The image as uint8 (rows, columns)."""
        return np.rint(np.clip(self.image, 0.0, 1.0) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- public


def reconstruct(
    volume: Volume,
    variant: str | Slab = "P1",
    config: EnFaceConfig | None = None,
    *,
    boundaries: Mapping[str, np.ndarray] | None = None,
    detect_config: DetectConfig | None = None,
) -> EnFace:
    """One en-face image of ``volume``.

    Args:
        volume: the volume (B-scans, depth, A-scans).
        variant: ``P1``/``P2``/``P3``, ``full``/``retina``/``shadow``, a slab spec such as
            ``"ILM+20:RPE-10:max"``, or a :class:`Slab`.
        config: normalisation, stretch, grid, shadow thickness, boundary source.
        boundaries: boundaries to use (skips resolving them; e.g. detected once for
            several variants).
        detect_config: parameters of the boundary detection when it runs.

    Raises:
        InputError: a volume with fewer than 2 B-scans or 8 A-scans, or a non-raster scan
            (radial, circular), boundaries that cross.
        UsageError: a bad variant, a slab that is empty, a boundary that is not available.
    """
    return reconstruct_all(
        volume, [variant], config, boundaries=boundaries, detect_config=detect_config
    )[0]


def reconstruct_all(
    volume: Volume,
    variants: Sequence[str | Slab] = ("P1", "P2", "P3"),
    config: EnFaceConfig | None = None,
    *,
    boundaries: Mapping[str, np.ndarray] | None = None,
    detect_config: DetectConfig | None = None,
) -> list[EnFace]:
    """Several en-face images of one volume; boundaries are resolved (detected) once."""
    cfg = config or EnFaceConfig()
    check_enface_volume(volume)
    parsed = [parse_variant(v, cfg.shadow_um) for v in variants]
    needed = sorted({n for _, slab in parsed for n in slab.boundaries})
    source = "given"
    if boundaries is None:
        boundaries, source = (
            resolve_boundaries(volume, needed, cfg.boundaries, detect_config)
            if needed
            else ({}, "none")
        )
    slow, _, fast = volume.spacing
    nb, _, na = volume.shape
    out = []
    for spec, (name, slab) in zip(variants, parsed, strict=True):
        raw = project(volume, slab, boundaries)
        img = normalize_stripes(raw) if cfg.normalize else raw
        rows_mm = slow
        if cfg.isotropic:
            rows = isotropic_rows(nb, slow, fast)
            img = resample_rows(img, rows)
            rows_mm = slow * nb / rows
        image, lo, hi = stretch(img, cfg.percentiles)
        preset = next((p for p, v in PRESETS.items() if v == name), None)
        out.append(
            EnFace(
                image=image,
                raw=raw,
                variant=name,
                preset=preset,
                slab=slab,
                spacing=(rows_mm, fast),
                native_shape=(nb, na),
                meta={
                    "requested": spec if isinstance(spec, str) else slab.describe(),
                    "slab": slab.describe(),
                    "boundary_source": source if slab.boundaries else "none",
                    "normalized": cfg.normalize,
                    "stretch": {"percentiles": list(cfg.percentiles), "range": [lo, hi]},
                },
            )
        )
    return out


def check_enface_volume(volume: Volume) -> None:
    """Refuse volumes that cannot make an en-face image."""
    nb, nd, na = volume.shape
    if nb < 2 or na < 8:
        raise InputError(
            f"volume too small for an en-face image: {nb} B-scans x {na} A-scans; expected at "
            "least 2 B-scans and 8 A-scans (single-line and circle scans have one B-scan)",
            volume.path,
        )
    if volume.meta.get("raster") is False:
        raise InputError(
            f"a {volume.meta.get('scan_pattern', 'non-raster')} scan: its B-scans are not "
            "parallel lines, so it has no en-face image",
            volume.path,
        )
