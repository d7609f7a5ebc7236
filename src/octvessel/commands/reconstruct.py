"""``octvessel reconstruct``: OCT volume(s) -> en-face image(s)."""

from __future__ import annotations

import argparse
import sys

from octvessel.errors import UsageError

HELP = "OCT volume(s) -> en-face (fundus) images, CAVRI-C names, JSON sidecar"

EPILOG = """\
Per volume NAME, in the output folder: NAME_fundus_P1.bmp / _P2 / _P3 (custom slabs:
_slab1 ...), NAME_enface.json (spacing, grid, variants, boundaries used) and
NAME_boundaries.npz; with detected surfaces also NAME_surfaces.npz (ILM, OPL, EZ, RPE,
BM and a per-A-scan confidence) and NAME_qc.png (B-scans with every surface drawn,
en-face RPE height and confidence). A folder of volumes is a batch: a bad volume is
reported and skipped, failures are listed at the end (exit 2), and a rerun does only the
volumes without a NAME_enface.json. Variants: P1 = full (mean over depth), P2 = retina (ILM..RPE),
P3 = shadow (--shadow-um above the RPE), ILM-OPL and OPL-BM (OCTA-500's
projections: means between those surfaces), or a slab TOP[+-UM]:BOTTOM[+-UM][:REDUCER],
e.g. ILM+20:RPE-10:max (reducers: mean, sum, max, min, median; 'top'/'bottom' are the
image edges). Inputs: .npy, .npz, multi-page .tif, a folder of B-scan images, Avanti
raw .OCT, and with `pip install octvessel[oct]` Heidelberg .vol/.e2e, HEYEX-XML and
Topcon .fda.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from octvessel.oct.readers import FORMATS

    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-i", "--input", required=True, help="volume file, or a folder of volumes")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument(
        "--variant", default="P1,P2,P3", help="comma-separated variants (default P1,P2,P3)"
    )
    p.add_argument(
        "--isotropic",
        action="store_true",
        help="resample the slow axis to the physical spacing (Avanti: 385x385)",
    )
    p.add_argument(
        "--boundaries",
        choices=("auto", "file", "detect"),
        default="auto",
        help="layer boundaries: the file's when present (auto, default), only the file's, "
        "or always detected",
    )
    p.add_argument(
        "--shadow-um", type=float, default=60.0, help="P3 slab thickness above the RPE (um)"
    )
    p.add_argument(
        "--no-normalize", action="store_true", help="keep B-scan / column brightness as is"
    )
    p.add_argument(
        "--percentiles",
        default="0.5,99.5",
        help="contrast stretch: low,high percentiles mapped to 0 and 255 (default 0.5,99.5)",
    )
    p.add_argument("--format", choices=("auto", *FORMATS), default="auto", help="volume reader")
    p.add_argument("--spacing", help="SLOW,AXIAL,FAST spacing in mm (overrides the file's)")
    p.add_argument("--laterality", choices=("OD", "OS"), help="overrides the file's")
    p.add_argument("--ascans", type=int, help="raw .OCT: A-scans per B-scan (default 385)")
    p.add_argument("--depth", type=int, help="raw .OCT: samples per A-scan (default 640)")
    p.add_argument("--bscans", type=int, help="raw .OCT: B-scans (default: from the file size)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (files of an earlier run of a volume that this run "
        "does not write, e.g. other variants, are removed)",
    )


def _floats(text: str | None, n: int, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise UsageError(f"{option} {text!r}: expected {n} comma-separated numbers")
    return values


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from octvessel.atomic import check_output_dir
    from octvessel.errors import InputError
    from octvessel.oct import write_reconstructions
    from octvessel.oct.batch import reconstruct_batch
    from octvessel.oct.enface import EnFaceConfig
    from octvessel.oct.files import output_names
    from octvessel.oct.readers import find_volumes, read_volume

    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    if not variants:
        raise UsageError("--variant is empty; expected e.g. P1,P2,P3")
    percentiles = _floats(args.percentiles, 2, "--percentiles")
    config = EnFaceConfig(
        shadow_um=args.shadow_um,
        normalize=not args.no_normalize,
        percentiles=percentiles,  # type: ignore[arg-type]
        isotropic=args.isotropic,
        boundaries=args.boundaries,
    )
    output_names("x", variants, config.shadow_um)  # validates the variants up front
    src = Path(args.input)
    if not src.exists():
        raise InputError("input not found", src)
    check_output_dir(args.output)
    paths = find_volumes(src) if src.is_dir() else [src]
    options = {
        "format": args.format,
        "spacing": _floats(args.spacing, 3, "--spacing"),
        "laterality": args.laterality,
        "ascans": args.ascans,
        "depth": args.depth,
        "bscans": args.bscans,
    }

    def one(p: Path, prefix: str, overwrite: bool) -> str:
        volume = read_volume(p, **options)
        info = write_reconstructions(
            volume, args.output, prefix, variants, config, overwrite=overwrite
        )
        # after the work, so that a failing volume prints its error line alone
        for note in volume.meta.get("warnings") or []:
            print(f"note: {p.name}: {note}", file=sys.stderr)
        for note in info.get("quality", {}).get("warnings", []):
            print(f"warning: {p.name}: {note}", file=sys.stderr)
        b, d, a = volume.shape
        h, w = info["shape"]
        return (
            f"{p.name}: {b}x{d}x{a} -> {', '.join(info['images'])} ({w}x{h}, boundaries "
            f"{info['boundaries']['source']})"
        )

    summary = reconstruct_batch(
        paths, Path(args.output), one, overwrite=args.overwrite, keep_going=len(paths) > 1
    )
    if len(paths) > 1:
        print(summary.format())
    if summary.failed:
        return InputError.exit_code
    return 0
