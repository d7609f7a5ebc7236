"""Depth slabs of an en-face projection: :class:`Slab`, the named variants and presets.

A slab runs from one boundary to another (``"top"`` / ``"bottom"`` are the image's first and
last sample), each shifted by an offset in micrometres (positive = deeper), and is reduced
over depth by one of ``REDUCERS``. :func:`parse_variant` reads presets (``P1``..``P3``),
variants (``full``, ``retina``, ``shadow``), OCTA-500's named slabs and slab specs
``TOP[+-UM]:BOTTOM[+-UM][:REDUCER]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octvessel.config import JsonConfig
from octvessel.errors import UsageError, check_choice

__all__ = [
    "BOUNDARY_SOURCES",
    "EDGES",
    "NAMED_SLABS",
    "NEEDED",
    "PRESETS",
    "REDUCERS",
    "VARIANTS",
    "Slab",
    "parse_variant",
]

REDUCERS = ("mean", "sum", "max", "min", "median")
VARIANTS = ("full", "retina", "shadow")
PRESETS = {"P1": "full", "P2": "retina", "P3": "shadow"}
BOUNDARY_SOURCES = ("auto", "file", "detect")
EDGES = ("top", "bottom")
#: Boundaries the named variants need.
NEEDED = {"full": (), "retina": ("ILM", "RPE"), "shadow": ("RPE",)}


@dataclass(frozen=True)
class Slab(JsonConfig):
    """A depth slab between two boundaries (names, or ``"top"`` / ``"bottom"``).

    Attributes:
        top, bottom: boundary names (``ILM``, ``RPE``, ``BM`` ... or ``top`` / ``bottom``).
        top_um, bottom_um: offsets in micrometres added to each (positive = deeper).
        reducer: one of ``REDUCERS``.
    """

    top: str = "top"
    bottom: str = "bottom"
    top_um: float = 0.0
    bottom_um: float = 0.0
    reducer: str = "mean"

    def __post_init__(self) -> None:
        check_choice("reducer", self.reducer, REDUCERS)
        for name in ("top", "bottom"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise UsageError(f"slab {name}={v!r}: expected a boundary name, 'top' or 'bottom'")
        for name in ("top_um", "bottom_um"):
            if not np.isfinite(float(getattr(self, name))):
                raise UsageError(f"slab {name}={getattr(self, name)!r}: expected a finite number")

    @property
    def boundaries(self) -> tuple[str, ...]:
        """The boundary names the slab needs (``top`` / ``bottom`` excluded)."""
        return tuple(n for n in (self.top, self.bottom) if n not in EDGES)

    def describe(self) -> str:
        """Compact text, e.g. ``RPE-60um..RPE, mean``."""

        def edge(name: str, um: float) -> str:
            return name if um == 0 else f"{name}{um:+g}um"

        return f"{edge(self.top, self.top_um)}..{edge(self.bottom, self.bottom_um)}, {self.reducer}"


#: OCTA-500's projection slabs (Li et al. 2020), as means over depth like its OCT maps.
NAMED_SLABS = {"ILM-OPL": Slab("ILM", "OPL"), "OPL-BM": Slab("OPL", "BM")}


def parse_variant(spec: str | Slab, shadow_um: float = 60.0) -> tuple[str, Slab]:
    """(name, slab) of a preset (``P1``), a variant (``shadow``) or a slab spec.

    Slab specs read ``TOP[+-UM]:BOTTOM[+-UM][:REDUCER]``, e.g. ``ILM+20:RPE-10:max``;
    such variants are named ``slab``.
    """
    if isinstance(spec, Slab):
        return "slab", spec
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"variant {spec!r}: expected P1, P2, P3, full, retina, shadow or a slab")
    text = spec.strip()
    if text.upper() in NAMED_SLABS:
        return text.upper(), NAMED_SLABS[text.upper()]
    name = PRESETS.get(text.upper(), text.lower())
    if name == "full":
        return name, Slab()
    if name == "retina":
        return name, Slab("ILM", "RPE")
    if name == "shadow":
        if not shadow_um > 0:
            raise UsageError(f"shadow_um={shadow_um!r} is not valid; expected > 0")
        return name, Slab("RPE", "RPE", top_um=-float(shadow_um))
    if ":" not in text:
        valid = ", ".join([*PRESETS, *VARIANTS, *NAMED_SLABS, "TOP[+-UM]:BOTTOM[+-UM][:REDUCER]"])
        raise UsageError(f"variant {spec!r} is not valid; expected one of: {valid}")
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"slab {spec!r}: expected TOP[+-UM]:BOTTOM[+-UM][:REDUCER]")
    top, top_um = _edge(parts[0], spec)
    bottom, bottom_um = _edge(parts[1], spec)
    reducer = parts[2].strip().lower() if len(parts) == 3 else "mean"
    return "slab", Slab(top, bottom, top_um, bottom_um, reducer)


def _edge(text: str, spec: str) -> tuple[str, float]:
    text = text.strip()
    for i in range(1, len(text)):
        if text[i] in "+-":
            name, num = text[:i], text[i:].removesuffix("um")
            try:
                return _edge_name(name), float(num)
            except ValueError:
                break
    if text and all(c.isalnum() or c in "_+-" for c in text) and text[0] not in "+-":
        return _edge_name(text), 0.0
    raise UsageError(f"slab {spec!r}: cannot read {text!r}; expected NAME, NAME+UM or NAME-UM")


def _edge_name(name: str) -> str:
    low = name.strip().lower()
    return low if low in EDGES else name.strip().upper()
