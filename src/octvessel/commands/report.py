"""``octvessel report``: a self-contained HTML report of a run, evaluation or cv."""

from __future__ import annotations

import argparse

HELP = "self-contained HTML report of a training run, an evaluation or a cross-validation"

EPILOG = """\
DIR is a training run (octvessel train), an evaluation folder (octvessel evaluate) or a
cross-validation folder (octvessel cv). The report is one HTML file with every picture
inside (base64 PNG): metrics tables, ROC and precision-recall curves per fold (or image)
and pooled, training curves, image / label / probability / error map per test image, and
the configuration, seed and versions. Curves and image rows need the dataset the folder
was made from. See docs/cv-report.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("run_dir", metavar="DIR", help="run, evaluation or cross-validation folder")
    p.add_argument("-o", "--output", help="HTML file to write (default: DIR/report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument(
        "--max-images", type=int, default=48, help="image rows per section (default 48; 0: none)"
    )
    p.add_argument(
        "--panel-width", type=int, default=320, help="largest panel width in pixels (default 320)"
    )
    p.add_argument("--title", help="page title (default: from the folder)")


def run(args: argparse.Namespace) -> int:
    from octvessel.report import ReportConfig, write_report

    config = ReportConfig(
        max_images=args.max_images, panel_width=args.panel_width, title=args.title
    )
    path = write_report(args.run_dir, args.output, overwrite=args.overwrite, config=config)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0
