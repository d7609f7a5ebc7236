"""Spacing of a B-scan folder from a HEYEX-style XML export beside it (``OCT-Info.xml``).

HEYEX XML lists every image of a series: the IR fundus image first (no Start/End), then
one ``<Image>`` per B-scan with ``OphthalmicAcquisitionContext`` holding ``Width``,
``Height``, ``ScaleX`` (mm per A-scan), ``ScaleY`` (mm per depth sample) and the B-scan's
``Start``/``End`` coordinates on the fundus (mm). The distance between B-scans is the
distance between the first and last B-scans' Start points over the gaps between them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octvessel.errors import InputError

__all__ = ["HeyexGeometry", "find_heyex_xml", "read_heyex_geometry"]


@dataclass(frozen=True)
class HeyexGeometry:
    """B-scan geometry read from a HEYEX XML file.

    Attributes:
        spacing: (slow, axial, fast) mm per sample.
        bscans: number of B-scans the XML lists; width, height: B-scan size (pixels).
        field_mm: (slow, fast) extent of the scan on the retina, mm.
        path: the XML file.
    """

    spacing: tuple[float, float, float]
    bscans: int
    width: int
    height: int
    field_mm: tuple[float, float]
    path: Path


def find_heyex_xml(folder: Path) -> Path | None:
    """A ``*.xml`` in ``folder`` or its parent that describes B-scans, else None."""
    for d in (folder, folder.parent):
        try:
            cands = sorted(p for p in d.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
        except OSError:
            continue
        for p in cands:
            try:
                head = p.read_bytes()[:65536]
            except OSError:
                continue
            if b"<ScaleY>" in head and b"<Start>" in head:
                return p
    return None


def read_heyex_geometry(path: Path) -> HeyexGeometry:
    """Parse the B-scan images of a HEYEX XML file.

    Raises:
        InputError: not XML, or no image with ScaleX, ScaleY, Start and End.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"cannot read HEYEX XML ({exc})", path) from exc
    rows = []
    for ctx in root.iter("OphthalmicAcquisitionContext"):
        start, end = ctx.find("Start/Coord"), ctx.find("End/Coord")
        try:
            rows.append(
                (
                    int(ctx.findtext("Width", "")),
                    int(ctx.findtext("Height", "")),
                    float(ctx.findtext("ScaleX", "")),
                    float(ctx.findtext("ScaleY", "")),
                    float(start.findtext("X", "")) if start is not None else np.nan,
                    float(start.findtext("Y", "")) if start is not None else np.nan,
                    float(end.findtext("X", "")) if end is not None else np.nan,
                    float(end.findtext("Y", "")) if end is not None else np.nan,
                )
            )
        except ValueError:
            continue
    scans = np.array([r for r in rows if np.isfinite(r[4:]).all()], dtype=np.float64)
    if scans.size == 0:
        raise InputError(
            "HEYEX XML lists no B-scan with Width, Height, ScaleX, ScaleY and Start/End", path
        )
    width, height = int(scans[0, 0]), int(scans[0, 1])
    fast, axial = float(np.median(scans[:, 2])), float(np.median(scans[:, 3]))
    starts = scans[:, 4:6]
    if len(scans) > 1:
        slow = float(np.hypot(*(starts[-1] - starts[0]))) / (len(scans) - 1)
    else:
        slow = fast
    if not (slow > 0 and fast > 0 and axial > 0):
        raise InputError(f"HEYEX XML spacing is not positive: {slow}, {axial}, {fast} mm", path)
    extent = float(np.hypot(*(starts[-1] - starts[0]))) if len(scans) > 1 else 0.0
    return HeyexGeometry(
        spacing=(slow, axial, fast),
        bscans=len(scans),
        width=width,
        height=height,
        field_mm=(extent + slow, fast * width),
        path=path,
    )
