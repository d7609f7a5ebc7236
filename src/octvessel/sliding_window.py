"""Deprecated alias of :mod:`octvessel.inference.sliding_window` (it moved there; removed next release)."""

import warnings
from typing import Any

from octvessel.inference import sliding_window as _moved

warnings.warn(
    "octvessel.sliding_window moved to octvessel.inference.sliding_window; import it from there",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_moved, name)


def __dir__() -> list[str]:
    return dir(_moved)
