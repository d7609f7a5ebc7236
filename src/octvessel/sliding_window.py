"""Deprecated: moved to :mod:`octvessel.inference.sliding_window` (this alias goes in the next release)."""

import warnings

from octvessel.inference.sliding_window import *  # noqa: F403
from octvessel.inference.sliding_window import __all__  # noqa: F401

warnings.warn(
    "octvessel.sliding_window moved to octvessel.inference.sliding_window; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
