"""Deprecated alias of :mod:`octvessel.inference.predictor` (it moved there; removed next release)."""

import warnings
from typing import Any

from octvessel.inference import predictor as _moved

warnings.warn(
    "octvessel.predictor moved to octvessel.inference.predictor; import it from there",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_moved, name)


def __dir__() -> list[str]:
    return dir(_moved)
