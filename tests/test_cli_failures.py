"""Nothing left behind on failure, and --overwrite removes what it replaces (issue 16).

A command that fails leaves no empty output folder (whatever the verb: the folders it
made are taken back by the command line); ``reconstruct --overwrite`` with fewer
variants removes the earlier ones of that volume.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from octvessel import atomic
from octvessel.cli import main

SHAPE = ["--shape", "24,96,40", "--field-mm", "3,3", "--axial-um", "8"]


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


def test_remove_empty_created_takes_back_only_new_empty_folders(tmp_path):
    (tmp_path / "old").mkdir()
    atomic.forget_created()
    atomic.check_output_dir(tmp_path / "old" / "a" / "b")
    atomic.check_writable(tmp_path / "full" / "x.txt")
    atomic.write_text(tmp_path / "full" / "x.txt", "kept")
    removed = atomic.remove_empty_created()
    assert set(removed) == {tmp_path / "old" / "a" / "b", tmp_path / "old" / "a"}
    assert (tmp_path / "old").is_dir() and (tmp_path / "full" / "x.txt").is_file()


@pytest.mark.parametrize("verb", ["reconstruct", "evaluate", "measure"])
def test_a_failed_command_leaves_no_empty_output_folder(verb, tmp_path, generic_dataset, capsys):
    out = tmp_path / "new" / "out"
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not a volume")
    args = {
        "reconstruct": ["reconstruct", "-i", str(bad), "-o", str(out)],
        "evaluate": ["evaluate", "-d", str(generic_dataset), "-p", str(tmp_path), "-o", str(out)],
        "measure": ["measure", "-i", str(bad), "-o", str(out)],
    }[verb]
    assert main(args) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_failed_command_keeps_a_folder_that_existed(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    assert main(["reconstruct", "-i", str(tmp_path / "missing.npy"), "-o", str(out)]) == 2
    assert out.is_dir()


def test_reconstruct_overwrite_with_fewer_variants_removes_the_stale_ones(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["phantom", "-o", str(ds), "-n", "1", *SHAPE]) == 0
    vol = ds / "volumes" / "phantom_000.npz"
    rec = tmp_path / "rec"
    assert main(["reconstruct", "-i", str(vol), "-o", str(rec)]) == 0
    before = sorted(p.name for p in rec.iterdir())
    assert "phantom_000_fundus_P1.bmp" in before and "phantom_000_surfaces.npz" in before
    # without --overwrite: refused, nothing changes
    assert main(["reconstruct", "-i", str(vol), "-o", str(rec), "--variant", "P3"]) == 2
    assert sorted(p.name for p in rec.iterdir()) == before
    args = ["reconstruct", "-i", str(vol), "-o", str(rec), "--variant", "P3", "--overwrite"]
    assert main(args) == 0
    names = sorted(p.name for p in rec.iterdir())
    assert "phantom_000_fundus_P1.bmp" not in names and "phantom_000_fundus_P2.bmp" not in names
    assert "phantom_000_fundus_P3.bmp" in names
    sidecar = json.loads((rec / "phantom_000_enface.json").read_text())
    assert list(sidecar["images"]) == ["phantom_000_fundus_P3.bmp"]
    # P1 alone needs no boundaries: the boundary, surface and QC files go too
    args = ["reconstruct", "-i", str(vol), "-o", str(rec), "--variant", "P1", "--overwrite"]
    assert main(args) == 0
    assert sorted(p.name for p in rec.iterdir()) == [
        "phantom_000_enface.json",
        "phantom_000_fundus_P1.bmp",
    ]
    assert np.isfinite(
        json.loads((rec / "phantom_000_enface.json").read_text())["spacing_mm"]
    ).all()
