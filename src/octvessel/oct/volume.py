"""OCT volumes: the :class:`Volume` container, its checks, and the ``.npz`` writer.

Array order everywhere: (B-scans, depth, A-scans) -- slow axis, axial axis, fast axis.
Spacing is in millimetres per sample along those three axes. Layer boundaries are height
maps (B-scans x A-scans, float32) giving the depth of an interface in samples, measured in
voxel-centre coordinates: an interface at ``h`` separates the voxels whose centres lie
above ``h`` from those below (a step between voxels ``j`` and ``j + 1`` sits at
``j + 0.5``); NaN marks an A-scan where the file has no value. Readers live in
:mod:`octvessel.oct.readers` and :mod:`octvessel.oct.vendors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.atomic import atomic_path
from octvessel.errors import InputError, UsageError, check_choice

__all__ = [
    "AVANTI",
    "MIN_DEPTH",
    "ORDERED",
    "Volume",
    "assumed_spacing",
    "check_boundaries",
    "check_finite",
    "check_order",
    "normalize_laterality",
    "write_volume",
]

#: The Optovue Avanti RTVue "3D Retina" 7 x 7 mm scan (docs/oct.md, "Volumes").
AVANTI = {"bscans": 141, "ascans": 385, "depth": 640, "field_mm": 7.0, "axial_mm": 0.0031}

#: Anatomical order of the boundaries the package checks for crossing (top to bottom).
ORDERED = ("ILM", "RPE", "BM")
#: Fewest depth samples that can hold a retina (layer detection refuses fewer).
MIN_DEPTH = 32
_LATERALITY = {"OD": "OD", "R": "OD", "RIGHT": "OD", "OS": "OS", "L": "OS", "LEFT": "OS"}


def assumed_spacing(bscans: int, ascans: int) -> tuple[float, float, float]:
    """Spacing (slow, axial, fast) in mm of a 7 x 7 mm Avanti-like scan of this size."""
    field_mm, axial = AVANTI["field_mm"], AVANTI["axial_mm"]
    return (field_mm / max(bscans, 1), axial, field_mm / max(ascans, 1))


@dataclass(eq=False)
class Volume:
    """One OCT volume.

    Attributes:
        data: float32 array (B-scans, depth, A-scans); finite values, larger = brighter.
        spacing: (slow, axial, fast) sample spacing in mm, all > 0.
        laterality: ``"OD"`` (right eye), ``"OS"`` (left eye) or None when unknown.
        boundaries: name -> float32 height map (B-scans, A-scans), depth in samples (see the
            module docstring for the convention); NaN where unknown. Names follow the
            Heidelberg convention (``ILM``, ``RNFL``, ... ``RPE``, ``BM``).
        path: the file it came from, or None.
        meta: facts about the source: ``format``, ``spacing_source`` (``"file"``,
            ``"user"``, ``"assumed"``), ``scan_pattern``, ``warnings`` ...

    Raises:
        InputError: not 3-D, empty, NaN or infinite values, bad spacing, boundaries of the
            wrong shape, outside the volume, or crossing (ILM above RPE above BM).
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    laterality: str | None = None
    boundaries: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.path
        data = np.asarray(self.data)
        if data.ndim != 3 or 0 in data.shape:
            raise InputError(
                f"expected a 3-D volume (B-scans, depth, A-scans), found shape {data.shape}", where
            )
        if data.dtype.kind not in "fiu":
            raise InputError(f"expected numeric voxels, found dtype {data.dtype}", where)
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        check_finite(data, where)
        self.data = data
        spacing = tuple(float(v) for v in np.asarray(self.spacing, dtype=float).ravel())
        if len(spacing) != 3 or not all(np.isfinite(v) and v > 0 for v in spacing):
            raise InputError(
                f"spacing {self.spacing!r}: expected 3 positive numbers (slow, axial, fast) in mm",
                where,
            )
        self.spacing = spacing  # type: ignore[assignment]
        self.laterality = normalize_laterality(self.laterality, where)
        self.boundaries = check_boundaries(self.boundaries, data.shape, where)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B-scans, depth, A-scans)."""
        return tuple(int(v) for v in self.data.shape)  # type: ignore[return-value]

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Size in mm along (slow, axial, fast): samples x spacing."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing, strict=True))  # type: ignore[return-value]

    def with_boundaries(self, boundaries: Mapping[str, np.ndarray]) -> Volume:
        """A copy (sharing ``data``) whose boundaries are ``boundaries``."""
        return replace(self, boundaries=dict(boundaries), meta=dict(self.meta))

    def __repr__(self) -> str:
        b, d, a = self.shape
        names = ",".join(self.boundaries) or "none"
        sp = ", ".join(f"{v * 1000:.4g}" for v in self.spacing)
        return (
            f"Volume({b} B-scans x {d} depth x {a} A-scans, spacing ({sp}) um, "
            f"laterality={self.laterality}, boundaries={names}, path='{self.path}')"
        )


# ------------------------------------------------------------------------ validation


#: largest voxel magnitude accepted: sums over thousands of depth samples stay finite in float32
MAX_MAGNITUDE = 1e30


def check_finite(data: np.ndarray, path: Path | str | None = None) -> None:
    """Refuse NaN, infinite and absurdly large voxels (|v| > 1e30), naming the first one."""
    if data.dtype.kind != "f":
        return
    bad = ~np.isfinite(data)
    if bad.any():
        b, z, a = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"volume contains {int(bad.sum())} NaN or infinite values (first at B-scan {b}, "
            f"depth {z}, A-scan {a}); expected finite intensities",
            path,
        )
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > MAX_MAGNITUDE:
        b, z, a = (int(v) for v in np.argwhere(np.abs(data) > MAX_MAGNITUDE)[0])
        raise InputError(
            f"volume holds intensities up to {peak:.3g} (first at B-scan {b}, depth {z}, "
            f"A-scan {a}); expected magnitudes below {MAX_MAGNITUDE:g} (a corrupt or misread "
            "file?)",
            path,
        )


def normalize_laterality(value: Any, path: Path | str | None = None) -> str | None:
    """``"OD"``, ``"OS"`` or None from the spellings files use (R/L, OD/OS, right/left)."""
    if value is None:
        return None
    text = str(value).strip().upper().rstrip("\x00")
    if text in ("", "NONE", "UNKNOWN", "U"):
        return None
    if text not in _LATERALITY:
        raise InputError(f"laterality {value!r}: expected OD, OS, R, L or None", path)
    return _LATERALITY[text]


def check_boundaries(
    boundaries: Mapping[str, np.ndarray],
    shape: tuple[int, ...],
    path: Path | str | None = None,
) -> dict[str, np.ndarray]:
    """Validate boundary height maps against a (B, D, A) volume shape; return float32 copies.

    Each map must be (B, A), finite or NaN (unknown), within [0, D] samples; ILM, RPE and
    BM, where present, must not cross (0.5 samples of tolerance).
    """
    b, d, a = (int(v) for v in shape)
    out: dict[str, np.ndarray] = {}
    for name, arr in boundaries.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"boundary name {name!r}: expected a non-empty string", path)
        try:
            h = np.asarray(arr, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(
                f"boundary {name} does not hold numbers; expected depths in samples", path
            ) from None
        if h.shape != (b, a):
            raise InputError(
                f"boundary {name} has shape {h.shape}; expected (B-scans, A-scans) = ({b}, {a})",
                path,
            )
        if np.isinf(h).any():
            raise InputError(
                f"boundary {name} has infinite values; expected depths in samples", path
            )
        finite = h[np.isfinite(h)]
        if finite.size and (finite.min() < 0 or finite.max() > d):
            raise InputError(
                f"boundary {name} leaves the volume: depths {finite.min():.1f}..{finite.max():.1f} "
                f"samples; expected 0..{d}",
                path,
            )
        out[name] = h
    present = [n for n in ORDERED if n in out]
    for upper, lower in zip(present, present[1:], strict=False):
        check_order(out[upper], out[lower], upper, lower, path)
    return out


def check_order(
    top: np.ndarray,
    bottom: np.ndarray,
    top_name: str,
    bottom_name: str,
    path: Path | str | None = None,
    tolerance: float = 0.5,
) -> None:
    """Raise InputError where ``top`` lies more than ``tolerance`` samples below ``bottom``."""
    with np.errstate(invalid="ignore"):
        bad = top > bottom + tolerance
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"boundaries {top_name} and {bottom_name} cross in {int(bad.sum())} A-scans "
            f"(first at B-scan {i}, A-scan {j}: {top_name} {top[i, j]:.1f} below "
            f"{bottom_name} {bottom[i, j]:.1f} samples); expected {top_name} above {bottom_name}",
            path,
        )


# ---------------------------------------------------------------------------- writing


def write_volume(
    path: str | Path,
    volume: Volume,
    *,
    dtype: str = "float32",
    extra: Mapping[str, np.ndarray] | None = None,
    compress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``volume`` as a compressed ``.npz`` that :func:`read_volume` reads back.

    Args:
        path: destination ``.npz``.
        dtype: ``"float32"`` (exact) or ``"uint8"`` (values in [0, 1] quantised to 1/255,
            about 4x smaller; read back as float32 / 255).
        extra: more arrays to store (e.g. the phantom's vessel ground truth).
        compress: zip-deflate the arrays (smaller, slower; speckled volumes shrink little).
        overwrite: replace an existing file; otherwise refuse it.
    """
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise UsageError(f"volumes are written as .npz; got {p.name}", p)
    check_choice("dtype", dtype, ("float32", "uint8"))
    if dtype == "uint8":
        lo, hi = float(volume.data.min()), float(volume.data.max())
        if lo < 0 or hi > 1:
            raise UsageError(f"uint8 needs values in [0, 1]; the volume spans [{lo:.3g}, {hi:.3g}]")
        data: np.ndarray = np.rint(volume.data * 255).astype(np.uint8)
    else:
        data = volume.data
    arrays: dict[str, np.ndarray] = {
        "data": data,
        "spacing": np.asarray(volume.spacing, dtype=np.float64),
    }
    if volume.laterality:
        arrays["laterality"] = np.asarray(volume.laterality)
    for name, h in volume.boundaries.items():
        arrays[f"boundary_{name}"] = np.asarray(h, dtype=np.float32)
    for k, v in (extra or {}).items():
        if k in arrays or k.startswith("boundary_"):
            raise UsageError(f"extra array name {k!r} clashes with the volume's own keys")
        arrays[k] = np.asarray(v)
    with atomic_path(p, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return p
