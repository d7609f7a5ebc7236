"""What made each prediction, and folders that never mix models silently (issue 16).

Through ``octvessel predict``: an interrupted ``--overwrite`` with another model is
finished by the same command, refused without ``--overwrite`` naming the files; a folder
predicted into itself skips its own outputs; a run whose every image fails leaves nothing;
a ``config.json`` that does not fit its weights fails at load, naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from octvessel.cli import main
from octvessel.data import write_image
from octvessel.inference.predictor import Predictor
from octvessel.models import create_model, save_pretrained
from octvessel.models.pretrained import sha256_of
from octvessel.preprocessing import Preprocessing


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


def tiny_bundle(path: Path, seed: int, **config) -> Path:
    torch.manual_seed(seed)
    net = create_model("iternet", base_channels=4, iterations=1, **config)
    color = "gray" if config.get("in_channels") == 1 else "rgb"
    return save_pretrained(net, path, preprocessing=Preprocessing(color=color))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return tiny_bundle(root / "A", 0), tiny_bundle(root / "B", 1)


def write_images(folder: Path, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"img{i}.png", (rng.random((36, 40, 3)) * 255).astype(np.uint8))
    return [f"img{i}" for i in range(n)]


def predict(src: Path, out: Path, model: Path, *extra: str) -> int:
    return main(
        ["predict", "-i", str(src), "-o", str(out), "-m", str(model), "--no-progress", *extra]
    )


def makers(out: Path) -> dict[str, str]:
    images = json.loads((out / "prediction.json").read_text())["images"]
    return {name: Path(r["model"]).name for name, r in images.items()}


def test_an_interrupted_overwrite_with_another_model_is_finished_by_the_same_command(
    tmp_path, models, monkeypatch, capsys
):
    a, b = models
    names = write_images(tmp_path / "in", 6)
    out = tmp_path / "out"
    assert predict(tmp_path / "in", out, a) == 0
    assert set(makers(out).values()) == {"A"}

    calls = {"n": 0}
    real = Predictor.predict_array

    def interrupted(self, image, **options):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, image, **options)

    monkeypatch.setattr(Predictor, "predict_array", interrupted)
    assert predict(tmp_path / "in", out, b, "--overwrite") == 130
    monkeypatch.setattr(Predictor, "predict_array", real)
    done = makers(out)
    assert [done[n] for n in names] == ["B", "B", "A", "A", "A", "A"]  # recorded as they were
    capsys.readouterr()

    # without --overwrite: one line naming the outputs another model made
    assert predict(tmp_path / "in", out, b) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "img2_*" in err and "img0_*" not in err and "--overwrite" in err
    assert "model (weights sha256)" in err

    # the same command again finishes the job: B's two outputs kept, A's four redone
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("img0_*")}
    assert predict(tmp_path / "in", out, b, "--overwrite") == 0
    printed = capsys.readouterr().out
    assert "4 predicted, 2 skipped" in printed and "continued an interrupted" in printed
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("img0_*")} == stamps
    assert set(makers(out).values()) == {"B"}
    manifest = json.loads((out / "prediction.json").read_text())
    assert "overwrite_pending" not in manifest
    assert manifest["images"]["img5"]["weights_sha256"] == sha256_of(b / "model.safetensors")
    # finished: a later --overwrite redoes everything again
    assert predict(tmp_path / "in", out, b, "--overwrite") == 0
    assert "6 predicted, 0 skipped" in capsys.readouterr().out


def test_predicting_a_folder_into_itself_skips_its_own_outputs(tmp_path, models, capsys):
    a, _ = models
    write_images(tmp_path / "d", 2)
    assert predict(tmp_path / "d", tmp_path / "d", a) == 0
    assert "2 predicted" in capsys.readouterr().out
    assert predict(tmp_path / "d", tmp_path / "d", a) == 0
    assert (
        "0 predicted, 2 skipped (outputs exist), 0 failed, of 2 images" in capsys.readouterr().out
    )


def test_a_run_whose_every_image_fails_leaves_no_folder_and_no_manifest(tmp_path, models, capsys):
    a, _ = models
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out" / "deeper"
    assert predict(tmp_path / "in", out, a) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # into a folder that exists: it stays, but no prediction.json claims a result
    (tmp_path / "kept").mkdir()
    assert predict(tmp_path / "in", tmp_path / "kept", a) == 2
    assert list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"preprocessing": {"color": "rgb"}}, "makes 3 channel(s), its model_config in_channels=1"),
        (
            {"preprocessing": {"color": "rgb"}, "model_config": {"in_channels": 3}},
            "says in_channels=3, the weights take 1",
        ),
    ],
)
def test_a_config_that_does_not_fit_its_weights_fails_at_load_naming_the_file(
    tmp_path, edit, expected, capsys
):
    bundle = tiny_bundle(tmp_path / "m", 0, in_channels=1)
    config = json.loads((bundle / "config.json").read_text())
    for key, value in edit.items():
        config[key].update(value)
    (bundle / "config.json").write_text(json.dumps(config))
    write_images(tmp_path / "in", 1)
    weights = bundle / "model.safetensors"
    assert predict(tmp_path / "in", tmp_path / "out", weights) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(weights) in err and expected in err
    assert not (tmp_path / "out").exists()  # no prediction.json, no empty folder


def test_another_model_on_other_images_is_refused_or_replaced_by_overwrite(
    tmp_path, models, capsys
):
    """A folder never ends up with model A's maps of some images and B's of others."""
    a, b = models
    write_images(tmp_path / "first", 2)
    second = tmp_path / "second"
    second.mkdir()
    write_image(
        second / "other.png", (np.random.default_rng(1).random((36, 40, 3)) * 255).astype(np.uint8)
    )
    out = tmp_path / "out"
    assert predict(tmp_path / "first", out, a) == 0
    capsys.readouterr()
    assert predict(second, out, b) == 2
    err = capsys.readouterr().err
    assert "other images" in err and "img0_*" in err and "img1_*" in err and "--overwrite" in err
    assert not (out / "other_prob.png").exists() and set(makers(out)) == {"img0", "img1"}

    assert predict(second, out, b, "--overwrite") == 0
    said = capsys.readouterr().out
    assert "removed the outputs of 2 other image(s)" in said
    assert makers(out) == {"other": "B"}
    assert sorted(p.name for p in out.glob("img*")) == []
    # the same model on more images joins the folder as before
    assert predict(tmp_path / "first", out, b) == 0
    assert makers(out) == {"other": "B", "img0": "B", "img1": "B"}
