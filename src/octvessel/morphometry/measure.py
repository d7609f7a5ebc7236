"""``measure(mask, spacing, ...)``: one row of the morphometry table per region."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from octvessel.errors import InputError, UsageError
from octvessel.morphometry import features
from octvessel.morphometry.graph import CentreGraph, build_graph
from octvessel.morphometry.regions import check_fovea, etdrs_regions, sector_areas_mm2

#: the table's columns, in order (docs/measure.md, "Definitions"; the last two say how much of an
#: ETDRS sector lies inside the image)
COLUMNS = (
    "image",
    "region",
    "area_mm2",
    "area_density",
    "length_mm",
    "length_density",
    "mean_width_um",
    "median_width_um",
    "tortuosity",
    "fractal_dimension",
    "branch_points",
    "end_points",
    "segments",
    "partial",
    "region_fraction",
)

#: the largest pixel side we believe (mm): 1 mm pixels would make a 6 mm grid 6 pixels wide
MAX_SPACING_MM = 1.0


@dataclass(frozen=True)
class Measurement:
    """The rows of one image and what they were computed from.

    Attributes:
        rows: one dict per region (keys :data:`COLUMNS`), ``whole`` first.
        graph: the centre-line graph, on the graph grid (pixel coordinates of that grid).
        width_mm: float vessel width map on the graph grid (0 off the mask).
        spacing: (row, col) mm per pixel of the input; units: "mm", or "px" when the pixel
            size is unknown (then lengths are pixels, areas pixels^2, widths pixels).
        fovea, laterality: what placed the ETDRS grid (None: not placed).
        regions: sector name -> bool H x W mask inside the image (input grid).
        shape: the input's (H, W).
        graph_spacing: (row, col) of the graph grid: ``spacing`` for square pixels; for
            non-square ones, square pixels of the smaller side (the mask resampled by
            :func:`features.to_square_pixels`: a skeleton's 8 neighbours are then equally
            far in mm, so centre lines and junctions do not depend on the grid's aspect).
    """

    rows: list[dict[str, Any]]
    graph: CentreGraph
    width_mm: np.ndarray
    spacing: tuple[float, float]
    units: str
    fovea: tuple[float, float] | None
    laterality: str | None
    shape: tuple[int, int]
    graph_spacing: tuple[float, float]
    regions: dict[str, np.ndarray] = field(default_factory=dict)

    def to_input_px(self, points: np.ndarray) -> np.ndarray:
        """(k, 2) float (row, col) on the graph grid -> pixels of the input."""
        return features.square_to_input_px(points, self.shape, self.width_mm.shape)

    @property
    def branch_points(self) -> np.ndarray:
        """(k, 2) float branch points, (row, col) pixels of the input."""
        return self.to_input_px(self.graph.branch_points)


def check_spacing(spacing: Any, what: str = "spacing") -> tuple[float, float]:
    """(row, col) mm per pixel, both finite, > 0 and <= :data:`MAX_SPACING_MM`."""
    try:
        sr, sc = (float(v) for v in spacing)
    except (TypeError, ValueError):
        raise UsageError(f"{what}={spacing!r}: expected ROW,COL in mm per pixel") from None
    for v in (sr, sc):
        if not (math.isfinite(v) and 0 < v <= MAX_SPACING_MM):
            raise UsageError(
                f"{what}={sr:g},{sc:g}: expected mm per pixel, each > 0 and <= "
                f"{MAX_SPACING_MM:g} (e.g. 0.0497,0.0182 for an Avanti en-face image)"
            )
    return sr, sc


def check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A 2-D bool mask with some vessel and some background; else :class:`InputError`."""
    m = np.asarray(mask)
    if m.ndim != 2 or 0 in m.shape:
        raise InputError(f"expected a 2-D mask, found shape {m.shape}", name)
    if m.dtype != bool:
        levels = np.unique(m)
        if levels.size > 2 or not set(levels.tolist()) <= {0, 1}:
            raise InputError(
                f"mask is not binary: found {levels.size} values; expected 0/1 or bool "
                "(threshold probability maps first)",
                name,
            )
        m = m.astype(bool)
    n = int(m.sum())
    if n == 0:
        raise InputError("mask is empty (no vessel pixel); nothing to measure", name)
    if n == m.size:
        raise InputError("mask is all vessel (no background); expected a vessel map", name)
    return m


def measure(
    mask: np.ndarray,
    spacing: tuple[float, float] | None,
    *,
    fovea: tuple[float, float] | None = None,
    laterality: str | None = None,
    name: str = "image",
    spur_mm: float | None = None,
) -> Measurement:
    """Morphometry of one vessel mask, per region.

    Args:
        mask: bool H x W vessel mask (or 0/1 integers).
        spacing: (row, col) mm per pixel; None measures in pixels (``units="px"``).
        fovea: (row, col) of the fovea in pixels; None gives only the ``whole`` row.
        laterality: "OD" or "OS" (names nasal/temporal); None gives only ``whole`` and
            ``centre``.
        name: the ``image`` column.
        spur_mm: spur length (see :mod:`octvessel.morphometry.graph`); None: the vessel
            diameter at the branch point plus one pixel.

    Raises:
        InputError: non-binary, empty or all-vessel mask.
        UsageError: bad spacing, fovea outside the image, bad laterality.
    """
    m = check_mask(mask, name)
    units = "mm" if spacing is not None else "px"
    sp = check_spacing(spacing) if spacing is not None else (1.0, 1.0)
    regions: dict[str, tuple[np.ndarray, float]] = {"whole": (np.ones(m.shape, bool), 1.0)}
    if fovea is not None:
        check_fovea(fovea, m.shape)
        if units == "px":
            raise UsageError("an ETDRS grid needs the pixel size in mm: pass --spacing ROW,COL")
        regions.update(etdrs_regions(m.shape, sp, fovea, laterality))
    square = features.to_square_pixels(m, sp)
    gsp = sp if sp[0] == sp[1] else (min(sp), min(sp))  # the graph grid: square pixels
    dist, width = features.width_map_mm(square, gsp)
    graph = build_graph(square, gsp, spur_mm=spur_mm, distance_mm=dist)
    square_regions = {}
    rows = []
    full_area = sector_areas_mm2()
    for region, (rmask, fraction) in regions.items():
        if region != "whole":
            square_regions[region] = features.to_square_pixels(rmask, sp)
        rows.append(
            _row(
                name,
                region,
                m,
                rmask,
                fraction,
                graph,
                width,
                sp,
                units,
                square,
                square_regions.get(region),
                full_area.get(region),
            )  # fmt: skip
        )
    return Measurement(
        rows=rows,
        graph=graph,
        width_mm=width,
        spacing=sp,
        units=units,
        fovea=tuple(fovea) if fovea is not None else None,
        laterality=laterality if fovea is not None else None,
        shape=(int(m.shape[0]), int(m.shape[1])),
        graph_spacing=gsp,
        regions={k: v[0] for k, v in regions.items() if k != "whole"},
    )


def _row(
    name: str,
    region: str,
    mask: np.ndarray,
    rmask: np.ndarray,
    fraction: float,
    graph: CentreGraph,
    width: np.ndarray,
    spacing: tuple[float, float],
    units: str,
    square: np.ndarray,
    square_region: np.ndarray | None,
    full_area: float | None,
) -> dict[str, Any]:
    px_area = spacing[0] * spacing[1]
    n_region = int(rmask.sum())
    area = n_region * px_area
    to_um = 1000.0 if units == "mm" else 1.0
    # the region on the graph's (square-pixel) grid; area and density stay on the input's
    gmask = square_region if square_region is not None else np.ones(square.shape, bool)
    plen = graph.pixel_length_mm * gmask
    length = float(plen.sum())
    on_line = (graph.segment_labels > 0) & gmask
    mean_w, median_w = features.weighted_stats(width[on_line] * to_um, plen[on_line])
    # chains: each counted in the region holding the largest share of its length
    seg_in = np.bincount(
        graph.segment_labels[on_line], weights=plen[on_line],
        minlength=int(graph.segment_labels.max()) + 1,
    )  # fmt: skip
    seg_all = np.bincount(
        graph.segment_labels.ravel(), weights=graph.pixel_length_mm.ravel(),
        minlength=seg_in.size,
    )  # fmt: skip
    arcs, count = [], 0
    for ch in graph.chains:
        inside = float(seg_in[list(ch.pieces)].sum())
        total = float(seg_all[list(ch.pieces)].sum())
        if total > 0 and inside >= 0.5 * total:
            count += 1
        if inside > 0:
            arcs.append((inside, ch.length_mm, ch.chord_mm))
    if arcs:
        a = np.asarray(arcs)
        ok = a[:, 2] >= 2 * max(spacing)
        tort = (
            float((a[ok, 0] * a[ok, 1] / a[ok, 2]).sum() / a[ok, 0].sum()) if ok.any() else math.nan
        )
    else:
        tort = math.nan
    fd = (
        features.box_counting_dimension(square)
        if square_region is None
        else (features.region_fractal_dimension(square, square_region))
    )
    return {
        "image": name,
        "region": region,
        "area_mm2": area,
        "area_density": float(mask[rmask].sum()) / n_region if n_region else math.nan,
        "length_mm": length,
        "length_density": length / area if area else math.nan,
        "mean_width_um": mean_w,
        "median_width_um": median_w,
        "tortuosity": tort,
        "fractal_dimension": fd,
        "branch_points": _count_in(graph.branch_points, gmask),
        "end_points": _count_in(graph.end_points, gmask),
        "segments": count,
        "partial": bool(fraction < 1.0) if full_area is not None else False,
        "region_fraction": fraction,
    }


def _count_in(points: np.ndarray, rmask: np.ndarray) -> int:
    if points.size == 0:
        return 0
    r = np.clip(np.round(points[:, 0]).astype(int), 0, rmask.shape[0] - 1)
    c = np.clip(np.round(points[:, 1]).astype(int), 0, rmask.shape[1] - 1)
    return int(rmask[r, c].sum())
