"""ETDRS regions around the fovea, in physical units on any pixel grid.

Rings of 1, 3 and 6 mm diameter centred on the fovea: ``centre`` (r < 0.5 mm), ``inner_*``
(0.5-1.5 mm) and ``outer_*`` (1.5-3 mm). The inner and outer rings are cut into quadrants
by the two diagonals: superior is up in the image (row 0 at the top, as en-face images and
fundus photographs are shown), nasal is towards the optic disc: to the right (larger
columns) in a right eye (OD), to the left in a left eye (OS). A pixel belongs to the region
its centre lies in (boundaries: r < 0.5 is centre; 0.5 <= r < 1.5 inner; 1.5 <= r < 3
outer; the diagonals go to superior/inferior). Regions that reach beyond the image are
measured on the part inside and marked partial, with the fraction of their area inside.
"""

from __future__ import annotations

import numpy as np

from octvessel.errors import UsageError

LATERALITIES = ("OD", "OS")
RINGS_MM = (1.0, 3.0, 6.0)
QUADRANTS = ("superior", "nasal", "inferior", "temporal")
SECTORS = ("centre",) + tuple(f"{ring}_{q}" for ring in ("inner", "outer") for q in QUADRANTS)


def sector_areas_mm2() -> dict[str, float]:
    """The full area of each ETDRS sector (mm^2)."""
    r0, r1, r2 = (d / 2 for d in RINGS_MM)
    out = {"centre": np.pi * r0**2}
    for q in QUADRANTS:
        out[f"inner_{q}"] = np.pi * (r1**2 - r0**2) / 4
        out[f"outer_{q}"] = np.pi * (r2**2 - r1**2) / 4
    return out


def etdrs_labels(
    shape: tuple[int, int],
    spacing: tuple[float, float],
    fovea: tuple[float, float],
    laterality: str | None,
) -> dict[str, np.ndarray]:
    """Bool H x W masks of the ETDRS sectors inside an image of ``shape``.

    ``fovea`` is (row, col) in pixels; ``spacing`` mm per pixel (row, col). Without a
    laterality only ``centre`` is returned (nasal and temporal are unknown).
    """
    if laterality is not None and laterality not in LATERALITIES:
        raise UsageError(f"laterality={laterality!r}: expected OD or OS")
    rows = (np.arange(shape[0]) - fovea[0]) * spacing[0]
    cols = (np.arange(shape[1]) - fovea[1]) * spacing[1]
    y, x = np.meshgrid(rows, cols, indexing="ij")
    r = np.hypot(y, x)
    r0, r1, r2 = (d / 2 for d in RINGS_MM)
    out = {"centre": r < r0}
    if laterality is None:
        return out
    nasal = x if laterality == "OD" else -x
    vertical = np.abs(y) >= np.abs(x)
    quad = {
        "superior": vertical & (y < 0),
        "inferior": vertical & (y >= 0),
        "nasal": ~vertical & (nasal > 0),
        "temporal": ~vertical & (nasal <= 0),
    }
    for q in QUADRANTS:
        out[f"inner_{q}"] = (r >= r0) & (r < r1) & quad[q]
    for q in QUADRANTS:
        out[f"outer_{q}"] = (r >= r1) & (r < r2) & quad[q]
    return out


def check_fovea(fovea: tuple[float, float], shape: tuple[int, int], what: str = "fovea") -> None:
    """Refuse a fovea outside the image (pixel centres span -0.5 .. size - 0.5)."""
    r, c = fovea
    if not (np.isfinite(r) and np.isfinite(c)):
        raise UsageError(f"{what} {fovea!r}: expected finite ROW,COL")
    if not (-0.5 <= r <= shape[0] - 0.5 and -0.5 <= c <= shape[1] - 0.5):
        raise UsageError(
            f"{what} ({r:g}, {c:g}) lies outside the image of {shape[0]} rows x "
            f"{shape[1]} columns; expected 0 <= ROW < {shape[0]} and 0 <= COL < {shape[1]}"
        )


def etdrs_regions(
    shape: tuple[int, int],
    spacing: tuple[float, float],
    fovea: tuple[float, float],
    laterality: str | None,
) -> dict[str, tuple[np.ndarray, float]]:
    """Sector -> (bool H x W mask inside the image, fraction of the sector inside it).

    The fraction compares pixel counts with the same sector drawn on a grid padded by
    3 mm on every side, so a sector wholly inside has exactly 1.0.
    """
    pad = [int(np.ceil(RINGS_MM[-1] / 2 / s)) + 1 for s in spacing]
    big = (shape[0] + 2 * pad[0], shape[1] + 2 * pad[1])
    full = etdrs_labels(big, spacing, (fovea[0] + pad[0], fovea[1] + pad[1]), laterality)
    out = {}
    for name, m in full.items():
        inside = m[pad[0] : pad[0] + shape[0], pad[1] : pad[1] + shape[1]]
        total = int(m.sum())
        out[name] = (np.ascontiguousarray(inside), float(inside.sum()) / total if total else 0.0)
    return out
