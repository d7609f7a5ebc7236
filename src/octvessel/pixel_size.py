"""Pixel sizes as values: an input's (:class:`PixelSize`) and a model's (:class:`ModelScale`).

A leaf module (it imports only :mod:`octvessel.errors`) so that models, data, inference
and morphometry share one checker of spacings. Where a pixel size comes from is decided
by :func:`octvessel.scale.resolve_pixel_size`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octvessel.errors import InputError, UsageError

#: the largest pixel size accepted (mm per pixel): anything above is a unit mistake
MAX_SPACING_MM = 1.0
#: where a pixel size came from, in the order they are tried
SOURCES = (
    "--spacing",
    "--fov-px",
    "sidecar",
    "dataset",
    "heyex-xml",
    "prediction",
    "fov-estimate",
    "none",
)

__all__ = [
    "MAX_SPACING_MM",
    "SOURCES",
    "ModelScale",
    "PixelSize",
    "check_fov_px",
    "check_spacing",
    "parse_spacing",
]


def check_spacing(
    value: Any, what: str = "spacing", where: str | Path | None = None
) -> tuple[float, float]:
    """(row, col) mm per pixel, both finite, > 0 and <= :data:`MAX_SPACING_MM`.

    A single number means the same size for rows and columns. ``where`` (a file) turns the
    error into an :class:`InputError` naming it; otherwise a :class:`UsageError`.
    """
    try:
        values = (
            [float(value)] * 2 if isinstance(value, (int, float)) else [float(v) for v in value]
        )
    except (TypeError, ValueError):
        values = []
    if isinstance(value, bool) or len(values) != 2:
        msg = f"{what} {value!r}: expected ROW,COL in mm per pixel (e.g. 0.0497,0.0182)"
        raise InputError(msg, where) if where is not None else UsageError(msg)
    for v in values:
        if not (math.isfinite(v) and 0 < v <= MAX_SPACING_MM):
            msg = (
                f"{what} {values[0]:g},{values[1]:g}: expected mm per pixel, each > 0 and <= "
                f"{MAX_SPACING_MM:g} (e.g. 0.0497,0.0182 for an Avanti 7x7 mm en-face image)"
            )
            raise InputError(msg, where) if where is not None else UsageError(msg)
    return values[0], values[1]


def parse_spacing(text: str | None, what: str = "--spacing") -> tuple[float, float] | None:
    """``"ROW,COL"`` (or one number) in mm per pixel -> checked (row, col), or None."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(
            f"{what} {text!r}: expected ROW,COL in mm per pixel, e.g. 0.0497,0.0182"
        ) from None
    if len(values) == 1:
        values *= 2
    return check_spacing(values, what)


def check_fov_px(value: Any, what: str = "--fov-px") -> float:
    """A FOV diameter in pixels: finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (math.isfinite(v) and v > 0):
        raise UsageError(
            f"{what} {value!r}: expected the FOV diameter in pixels, a positive number"
        )
    return v


@dataclass(frozen=True)
class ModelScale:
    """The pixel size a network was trained at (``config.json`` ``scale``).

    Attributes:
        pixel_size_mm: (row, col) mm per pixel of its training images.
        fov_px: for fundus models, the FOV diameter in pixels of its training images
            (None for OCT models).
        field_deg: the field angle of those photographs (informative).
        note: how the numbers were worked out.
    """

    pixel_size_mm: tuple[float, float]
    fov_px: float | None = None
    field_deg: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "pixel_size_mm", check_spacing(self.pixel_size_mm, "pixel_size_mm")
        )
        if self.fov_px is not None:
            object.__setattr__(self, "fov_px", check_fov_px(self.fov_px, "fov_px"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pixel_size_mm": list(self.pixel_size_mm)}
        if self.fov_px is not None:
            out["fov_px"] = self.fov_px
        if self.field_deg is not None:
            out["field_deg"] = self.field_deg
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str | Path | None = None) -> ModelScale | None:
        """None for None (an old bundle); errors name ``where``."""
        if raw is None:
            return None
        if not isinstance(raw, dict) or "pixel_size_mm" not in raw:
            raise InputError(
                "'scale' must be an object with 'pixel_size_mm': [row_mm, col_mm]", where
            )
        try:
            return cls(
                pixel_size_mm=tuple(raw["pixel_size_mm"]),
                fov_px=raw.get("fov_px"),
                field_deg=raw.get("field_deg"),
                note=str(raw.get("note", "")),
            )
        except (UsageError, TypeError) as exc:
            raise InputError(f"'scale': {exc}", where) from None

    def describe(self) -> str:
        r, c = self.pixel_size_mm
        fov = f", FOV {self.fov_px:g} px" if self.fov_px is not None else ""
        deg = f" ({self.field_deg:g} deg)" if self.field_deg is not None else ""
        return f"{r * 1000:.1f} x {c * 1000:.1f} um per pixel (row x col){fov}{deg}"


@dataclass(frozen=True)
class PixelSize:
    """An input's pixel size and where it came from.

    Attributes:
        spacing: (row, col) mm per pixel, or None when only a FOV diameter is known (or nothing).
        fov_px: the FOV diameter in pixels (``--fov-px`` or the estimate), else None.
        source: one of :data:`SOURCES`.
        detail: the file it was read from, or how it was estimated.
    """

    spacing: tuple[float, float] | None = None
    fov_px: float | None = None
    source: str = "none"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "spacing_mm": list(self.spacing) if self.spacing is not None else None,
            "fov_px": self.fov_px,
            "source": self.source,
            "detail": self.detail,
        }

    def describe(self) -> str:
        if self.spacing is not None:
            what = f"{self.spacing[0] * 1000:.1f} x {self.spacing[1] * 1000:.1f} um per pixel"
        elif self.fov_px is not None:
            what = f"FOV {self.fov_px:g} px"
        else:
            what = "unknown (taken as the model's grid)"
        more = f": {self.detail}" if self.detail else ""
        return f"{what} (from {self.source}{more})"
