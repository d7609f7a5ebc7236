"""Render a report in headless Chromium and check the screenshot shows something."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from octvessel.errors import InputError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """A headless-capable Chromium/Chrome: ``$OCTVESSEL_CHROMIUM`` or one on PATH, or None."""
    env = os.environ.get("OCTVESSEL_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html_path: str | Path,
    png_path: str | Path,
    *,
    width: int = 1280,
    height: int = 2000,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> Path:
    """Render ``html_path`` in headless Chromium into ``png_path`` (width x height pixels).

    Raises:
        InputError: no Chromium found, the HTML file missing, or Chromium failing.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise InputError(
            f"no Chromium found (tried $OCTVESSEL_CHROMIUM, {', '.join(CHROMIUM_NAMES)})"
        )
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    if not html_path.is_file():
        raise InputError("no such HTML file", html_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="octvessel-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"Chromium did not finish within {timeout:g} s", html_path) from None
    if proc.returncode != 0 or not png_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"Chromium failed (exit {proc.returncode}): {tail[0]}", html_path)
    return png_path


def image_stats(png_path: str | Path) -> dict[str, float]:
    """How much a screenshot shows: ``colors`` (distinct), ``std`` (of the gray levels,
    0-255), ``non_white`` (share of pixels that are not near-white) and ``rows_used``
    (share of pixel rows that hold something other than the background)."""
    from PIL import Image

    arr = np.asarray(Image.open(png_path).convert("RGB"))
    gray = arr.mean(axis=2)
    flat = arr.reshape(-1, 3)
    colors = len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))
    return {
        "width": float(arr.shape[1]),
        "height": float(arr.shape[0]),
        "colors": float(colors),
        "std": float(gray.std()),
        "non_white": float((gray < 245).mean()),
        "rows_used": float(((gray < 245).any(axis=1)).mean()),
    }


def looks_rendered(stats: dict[str, float]) -> bool:
    """True when :func:`image_stats` describes a page with content: many colours, contrast,
    and something drawn on at least a third of the rows (a blank or error page has not)."""
    return (
        stats["colors"] >= 64
        and stats["std"] >= 8.0
        and stats["non_white"] >= 0.02
        and stats["rows_used"] >= 0.33
    )


HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def viewer_selftest(
    html_path: str | Path,
    png_path: str | Path | None = None,
    *,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> dict:
    """Open a page holding the OCT viewer with ``#selftest`` in headless Chromium.

    The page's script then drives its own controls (B-scan slider, arrow key, click on the
    en-face image), times each B-scan switch until it is rasterised and checksums the drawn
    B-scan; the result is read from Chromium's console log. Returns that dict plus
    ``console_errors`` (console lines at error level and uncaught exceptions).

    Raises:
        InputError: no Chromium, or the page reported nothing (script failed to run).
    """
    import json

    exe = chromium or find_chromium()
    if exe is None:
        raise InputError("no Chromium found")
    html_path = Path(html_path).resolve()
    with tempfile.TemporaryDirectory(prefix="octvessel-chromium-") as profile:
        cmd = [exe, *HEADLESS_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
               "--v=0", "--virtual-time-budget=20000", "--window-size=1280,900"]  # fmt: skip
        if png_path is not None:
            cmd.append(f"--screenshot={Path(png_path).resolve()}")
        else:
            cmd.append("--dump-dom")
        cmd.append(html_path.as_uri() + "#selftest")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"Chromium did not finish within {timeout:g} s", html_path) from None
    result = None
    errors = []
    for line in proc.stderr.splitlines():
        if ":CONSOLE" not in line:
            continue
        if "OV-SELFTEST " in line:
            text = line.split("OV-SELFTEST ", 1)[1]
            result = json.loads(text[: text.rindex("}") + 1])
        elif "Uncaught" in line or "ERROR:CONSOLE" in line:
            errors.append(line)
    if result is None:
        raise InputError("the viewer's self-test reported nothing", html_path)
    result["console_errors"] = errors
    return result
