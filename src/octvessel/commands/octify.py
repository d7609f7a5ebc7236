"""``octvessel octify``: OCT-en-face-like training data simulated from labelled fundus images."""

from __future__ import annotations

import argparse

HELP = "simulate OCT-en-face-like labelled samples from a labelled fundus dataset"

EPILOG = """\
A simulation, not OCT data: each labelled fundus photograph gives crops of 7x7 mm of
retina (pixel size from --mm-per-px, the dataset's spacing, or the camera's field angle:
DRIVE/HRF 45 deg, STARE 35 deg, CHASE_DB1 30 deg, x 0.29 mm/deg over the FOV diameter),
resampled to 385 wide x 141 high (area averaging along the slow axis) with OCT-like
degradations; labels and FOV follow the same geometry and are re-binarised at 0.5.
Writes the CAVRI-C-style layout (images/NAME_cK_fundus_P1.bmp, manual/..._fundus_ref.bmp,
mask/..._mask.bmp, dataset.json; DRIVE's training/ and test/ splits are kept), which
'octvessel train -d OUT' reads. Same --seed, same bytes. See docs/octify-export.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-d", "--dataset", required=True, help="labelled fundus dataset folder")
    p.add_argument("-o", "--output", required=True, help="output dataset folder")
    p.add_argument("--format", default="auto", help="source layout (default auto)")
    p.add_argument("--split", help="octify only this source split (e.g. test)")
    p.add_argument(
        "--flat", action="store_true", help="do not carry the source's splits into the output"
    )
    p.add_argument("--channel", choices=("green", "luminance"), default="green")
    p.add_argument("--crop-mm", type=float, default=7.0, help="retina per crop (default 7 mm)")
    p.add_argument("--crops", type=int, default=0, help="crops per image (default 0: a grid)")
    p.add_argument(
        "--min-fov", type=float, default=0.9, help="least fraction of a crop inside the FOV"
    )
    p.add_argument("--mm-per-px", type=float, help="source pixel size (overrides the table)")
    p.add_argument("--field-deg", type=float, help="camera field angle (overrides the table)")
    p.add_argument("--size", default="385,141", help="WIDTH,HEIGHT of the output (default 385,141)")
    p.add_argument("--square", action="store_true", help="resample to WIDTH x WIDTH (385x385)")
    p.add_argument("--variant", default="P1", choices=("P1", "P2", "P3"), help="file name tag")
    g = p.add_argument_group("degradations (0 turns one off)")
    from octvessel.sim.octify_config import OctifyConfig

    d = OctifyConfig()
    for flag, dest, what in (
        ("--speckle", "speckle", "speckle CV"),
        ("--stripes", "stripes", "B-scan log-gain std"),
        ("--row-shift", "row_shift_px", "B-scan shift std, px"),
        ("--blur-mm", "blur_mm", "blur sigma in mm"),
        ("--vignetting", "vignetting", "corner darkening"),
        ("--edge-falloff", "edge_falloff", "largest brightness loss at the side edges"),
        ("--edge-rim", "edge_rim", "chance per side of noisy outer A-scans"),
        ("--fovea-dip", "fovea_dip", "largest foveal darkening"),
        ("--motion-lines", "motion_lines", "mean single dark/bright B-scans per crop"),
        ("--noise", "noise", "additive noise std"),
    ):
        g.add_argument(
            flag,
            type=float,
            dest=dest,
            default=getattr(d, dest),
            help=f"{what} ({getattr(d, dest)})",
        )
    g.add_argument("--no-degrade", action="store_true", help="geometry only, no degradations")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--preview", metavar="PNG", help="also write source/octified/label of image 1")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier octify output")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none when stderr is not a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from octvessel.errors import UsageError
    from octvessel.sim.octify import OctifyConfig
    from octvessel.sim.octify_dataset import octify_dataset, preview_dataset

    try:
        width, height = (int(v) for v in args.size.split(","))
    except ValueError:
        raise UsageError(f"--size {args.size!r}: expected WIDTH,HEIGHT, two integers") from None
    config = OctifyConfig(
        channel=args.channel,
        crop_mm=args.crop_mm,
        mm_per_px=args.mm_per_px,
        field_deg=args.field_deg,
        width=width,
        height=height,
        square=args.square,
        crops=args.crops,
        min_fov_fraction=args.min_fov,
        row_shift_px=args.row_shift_px,
        blur_mm=args.blur_mm,
        vignetting=args.vignetting,
        stripes=args.stripes,
        speckle=args.speckle,
        noise=args.noise,
        edge_falloff=args.edge_falloff,
        edge_rim=args.edge_rim,
        fovea_dip=args.fovea_dip,
        motion_lines=args.motion_lines,
        variant=args.variant,
        seed=args.seed,
    )
    if args.no_degrade:
        config = config.without_degradations()
    start = time.perf_counter()
    info = octify_dataset(
        args.dataset,
        args.output,
        config,
        overwrite=args.overwrite,
        format=args.format,
        split=args.split,
        keep_splits=not args.flat,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    seconds = time.perf_counter() - start
    stats = info["stats"]
    rows, cols = config.out_shape
    print(
        f"octified {stats['source_images']} image(s) into {stats['samples']} sample(s) of "
        f"{cols}x{rows} px in {args.output} ({seconds:.1f} s); vessel fraction "
        f"{stats['label_fraction_mean']:.3f} (source crops {stats['label_fraction_source_mean']:.3f})"
    )
    if args.preview:
        path = preview_dataset(
            args.dataset, config, args.preview, format=args.format, split=args.split
        )
        print(f"preview: {path}")
    return 0
