"""A bounded version of benchmarks/fuzz_readers.py, plus the crashes fuzzing found.

Hypothesis picks a seed file and a mutation; each mutated file must either read into the
documented layout or raise InputError whose one-line message names the file (the contract
``fuzz_readers.run_one`` checks). Marked ``slow``: a few seconds.
"""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octvessel.data.io import read_image, read_mask
from octvessel.errors import InputError
from octvessel.oct.readers import read_volume

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_readers.py"
_SPEC = importlib.util.spec_from_file_location("fuzz_readers", _PATH)
fuzz = importlib.util.module_from_spec(_SPEC)
sys.modules["fuzz_readers"] = fuzz
_SPEC.loader.exec_module(fuzz)

SEEDS = [(t, s, d) for t in fuzz.TARGETS for s, d in fuzz.TARGETS[t][1]()]
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same inputs on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1))
def test_readers_survive_random_mutations(workdir, seed, mutation_seed):
    target, suffix, data = seed
    bad = fuzz.mutate(data, random.Random(mutation_seed))
    outcome, crash = fuzz.run_one(target, suffix, bad, workdir, timeout=10.0)
    assert crash is None, crash


@pytest.mark.slow
@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    st.floats(0.05, 1.0),
)
def test_readers_survive_byte_edits_and_truncation(workdir, seed, edits, keep):
    """Hypothesis-native edits (they shrink to a minimal failing change)."""
    target, suffix, data = seed
    b = bytearray(data[: max(1, int(len(data) * keep))])
    for where, value in edits:
        b[int(where * len(b))] = value
    outcome, crash = fuzz.run_one(target, suffix, bytes(b), workdir, timeout=10.0)
    assert crash is None, crash


def test_a_short_run_of_the_benchmark_counts_and_finds_nothing(tmp_path):
    stats = fuzz.fuzz_mutate(
        ["image", "mask", "volume"], 0, 150, 0, tmp_path, tmp_path / "crashes", 10.0, False
    )
    assert sum(stats.executions.values()) == 150
    assert stats.outcomes["input-error"] > 0 and stats.outcomes["ok"] > 0
    assert not stats.crashes, fuzz.report(stats, "mutate")
    assert "150 executions" in fuzz.report(stats, "mutate")


# --------------------------------------------------------- crashes found by fuzzing


def _looping_tiff(path: Path) -> Path:
    """A one-page TIFF whose next-page offset points back at its own page."""
    import tifffile

    tifffile.imwrite(path, np.arange(120, dtype=np.uint8).reshape(12, 10))
    data = bytearray(path.read_bytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (n,) = struct.unpack_from("<H", data, ifd)
    struct.pack_into("<I", data, ifd + 2 + 12 * n, ifd)  # next IFD = this IFD
    path.write_bytes(bytes(data))
    return path


def test_tiff_page_chain_that_loops_is_refused_at_once(tmp_path):
    """tifffile followed such a chain forever (found by fuzzing; a hang, now an error)."""
    path = _looping_tiff(tmp_path / "loop.tif")
    for reader in (read_image, read_mask, read_volume):
        start = time.perf_counter()
        with pytest.raises(InputError, match="loops back") as exc:
            reader(path)
        assert time.perf_counter() - start < 2.0
        assert str(path) in str(exc.value)


def test_npy_header_that_does_not_parse_is_an_input_error(tmp_path):
    """numpy raised tokenize.TokenError for an unclosed header (found by fuzzing)."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16".ljust(117) + b"\n"
    path = tmp_path / "bad header.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(InputError, match="not a valid array header") as exc:
        read_volume(path)
    assert str(path) in str(exc.value)
