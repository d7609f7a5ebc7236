"""Vessel morphometry in physical units: centre-line graph, widths, tortuosity, fractal
dimension, per ETDRS sector (definitions in docs/measure.md)."""

from octvessel.morphometry.measure import COLUMNS, Measurement, check_spacing, measure
from octvessel.morphometry.regions import SECTORS, etdrs_regions
from octvessel.sim.morphometry_truth import phantom_truth

__all__ = [
    "COLUMNS",
    "SECTORS",
    "Measurement",
    "check_spacing",
    "etdrs_regions",
    "measure",
    "phantom_truth",
]
