"""Deprecated: moved to :mod:`octvessel.inference.predictor` (this alias goes in the next release)."""

import warnings

from octvessel.inference.predictor import *  # noqa: F403
from octvessel.inference.predictor import __all__  # noqa: F401

warnings.warn(
    "octvessel.predictor moved to octvessel.inference.predictor; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
