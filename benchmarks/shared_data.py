"""Where the benchmarks find the project's shared data: ``$OCTVESSEL_SHARED_DATA`` if set,
else ``../shared/data`` beside the repository (as tests/conftest.py does)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    """The shared data folder (it may be absent: callers check what they need)."""
    env = os.environ.get("OCTVESSEL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
