"""A linked OCT viewer inside the report: en-face image per variant with the vessel overlay,
the current B-scan with its surfaces, slab and vessel columns, and the QC warnings.

Everything is inlined (B-scans as JPEG, en-face images and overlay as PNG, surfaces as JSON,
the script and style from ``viewer.js``/``viewer.css`` beside this module): no server, no
network, works from ``file://``. B-scans are resampled to at most ``max_width`` x
``max_depth`` pixels and JPEG-compressed at ``jpeg_quality`` to keep the page small.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np


@dataclass
class ViewerData:
    """What the viewer shows.

    Attributes:
        bscans: (B, D, W) intensities (any float/uint8; scaled to 0-255 per volume).
        spacing: (slow, axial, fast) spacing in mm.
        enfaces: variant name -> (B, W) en-face image in [0, 1] (or uint8).
        probabilities: variant name -> (B', W') vessel probability in [0, 1] of that
            variant's en-face image (any grid; resampled to the B-scan rows/columns).
        surfaces: surface name -> (B, W) depth in axial samples (float, NaN where missing).
        slabs: variant name -> (top, bottom) surface names of its slab (shaded on the B-scan
            while that variant is shown; ``top``/``bottom`` = the image edges).
        warnings: QC warnings of the volume.
        fovea: (row, column) of the fovea in en-face pixels, or None (no ETDRS grid).
        threshold: probability at which a column counts as a vessel.
    """

    bscans: np.ndarray
    spacing: tuple[float, float, float]
    enfaces: dict[str, np.ndarray]
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    surfaces: dict[str, np.ndarray] = field(default_factory=dict)
    slabs: dict[str, tuple[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fovea: tuple[float, float] | None = None
    threshold: float = 0.5


@dataclass
class ViewerConfig:
    max_width: int = 512
    max_depth: int = 256
    jpeg_quality: int = 75


def _u8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.size and float(np.nanmax(a)) > 1.5:
        lo, hi = np.nanpercentile(a, 0.5), np.nanpercentile(a, 99.8)
    else:
        lo, hi = 0.0, 1.0
    return (np.clip((np.nan_to_num(a) - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def _gray(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a.mean(axis=-1) if a.ndim == 3 else a


def _encode(img: np.ndarray, fmt: str, size: tuple[int, int] | None = None, **kw: Any) -> str:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(img))
    if size is not None and im.size != size:
        im = im.resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def viewer_payload(data: ViewerData, config: ViewerConfig | None = None) -> dict[str, Any]:
    """The JSON the page script reads (images as data URLs, surfaces in B-scan pixels)."""
    cfg = config or ViewerConfig()
    vol = np.asarray(data.bscans)
    b, d, w = vol.shape
    ow, od = min(w, cfg.max_width), min(d, cfg.max_depth)
    sx, sz = ow / w, od / d
    vol8 = _u8(vol)
    bscans = [_encode(vol8[i], "JPEG", (ow, od), quality=cfg.jpeg_quality) for i in range(b)]
    enfaces = {k: _encode(_u8(_gray(v)), "PNG") for k, v in data.enfaces.items()}
    xs = np.clip(((np.arange(ow) + 0.5) / sx).astype(int), 0, w - 1)
    surfaces = {}
    for name, s in data.surfaces.items():
        s = np.asarray(s, dtype=np.float32)[:, xs] * sz
        surfaces[name] = [
            [None if not np.isfinite(v) else round(float(v), 1) for v in r] for r in s
        ]
    overlays, vessels = {}, {}
    for name, prob in data.probabilities.items():
        p = np.clip(np.nan_to_num(_gray(prob)), 0, 1)
        rgba = np.zeros(p.shape + (4,), np.uint8)
        rgba[..., 0], rgba[..., 1], rgba[..., 3] = 255, 40, (p * 255).astype(np.uint8)
        overlays[name] = _encode(rgba, "PNG")
        rows = np.clip(((np.arange(b) + 0.5) * p.shape[0] / b).astype(int), 0, p.shape[0] - 1)
        cols = np.clip(((np.arange(ow) + 0.5) * p.shape[1] / ow).astype(int), 0, p.shape[1] - 1)
        mask = p[rows][:, cols] >= data.threshold
        vessels[name] = [[int(c) for c in np.flatnonzero(row)] for row in mask]
    slow, axial, fast = data.spacing
    return {
        "n": b,
        "bscans": bscans,
        "bscan_px": [ow, od],
        "extent_mm": {"width": w * fast, "depth": d * axial, "height": b * slow},
        "enfaces": enfaces,
        "overlays": overlays,
        "vessels": vessels,
        "surfaces": surfaces,
        "slabs": {k: list(v) for k, v in data.slabs.items()},
        "warnings": [str(x) for x in data.warnings],
        "fovea": [float(data.fovea[0]), float(data.fovea[1])] if data.fovea else None,
        "grid": [int(b), int(w)],
        "threshold": data.threshold,
        "fast_mm": fast,
        "slow_mm": slow,
    }


def _asset(name: str) -> str:
    return resources.files("octvessel.report").joinpath(name).read_text(encoding="utf-8")


def viewer_html(data: ViewerData, config: ViewerConfig | None = None) -> str:
    """An HTML fragment (section, style, data and script) holding the whole viewer."""
    payload = json.dumps(viewer_payload(data, config), separators=(",", ":"))
    payload = payload.replace("</", "<\\/")
    variants = "".join(
        f'<option value="{html.escape(k)}">{html.escape(k)}</option>' for k in data.enfaces
    )
    return (
        f"<style>{_asset('viewer.css')}</style>"
        '<section id="ov-viewer" aria-label="Linked OCT viewer"><h2>OCT viewer</h2>'
        '<div class="ov-controls">'
        f'<label>Variant <select id="ov-variant">{variants}</select></label>'
        '<label>Overlay opacity <input id="ov-opacity" type="range" min="0" max="100" value="50"></label>'
        '<label>B-scan <input id="ov-row" type="range" min="0" value="0"></label>'
        '<output id="ov-rowlabel" aria-live="polite"></output>'
        '<fieldset id="ov-surfaces"><legend>Surfaces</legend></fieldset></div>'
        '<div class="ov-panes"><figure><canvas id="ov-enface" tabindex="0" '
        'aria-label="En-face image: click or hover to choose a B-scan, arrow keys move"></canvas>'
        "<figcaption>En-face (physical aspect); red: vessel probability; line: current B-scan"
        "</figcaption></figure>"
        '<figure><canvas id="ov-bscan" aria-label="Current B-scan with surfaces"></canvas>'
        "<figcaption>B-scan (physical aspect); shaded: P-variant slab; ticks: vessel columns"
        '</figcaption></figure><aside id="ov-qc" aria-label="QC warnings"><h3>QC warnings</h3>'
        '<ul id="ov-warnings"></ul></aside></div>'
        '<pre id="ov-selftest" hidden></pre>'
        f'<script type="application/json" id="ov-data">{payload}</script>'
        f"<script>{_asset('viewer.js')}</script></section>"
    )
