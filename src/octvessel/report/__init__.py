"""One self-contained HTML report of a training run, an evaluation or a cross-validation.

``octvessel report DIR`` recognises the folder by its files:

- a cross-validation (``octvessel cv``): ``cv.json`` and ``splits.json``;
- an evaluation (``octvessel evaluate``): ``metrics.json``;
- a training run (``octvessel train``): ``train_config.json``.
- a demo folder (``octvessel demo``): its ``metrics.json`` (per-variant scores) and
  ``viewer.html`` (the linked OCT viewer, see :mod:`octvessel.report.viewer`);
- a reconstruction folder (``octvessel reconstruct``, + ``predict`` maps): ``*_enface.json``;
  one linked OCT viewer per volume (docs/viewer.md).

The report holds the metrics tables, ROC and precision-recall curves (per fold or per
image, and pooled), the training curves from ``log.csv``, one row per test image of
image / label / probability / error map (TP white, FP red, FN blue, TN black), and the
configuration, seed and versions. Every picture is a base64 PNG inside the file: no
external asset, script or style sheet, so the file can be mailed or archived alone.

Curves and image rows need the dataset (its path is recorded in the folder) and the saved
probability maps; when the dataset is gone the report says so and embeds the curve PNGs
the folder holds instead.

:func:`screenshot` renders a report in headless Chromium (used by the tests and
``benchmarks/report_screenshot.py``).
"""

from octvessel.report.browser import (
    CHROMIUM_NAMES,
    find_chromium,
    image_stats,
    looks_rendered,
    screenshot,
    viewer_selftest,
)
from octvessel.report.kinds import KINDS, REPORT_NAME, build_report, detect_kind, write_report
from octvessel.report.sections import ReportConfig

__all__ = [
    "CHROMIUM_NAMES",
    "KINDS",
    "REPORT_NAME",
    "ReportConfig",
    "build_report",
    "detect_kind",
    "find_chromium",
    "image_stats",
    "looks_rendered",
    "screenshot",
    "write_report",
    "viewer_selftest",
]
