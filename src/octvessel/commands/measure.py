"""``octvessel measure``: vessel morphometry in physical units (DESIGN.md section 10)."""

from __future__ import annotations

import argparse

HELP = "vessel morphometry (length, width, tortuosity, fractal dimension, per ETDRS sector)"

EPILOG = """\
Writes DIR/measurements.csv and .json (one row per image and region: whole, and the ETDRS
sectors when the fovea is known) and NAME_measure.png (centre line coloured by width, the
grid drawn). Probability maps (NAME_prob.png/.tif) are thresholded at --threshold; other
images must be two-level masks. Definitions: docs/measure.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-i", "--input", required=True, help="a mask, a probability map, or a folder")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--spacing", help="ROW,COL pixel size in mm (default: from the metadata)")
    p.add_argument("--threshold", type=float, default=0.5, help="for probability maps (0.5)")
    p.add_argument("--fovea", help="ROW,COL of the fovea in pixels (default: from surfaces)")
    p.add_argument("--laterality", choices=("OD", "OS"), help="names nasal and temporal")
    p.add_argument("--no-pictures", action="store_true", help="only the tables")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    from octvessel.morphometry.inputs import parse_pair
    from octvessel.morphometry.output import measure_folder
    from octvessel.pixel_size import parse_spacing

    info = measure_folder(
        args.input,
        args.output,
        spacing=parse_spacing(args.spacing),
        threshold=args.threshold,
        fovea=parse_pair(args.fovea, "--fovea"),
        laterality=args.laterality,
        overwrite=args.overwrite,
        pictures=not args.no_pictures,
    )
    for name, rec in info["images"].items():
        print(
            f"{name}: spacing {rec['spacing_mm'] or 'unknown (pixels)'} ({rec['spacing_source']}), "
            f"fovea {rec['fovea_px'] and [round(v, 1) for v in rec['fovea_px']]} "
            f"({rec['fovea_source']}), laterality {rec['laterality']}"
        )
    whole = [r for r in info["rows"] if r["region"] == "whole"]
    print(
        f"measured {len(whole)} image(s), {len(info['rows'])} rows -> {args.output}/measurements.csv"
    )
    return 0
