"""Vessel widths of labelled datasets on their own grids, measured where the grid allows it.

On an OCT en-face grid the rows (B-scans, 30-50 um apart) are 2.7x coarser than the
columns (A-scans, 11-18 um). ``2 x`` the physical distance transform on the skeleton (the
width of ``oct_domain_gap.py``) comes in steps of ``2 x`` the row pitch for a vessel that runs
along the B-scans, and is ``2 x`` the row pitch for any such vessel one or two rows thick:
60 um on a 29.8 um-row grid, 99 um on a 49.6 um-row grid. This script prints that width over the whole skeleton
and, next to it, over the skeleton points where the vessel crosses the B-scans (its
cross-section lies within 25 deg of the fast axis, from the structure tensor of the mask in
mm, sigma 1.5 px), where the width is resolved in A-scan steps. Only the second compares
datasets on different grids.

    python benchmarks/oct_vessel_widths.py runs/data/rim-drive-5mm runs/data/real-weak \
        [--images 40] [--json OUT.json]

A dataset's pixel size comes from its ``dataset.json`` spacing (else ``--spacing-mm``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from oct_domain_gap import skeleton_widths
from skimage.feature import structure_tensor

from octvessel.data.datasets import load_dataset

ACROSS_DEG = 25.0


def skeleton_widths_um(
    mask: np.ndarray, spacing: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(widths over the whole skeleton, widths where the vessel crosses the B-scans), um.

    ``mask``: bool H x W; ``spacing``: (row, col) mm per pixel.
    """
    if not mask.any():
        return np.zeros(0), np.zeros(0)
    skel, width = skeleton_widths(mask, spacing)
    a_rr, a_rc, a_cc = structure_tensor(mask.astype(np.float64), sigma=1.5, order="rc")
    rr, rc, cc = a_rr / spacing[0] ** 2, a_rc / (spacing[0] * spacing[1]), a_cc / spacing[1] ** 2
    # angle of the dominant gradient (the vessel's cross-section) from the column axis
    theta = 0.5 * np.arctan2(2.0 * rc, cc - rr)
    across = np.abs(theta) < np.deg2rad(ACROSS_DEG)
    return width[skel], width[skel & across]


def _stats(w: np.ndarray) -> dict[str, float]:
    if w.size == 0:
        return {"n": 0}
    p = np.percentile(w, [25, 50, 75, 90])
    return {"n": int(w.size), "p25": p[0], "median": p[1], "p75": p[2], "p90": p[3]}


def dataset_widths(root: Path, images: int, spacing_mm: tuple[float, float] | None) -> dict:
    all_w, across_w, grid = [], [], set()
    samples = [s for s in load_dataset(root) if s.label is not None][:images]
    for s in samples:
        sp = tuple(s.spacing) if s.spacing is not None else spacing_mm
        if sp is None:
            raise SystemExit(f"{root}: no spacing in dataset.json; pass --spacing-mm ROW,COL")
        grid.add(tuple(round(1000 * v, 1) for v in sp))
        a, c = skeleton_widths_um(s.label > 0, sp)
        all_w.append(a)
        across_w.append(c)
    return {
        "images": len(samples),
        "grid_um": sorted(grid),
        "skeleton": _stats(np.concatenate(all_w)),
        "across_bscans": _stats(np.concatenate(across_w)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--images", type=int, default=40, help="first N labelled images of each")
    ap.add_argument("--spacing-mm", help="ROW,COL mm per pixel for datasets without spacing")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    given = tuple(float(v) for v in args.spacing_mm.split(",")) if args.spacing_mm else None
    report = {str(d): dataset_widths(d, args.images, given) for d in args.datasets}
    print("| dataset | grid um (row x col) | images | width median / p90, whole skeleton | "
          "median / p75 / p90 where vessels cross the B-scans (n) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, r in report.items():
        s, c = r["skeleton"], r["across_bscans"]
        grid = ", ".join(f"{g[0]:g} x {g[1]:g}" for g in r["grid_um"])
        print(
            f"| {name} | {grid} | {r['images']} | {s.get('median', float('nan')):.0f} / "
            f"{s.get('p90', float('nan')):.0f} | {c.get('median', float('nan')):.0f} / "
            f"{c.get('p75', float('nan')):.0f} / {c.get('p90', float('nan')):.0f} ({c['n']}) |"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
