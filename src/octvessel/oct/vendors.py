"""Vendor OCT formats through the optional ``eyepy`` package (``pip install octvessel[oct]``).

- Heidelberg ``.vol``: B-scans, scan geometry, laterality and the device's layer
  segmentations (``ILM``, ``BM``, ``RNFL`` ... in Heidelberg's naming). The raw linear
  reflectivities are mapped to display intensities in [0, 1] with eyepy's logarithmic
  HEYEX transform, ``(ln(x + 2.44e-4) + 8.3) / 8.285``, kept in float32 (no 8-bit rounding);
  invalid samples (FLT_MAX) become 0. Single-line and circular scans (one B-scan) are read
  as 1-B-scan volumes (``meta["scan_pattern"]``), their slow spacing set to the A-scan
  spacing since the file gives none.
- Heidelberg ``.e2e`` (first volume of the file), HEYEX-XML exports (the ``.xml`` file or
  its folder) and Topcon ``.fda`` (needs eyepy's own ``oct-converter`` extra): eyepy's
  display intensities (8-bit) scaled to [0, 1].
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.errors import InputError

__all__ = ["read_vendor", "vol_display_intensity"]

_NAMES = {
    "vol": "Heidelberg .vol",
    "e2e": "Heidelberg .e2e",
    "xml": "HEYEX-XML",
    "fda": "Topcon .fda",
}
_SCAN_PATTERNS = {
    0: "unknown",
    1: "line",
    2: "circle",
    3: "volume (ART)",
    4: "volume (fast)",
    5: "radial",
}


def _eyepy(path: Path, fmt: str) -> Any:
    try:
        import eyepy
    except ImportError as exc:
        raise InputError(
            f"reading {_NAMES[fmt]} files needs the optional eyepy package: "
            "pip install octvessel[oct]",
            path,
        ) from exc
    import eyepy

    return eyepy


@contextlib.contextmanager
def _quiet_eyepy() -> Iterator[None]:
    """eyepy logs warnings about layer counts; keep them off the user's terminal."""
    logger = logging.getLogger("eyepy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def vol_display_intensity(raw: np.ndarray) -> np.ndarray:
    """Heidelberg raw reflectivity -> float32 display intensity in [0, 1] (HEYEX log scale)."""
    raw = np.asarray(raw, dtype=np.float32)
    valid = np.isfinite(raw) & (raw <= 1.0) & (raw >= 0.0)
    out = np.zeros(raw.shape, np.float32)
    out[valid] = (np.log(raw[valid] + np.float32(2.44e-4)) + np.float32(8.3)) / np.float32(8.285)
    return np.clip(out, 0.0, 1.0)


def read_vendor(path: Path, fmt: str) -> Any:
    """Read a vendor file into a :class:`~octvessel.oct.volume.Volume`."""
    ep = _eyepy(path, fmt)
    with _quiet_eyepy():
        try:
            if fmt == "vol":
                return _read_vol(path)
            if fmt == "xml":
                ev = ep.import_heyex_xml(path)
            elif fmt == "e2e":
                ev = ep.import_heyex_e2e(path)
            else:
                ev = ep.import_topcon_fda(path)
        except InputError:
            raise
        except ImportError as exc:  # .fda needs oct-converter
            raise InputError(
                f"reading {_NAMES[fmt]} files needs more optional packages ({_one_line(exc)})",
                path,
            ) from exc
        except Exception as exc:  # eyepy/construct raise many types for bad files
            raise InputError(f"cannot read {_NAMES[fmt]} file ({_one_line(exc)})", path) from exc
    return _from_eyevolume(ev, path, fmt)


def _read_vol(path: Path) -> Any:
    from eyepy.io import HeVolReader

    from octvessel.oct.volume import Volume

    reader = HeVolReader(path)
    f = reader.parsed_file
    raw = np.stack([np.asarray(b.data) for b in f.bscans])
    data = vol_display_intensity(raw)
    pattern = int(f.scan_pattern)
    slow = float(f.distance)
    notes = []
    if not slow > 0:
        slow = float(f.scale_x)
        notes.append("the file gives no B-scan distance; slow spacing set to the A-scan spacing")
    layers = reader.layers  # (n_layers, B, A), NaN where not segmented
    from eyepy.io.he.vol_reader import SEG_MAPPING

    names = {i: n for n, i in SEG_MAPPING.items() if n not in ("PR1", "PR2")}
    names.update({14: "PR1", 15: "PR2"})
    boundaries = {}
    for i in range(layers.shape[0]):
        h = np.asarray(layers[i], dtype=np.float32)
        if i in names and np.isfinite(h).any():
            boundaries[names[i]] = _clip_to_depth(h, data.shape[1])
    return Volume(
        data=data,
        spacing=(slow, float(f.scale_y), float(f.scale_x)),
        laterality=str(f.scan_position),
        boundaries=boundaries,
        path=path,
        meta={
            "format": "vol",
            "spacing_source": "file",
            "scan_pattern": _SCAN_PATTERNS.get(pattern, str(pattern)),
            "raster": pattern in (3, 4) or (pattern == 0 and data.shape[0] > 1),
            "intensity": "HEYEX log display scale from raw reflectivity",
            "boundary_source": "file" if boundaries else None,
            "warnings": notes,
        },
    )


def _from_eyevolume(ev: Any, path: Path, fmt: str) -> Any:
    from octvessel.oct.volume import Volume

    data = np.asarray(ev.data)
    if data.dtype.kind == "u":
        data = data.astype(np.float32) / np.float32(np.iinfo(data.dtype).max)
    else:
        data = np.clip(np.nan_to_num(data.astype(np.float32)), 0.0, None)
    boundaries = {}
    for name, layer in ev.layers.items():
        h = np.asarray(layer.data, dtype=np.float32)
        if np.isfinite(h).any():
            boundaries[str(name)] = _clip_to_depth(h, data.shape[1])
    spacing = (float(ev.scale_z), float(ev.scale_y), float(ev.scale_x))
    notes = []
    if not spacing[0] > 0:
        spacing = (spacing[2], spacing[1], spacing[2])
        notes.append("the file gives no B-scan distance; slow spacing set to the A-scan spacing")
    return Volume(
        data=data,
        spacing=spacing,
        laterality=_laterality(ev),
        boundaries=boundaries,
        path=path,
        meta={
            "format": fmt,
            "spacing_source": "file",
            "raster": data.shape[0] > 1,
            "intensity": "eyepy display intensity / 255",
            "boundary_source": "file" if boundaries else None,
            "warnings": notes,
        },
    )


def _laterality(ev: Any) -> str | None:
    try:
        value = ev.laterality
    except Exception:
        return None
    text = str(value).strip().upper()
    return text if text in ("OD", "OS", "R", "L") else None


def _clip_to_depth(h: np.ndarray, depth: int) -> np.ndarray:
    """FLT_MAX means "not segmented"; overshoots of up to one sample are clipped.

    Anything farther outside the image is left for :class:`Volume` to refuse.
    """
    h = h.copy()
    h[h >= 3.0e38] = np.nan
    near = np.isfinite(h) & (h >= -1.0) & (h <= depth + 1.0)
    h[near] = np.clip(h[near], 0.0, float(depth))
    return h


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
