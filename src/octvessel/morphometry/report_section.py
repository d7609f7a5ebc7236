"""The morphometry section of a report: the whole-image rows of ``measurements.csv``
(in the folder or its ``measurements/`` subfolder) and the first pictures."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

SHOWN = ("image", "length_mm", "length_density", "area_density", "mean_width_um",
         "median_width_um", "tortuosity", "fractal_dimension", "branch_points", "end_points",
         "segments")  # fmt: skip


def morphometry_section(page: Any, folder: Path, max_pictures: int = 3) -> bool:
    """Add the section to ``page`` (a :class:`octvessel.report.page.Page`); False if none."""
    for d in (folder, folder / "measurements"):
        table = d / "measurements.csv"
        if table.is_file():
            break
    else:
        return False
    with table.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("region") == "whole"]
    page.h(2, "Morphometry (octvessel measure)")
    page.p(f"{table} · whole-image rows; per-sector rows in the CSV; definitions in "
           "docs/measure.md", "sub")  # fmt: skip
    page.table(list(SHOWN), [[_num(r.get(k, "")) for k in SHOWN] for r in rows])
    for r in rows[:max_pictures]:
        pic = d / f"{r['image']}_measure.png"
        if pic.is_file():
            page.image(pic.read_bytes(), pic.name, pic.name)
    return True


def _num(v: str) -> Any:
    try:
        return float(v) if "." in v or "e" in v else int(v)
    except ValueError:
        return v
