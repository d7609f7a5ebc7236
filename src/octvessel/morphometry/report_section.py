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


def is_measure_folder(folder: Path) -> bool:
    """True when ``folder`` holds an ``octvessel measure`` output (measurements.json)."""
    import json

    f = Path(folder) / "measurements.json"
    if not f.is_file():
        return False
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("what") == "octvessel measure"


def measure_report(page: Any, folder: Path, max_pictures: int = 6) -> None:
    """The page of a measure folder: sources and notes, whole-image table and pictures,
    then the per-sector rows (when an ETDRS grid was placed)."""
    import json

    info = json.loads((folder / "measurements.json").read_text(encoding="utf-8"))
    page.p(f"{folder.resolve()} · octvessel {info.get('octvessel', '?')} · definitions: "
           f"{info.get('definitions', 'docs/measure.md')}", "sub")  # fmt: skip
    for note in info.get("notes", []):
        page.p(str(note), "note")
    images = info.get("images") or []
    if isinstance(images, dict):
        images = [{"image": k, **v} for k, v in images.items()]
    keys = ("image", "kind", "spacing_mm", "spacing_source", "fovea_px", "fovea_source",
            "laterality", "units")  # fmt: skip
    src = [[_text(i.get(k)) for k in keys] for i in images if isinstance(i, dict)]
    if src:
        page.h(2, "Inputs")
        page.table(list(keys), src)
    morphometry_section(page, folder, max_pictures)
    with (folder / "measurements.csv").open(encoding="utf-8") as fh:
        sectors = [r for r in csv.DictReader(fh) if r.get("region") != "whole"]
    if sectors:
        cols = ("image", "region", "area_mm2", "region_fraction", "length_density",
                "area_density", "mean_width_um", "tortuosity", "branch_points")  # fmt: skip
        page.h(2, "ETDRS sectors")
        page.table(list(cols), [[_num(r.get(k, "")) for k in cols] for r in sectors])


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v)
    return str(v)


def _num(v: str) -> Any:
    try:
        return float(v) if "." in v or "e" in v else int(v)
    except ValueError:
        return v
