"""``measure_folder``: measure every input, then write measurements.csv/.json and pictures.

Everything is measured before anything is written, so a bad input (one line, exit 2)
leaves nothing behind; existing outputs are refused unless ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__
from octvessel.atomic import atomic_path, check_writable, write_json
from octvessel.errors import UsageError
from octvessel.morphometry.inputs import (
    find_metadata,
    fovea_from_surfaces,
    list_measure_inputs,
    read_vessels,
)
from octvessel.morphometry.measure import COLUMNS, Measurement, check_spacing, measure
from octvessel.morphometry.regions import LATERALITIES, RINGS_MM

CSV_NAME, JSON_NAME = "measurements.csv", "measurements.json"


def measure_folder(
    source: str | Path,
    out_dir: str | Path,
    *,
    spacing: tuple[float, float] | None = None,
    threshold: float = 0.5,
    fovea: tuple[float, float] | None = None,
    laterality: str | None = None,
    overwrite: bool = False,
    pictures: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Measure ``source`` (file or folder) into ``out_dir``; returns the JSON record."""
    if not (isinstance(threshold, float | int) and 0.0 < float(threshold) < 1.0):
        raise UsageError(f"--threshold {threshold!r}: expected a number between 0 and 1")
    if laterality is not None and laterality not in LATERALITIES:
        raise UsageError(f"--laterality {laterality!r}: expected OD or OS")
    if spacing is not None:
        spacing = check_spacing(spacing, "--spacing")
    items = list_measure_inputs(source)
    out = Path(out_dir)
    targets = [out / CSV_NAME, out / JSON_NAME]
    if pictures:
        targets += [out / f"{it.name}_measure.png" for it in items]
    for t in targets:
        check_writable(t, overwrite)
    results: list[tuple[Any, Measurement, dict[str, Any]]] = []
    notes: set[str] = set()
    for it in items:
        mask = read_vessels(it, float(threshold))
        meta = find_metadata(it)
        sp, sp_src = (
            (spacing, "--spacing") if spacing is not None else (meta.spacing, meta.spacing_source)
        )
        if sp is None:
            notes.add(
                "no pixel size (no --spacing, sidecar, dataset.json or prediction.json): "
                "lengths, areas and widths are in PIXELS"
            )
        else:
            sp = check_spacing(sp, f"spacing from {sp_src}")
        lat = laterality or meta.laterality
        fv, fv_src = fovea, "--fovea"
        if fv is None and meta.surfaces is not None:
            fv, fv_src = (
                fovea_from_surfaces(meta.surfaces, mask.shape, meta.native_rows),
                meta.surfaces_source,
            )
        elif fv is None:
            fv_src = meta.surfaces_source if meta.surfaces_source != "none" else "none"
            notes.add(
                "no fovea (no --fovea, no surfaces beside a reconstruction): whole-image rows only"
            )
        if fv is not None and lat is None:
            notes.add(
                "no laterality (--laterality OD|OS): ETDRS centre only, quadrants need nasal/temporal"
            )
        if fv is not None and sp is None:
            fv, fv_src = None, "ignored: no pixel size"
        m = measure(mask, sp, fovea=fv, laterality=lat, name=it.name)
        record = {
            "input": str(it.path),
            "kind": it.kind,
            "threshold": float(threshold) if it.kind == "probability" else None,
            "shape": list(mask.shape),
            "spacing_mm": list(sp) if sp is not None else None,
            "spacing_source": sp_src,
            "units": m.units,
            "fovea_px": list(fv) if fv is not None else None,
            "fovea_source": fv_src,
            "laterality": lat,
        }
        results.append((it, m, record))
    for n in sorted(notes):
        say(f"note: {n}")
    rows = [row for _, m, _ in results for row in m.rows]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row[k]) for k in COLUMNS})
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CSV_NAME, overwrite) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")
    info = {
        "what": "octvessel measure",
        "octvessel": __version__,
        "definitions": "docs/measure.md; octvessel.morphometry",
        "etdrs_rings_mm": list(RINGS_MM),
        "columns": list(COLUMNS),
        "images": {it.name: rec for it, _, rec in results},
        "notes": sorted(notes),
        "rows": [{k: _json_value(v) for k, v in r.items()} for r in rows],
    }
    write_json(out / JSON_NAME, info, overwrite)
    if pictures:
        from octvessel.morphometry.picture import draw_measurement

        for it, m, _ in results:
            draw_measurement(out / f"{it.name}_measure.png", m, overwrite=overwrite)
    return info


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def _json_value(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
