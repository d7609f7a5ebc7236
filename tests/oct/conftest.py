"""Fixtures shared by the tests of ``octvessel.oct`` (the repository-wide ones, e.g.
``shared_data``, are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def oct_dir(shared_data: Path) -> Path:
    """The real and fixture OCT files in ``../shared/data/OCT`` (skips when absent)."""
    d = shared_data / "OCT"
    if not d.is_dir():
        pytest.skip(f"OCT sample files not found at {d}")
    return d
