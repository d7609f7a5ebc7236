"""Render an ``octvessel report`` in headless Chromium and say whether the page shows content.

    python benchmarks/report_screenshot.py DIR/report.html [-o shot.png] [--width 1280 --height 2000]

Prints the seconds Chromium took and the screenshot's statistics (distinct colours, gray
level std, share of non-white pixels and of used rows); exits 1 when the page looks blank
(an error page or an empty render), 2 when no Chromium is installed. The same check runs
in tests/test_report.py (skipped there without Chromium).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from octvessel.errors import InputError
from octvessel.report import find_chromium, image_stats, looks_rendered, screenshot


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path, help="the report.html to render")
    p.add_argument("-o", "--output", type=Path, help="PNG to write (default: beside the HTML)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=2000)
    args = p.parse_args(argv)
    exe = find_chromium()
    if exe is None:
        print("no Chromium found (install the 'chromium' package or set OCTVESSEL_CHROMIUM)")
        return 2
    out = args.output or args.html.with_suffix(".png")
    t0 = time.perf_counter()
    try:
        screenshot(args.html, out, width=args.width, height=args.height, chromium=exe)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    stats = image_stats(out)
    ok = looks_rendered(stats)
    print(f"{exe}: {seconds:.1f} s -> {out}")
    print(
        f"{stats['width']:.0f}x{stats['height']:.0f} px, {stats['colors']:.0f} colours, "
        f"gray std {stats['std']:.1f}, non-white {stats['non_white']:.1%}, rows used "
        f"{stats['rows_used']:.1%}: {'rendered' if ok else 'LOOKS BLANK'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
