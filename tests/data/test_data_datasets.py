"""octvessel.data.datasets: every layout on tiny synthetic folders, errors, real DRIVE/STARE."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from octvessel.data import FORMATS, SampleRef, detect_format, index_dataset, load_dataset
from octvessel.errors import InputError, UsageError

H, W = 24, 20


def img_rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 256, (h, w, 3), dtype=np.uint8)


def label_of(seed: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[seed % h, :] = True
    m[:, (3 * seed) % w] = True
    return m


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array, photometric="rgb" if array.ndim == 3 else "minisblack")
    else:
        Image.fromarray(array).save(
            path, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {})
        )
    return path


def save_palette_label(path: Path, mask: np.ndarray) -> Path:
    """DRIVE 2nd_manual style: palette GIF, indices {0, 1}, 0 -> near-black, 1 -> near-white."""
    im = Image.fromarray(mask.astype(np.uint8), mode="P")
    im.putpalette([4, 2, 4, 252, 254, 252] + [0] * 762)
    im.save(path)
    return path


def make_drive(root: Path) -> Path:
    for split, numbers in (("training", (21, 22)), ("test", (1, 2))):
        d = root / split
        for n in numbers:
            save(d / "images" / f"{n:02d}_{split}.tif", img_rgb(n))
            save(d / "1st_manual" / f"{n:02d}_manual1.gif", label_of(n))
            fov = np.ones((H, W), bool)
            fov[0, 0] = False
            save(d / "mask" / f"{n:02d}_{split}_mask.gif", fov)
            if split == "test":
                (d / "2nd_manual").mkdir(exist_ok=True)
                save_palette_label(d / "2nd_manual" / f"{n:02d}_manual2.gif", label_of(n + 50))
    return root


def make_stare(root: Path, make_fundus) -> Path:
    for i, n in enumerate(("im0001", "im0002", "im0010", "im0003")):
        image = make_fundus(H, W + 8, radius=0.55, seed=i)[0]
        if n == "im0010":  # compressed, as some STARE downloads ship it
            save(root / "tmp.ppm", image)
            (root / "stare-images").mkdir(exist_ok=True)
            (root / "stare-images" / f"{n}.ppm.gz").write_bytes(
                gzip.compress((root / "tmp.ppm").read_bytes())
            )
            (root / "tmp.ppm").unlink()
        else:
            save(root / "stare-images" / f"{n}.ppm", image)
        if n != "im0003":  # unlabelled, like most of the full STARE set
            save(root / "labels-ah" / f"{n}.ah.ppm", label_of(i, H, W + 8))
            save(root / "labels-vk" / f"{n}.vk.ppm", label_of(i + 7, H, W + 8))
    return root


def make_generic(root: Path) -> Path:
    save(root / "images" / "a.png", img_rgb(1))
    save(root / "images" / "b10.png", img_rgb(2))
    save(root / "images" / "b2.png", img_rgb(3))
    save(root / "labels" / "a_label.png", label_of(1))
    save(root / "labels" / "b10.png", label_of(2))
    save(root / "labels" / "b2_manual1.png", label_of(3))
    fov = np.zeros((H, W), bool)
    fov[2:-2, 2:-2] = True
    save(root / "masks" / "a_mask.png", fov)
    return root


# --------------------------------------------------------------------------- layouts


def test_drive_layout(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    assert detect_format(root) == "drive"
    samples = load_dataset(root)
    assert [s.name for s in samples] == ["01", "02", "21", "22"]
    assert [s.split for s in samples] == ["test", "test", "training", "training"]
    s = samples[2]
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.float32
    np.testing.assert_allclose(s.image, img_rgb(21) / 255.0)
    np.testing.assert_array_equal(s.label, label_of(21))
    assert s.fov_source == "file" and not s.fov[0, 0] and s.fov.sum() == H * W - 1
    assert s.fov_path.name == "21_training_mask.gif" and s.label_path.name == "21_manual1.gif"
    assert s.meta["format"] == "drive"

    assert [s.name for s in load_dataset(root, split="train")] == ["21", "22"]
    assert [s.name for s in load_dataset(root, split="training")] == ["21", "22"]
    test2 = load_dataset(root, split="test", observer=2)
    assert [s.name for s in test2] == ["01", "02"]
    np.testing.assert_array_equal(test2[0].label, label_of(51))  # the palette GIF, not observer 1
    # observer 2 exists for the test split only
    assert load_dataset(root, split="training", observer=2)[0].label is None
    with pytest.raises(InputError, match=r"no label; expected .*21_manual2\.gif"):
        load_dataset(root, observer=2, require_labels=True)


def test_drive_single_split_folder(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    samples = load_dataset(root / "test", format="drive")
    assert [(s.name, s.split) for s in samples] == [("01", "test"), ("02", "test")]
    assert detect_format(root / "test") == "drive"


def test_chase_layout(tmp_path: Path, make_fundus) -> None:
    root = tmp_path / "CHASE"
    for i, n in enumerate(("Image_01L", "Image_01R", "Image_11L")):
        image, _ = make_fundus(40, 44, seed=i)
        save(root / f"{n}.jpg", image)
        save(root / f"{n}_1stHO.png", label_of(i, 40, 44))
        save(root / f"{n}_2ndHO.png", label_of(i + 5, 40, 44))
    assert detect_format(root) == "chase"
    s1 = load_dataset(root)
    assert [s.name for s in s1] == ["Image_01L", "Image_01R", "Image_11L"]
    assert all(s.fov_source == "derived" and 0.3 < s.fov.mean() < 0.9 for s in s1)
    np.testing.assert_array_equal(s1[2].label, label_of(2, 40, 44))
    s2 = load_dataset(root, observer=2)
    np.testing.assert_array_equal(s2[2].label, label_of(7, 40, 44))
    with pytest.raises(UsageError, match="no splits"):
        load_dataset(root, split="test")


def test_chase_split_from_dataset_json(tmp_path: Path, make_fundus) -> None:
    root = tmp_path / "CHASE"
    for i, n in enumerate(("Image_01L", "Image_01R", "Image_02L")):
        save(root / f"{n}.jpg", make_fundus(30, 30, seed=i)[0])
        save(root / f"{n}_1stHO.png", label_of(i, 30, 30))
    (root / "dataset.json").write_text(
        json.dumps({"splits": {"train": ["Image_01L", "Image_01R"], "test": ["Image_02L"]}})
    )
    assert [s.name for s in load_dataset(root, split="test")] == ["Image_02L"]
    assert [s.name for s in load_dataset(root, split="training")] == ["Image_01L", "Image_01R"]
    assert len(load_dataset(root)) == 3


def test_stare_layout(tmp_path: Path, make_fundus) -> None:
    root = make_stare(tmp_path / "STARE", make_fundus)
    assert detect_format(root) == "stare"
    everything = load_dataset(root)
    assert [s.name for s in everything] == ["im0001", "im0002", "im0003", "im0010"]
    assert everything[2].label is None
    labelled = load_dataset(root, require_labels=True)  # unlabelled images are skipped
    assert [s.name for s in labelled] == ["im0001", "im0002", "im0010"]
    np.testing.assert_array_equal(labelled[1].label, label_of(1, H, W + 8))
    assert all(s.fov_source == "derived" for s in labelled)
    vk = load_dataset(root, observer=2, require_labels=True)
    np.testing.assert_array_equal(vk[1].label, label_of(8, H, W + 8))
    assert vk[2].path.name == "im0010.ppm.gz" and vk[2].image.shape == (H, W + 8, 3)


def test_hrf_layout(tmp_path: Path, make_fundus) -> None:
    root = tmp_path / "HRF"
    for i, n in enumerate(("01_dr", "01_g", "02_h")):
        suffix = ".JPG" if n == "01_g" else ".jpg"
        save(root / "images" / f"{n}{suffix}", make_fundus(30, 36, seed=i)[0])
        save(root / "manual1" / f"{n}.tif", label_of(i, 30, 36))
        mask = np.ones((30, 36), bool)
        mask[:3] = False
        save(root / "mask" / f"{n}_mask.tif", np.dstack([mask.astype(np.uint8) * 255] * 3))
    assert detect_format(root) == "hrf"
    samples = load_dataset(root, require_labels=True)
    assert [s.name for s in samples] == ["01_dr", "01_g", "02_h"]
    np.testing.assert_array_equal(samples[1].label, label_of(1, 30, 36))
    assert samples[0].fov_source == "file" and samples[0].fov.sum() == 27 * 36
    with pytest.raises(UsageError, match="one observer"):
        load_dataset(root, observer=2)


def _oct_image(seed: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(90, 200, (h, w), dtype=np.uint8)


def test_cavri_flat_layout(tmp_path: Path) -> None:
    root = tmp_path / "CAVRI"
    for i, prefix in enumerate(("s1", "s10", "s2")):
        h, w = (141, 385) if prefix == "s2" else (H, W)
        for v in (1, 2, 3):
            save(root / "images" / f"{prefix}_fundus_P{v}.bmp", _oct_image(10 * i + v, h, w))
        save(root / "manual" / f"{prefix}_fundus_ref.bmp", label_of(i, h, w))
    mask = np.ones((H, W), bool)
    mask[-4:] = False
    save(root / "mask" / "s1_mask.bmp", mask)  # must not be taken for s10
    assert detect_format(root) == "cavri"
    p1 = load_dataset(root, require_labels=True)
    assert [s.name for s in p1] == ["s1", "s2", "s10"]
    s1, s2, s10 = p1
    assert s1.fov_source == "file" and s1.fov.sum() == (H - 4) * W
    assert s10.fov_source == "full" and s10.fov.all()  # OCT en-face: no dark surround
    np.testing.assert_allclose(s1.image[..., 0], _oct_image(1) / 255.0)
    assert s1.image.shape == (H, W, 1)
    assert s2.spacing == pytest.approx((7.0 / 141, 7.0 / 385)) and s1.spacing is None
    p3 = load_dataset(root, variant="p3")
    np.testing.assert_allclose(p3[0].image[..., 0], _oct_image(3) / 255.0)
    np.testing.assert_array_equal(p3[0].label, p1[0].label)  # one label for all variants
    assert p3[0].meta["variant"] == "P3"


def test_cavri_split_layouts(tmp_path: Path) -> None:
    root = tmp_path / "CAVRI"
    # training/ holds images/ manual/ mask/; test/ holds the files directly
    save(root / "training" / "images" / "a_fundus_P1.bmp", _oct_image(1))
    save(root / "training" / "manual" / "a_fundus_ref.bmp", label_of(1))
    save(root / "training" / "mask" / "a_fundus_P1_mask.bmp", np.ones((H, W), bool))
    save(root / "training" / "mask" / "a_fundus_P2_mask.bmp", np.zeros((H, W), bool))
    save(root / "test" / "b_fundus_P1.bmp", _oct_image(2))
    save(root / "test" / "b_fundus_ref.bmp", label_of(2))
    assert detect_format(root) == "cavri"
    samples = load_dataset(root)
    assert [(s.name, s.split) for s in samples] == [("a", "training"), ("b", "test")]
    assert samples[0].fov.all() and samples[0].fov_path.name == "a_fundus_P1_mask.bmp"
    assert [s.name for s in load_dataset(root, split="test", require_labels=True)] == ["b"]
    with pytest.raises(UsageError, match="variants present: P1"):
        load_dataset(root, variant="P3")


def test_generic_layout(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    assert detect_format(root) == "generic"
    samples = load_dataset(root, require_labels=True)
    assert [s.name for s in samples] == ["a", "b2", "b10"]  # natural order
    np.testing.assert_array_equal(samples[1].label, label_of(3))
    assert samples[0].fov_source == "file" and samples[0].fov.sum() == (H - 4) * (W - 4)
    assert samples[1].fov_path is None
    assert samples[0].spacing is None and samples[0].split is None


def test_generic_dataset_json(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    config = {
        "splits": {"training": ["a", "b2"], "test": ["b10"]},
        "channels": 1,
        "spacing": [0.05, 0.02],
    }
    (root / "dataset.json").write_text(json.dumps(config))
    test = load_dataset(root, split="test")
    assert [s.name for s in test] == ["b10"]
    assert test[0].image.shape == (H, W, 1) and test[0].spacing == (0.05, 0.02)
    expected = (img_rgb(2) / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(test[0].image[..., 0], expected, atol=1e-5)
    assert [s.name for s in load_dataset(root, split="train")] == ["a", "b2"]
    with pytest.raises(UsageError, match="expected one of: test, training"):
        load_dataset(root, split="validation")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "JSON object"),
        ('{"splits": {"test": ["zzz"]}}', "not in the dataset: zzz"),
        ('{"splits": {"test": ["a"], "training": ["a"]}}', "more than once: a"),
        ('{"channels": 2}', "expected 1 or 3"),
        ('{"spacing": [0.1]}', "row_mm, col_mm"),
        ('{"format": "nifti"}', "expected one of: drive"),
    ],
)
def test_bad_dataset_json(tmp_path: Path, content: str, words: str) -> None:
    root = make_generic(tmp_path / "mine")
    (root / "dataset.json").write_text(content)
    with pytest.raises(InputError, match=words) as exc:
        index_dataset(root)
    assert exc.value.path == root / "dataset.json"


def test_generic_split_folders_and_name_clash(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for split, names in (("train", ("x1", "x2")), ("test", ("x1",))):
        for n in names:
            save(root / split / "images" / f"{n}.png", img_rgb(len(n)))
            save(root / split / "manual" / f"{n}_gt.png", label_of(3))
            save(root / split / "mask" / f"{n}_fov.png", np.ones((H, W), bool))
    assert detect_format(root) == "generic"
    assert [s.name for s in load_dataset(root, split="training")] == ["x1", "x2"]
    assert [s.name for s in load_dataset(root, split="test", require_labels=True)] == ["x1"]
    both = load_dataset(root)
    assert sorted(s.name for s in both) == ["test_x1", "training_x1", "x2"]
    assert all(s.fov_source == "file" for s in both)


def test_index_is_lazy_and_load_gives_the_sample(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    (root / "images" / "b2.png").write_bytes(b"")  # broken, but indexing reads no pixels
    refs = index_dataset(root)
    assert all(isinstance(r, SampleRef) for r in refs)
    assert [r.name for r in refs] == ["a", "b2", "b10"]
    assert refs[0].label_path.name == "a_label.png" and refs[0].mask_path.name == "a_mask.png"
    assert refs[0].load().name == "a"
    with pytest.raises(InputError, match="empty") as exc:
        refs[1].load()
    assert exc.value.path == root / "images" / "b2.png"


def test_auto_format_equals_forced_format(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    assert index_dataset(root) == index_dataset(root, format="drive")
    assert "drive" in FORMATS and "generic" in FORMATS


# ---------------------------------------------------------------------------- errors


def test_unknown_layout_names_the_folder_and_lists_layouts(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    save(root / "pictures" / "x.png", img_rgb(1))
    (root / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="unknown dataset layout") as exc:
        load_dataset(root)
    text = str(exc.value)
    assert str(root) in text and "\n" not in text
    assert all(f"{f}:" in text for f in FORMATS)


def test_missing_empty_and_file_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_dataset(tmp_path / "empty")
    f = save(tmp_path / "one.png", img_rgb(1))
    with pytest.raises(InputError, match="found a file"):
        load_dataset(f)
    (tmp_path / "g" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="no generic images found"):
        load_dataset(tmp_path / "g")


def test_forced_format_that_does_not_match(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    with pytest.raises(InputError, match=r"no stare images found; expected stare-images/"):
        load_dataset(root, format="stare")


def test_label_size_mismatch_names_both_files_and_sizes(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    save(root / "labels" / "b10.png", label_of(2, H, W - 2))
    with pytest.raises(InputError) as exc:
        load_dataset(root)
    text = str(exc.value)
    assert "b10.png" in text and str(root / "images" / "b10.png") in text
    assert "18x24" in text and "20x24" in text and "\n" not in text
    assert exc.value.path == root / "labels" / "b10.png"


def test_fov_mask_size_mismatch(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    save(root / "masks" / "a_mask.png", np.ones((H + 1, W), bool))
    with pytest.raises(InputError, match=r"FOV mask is 20x25 \(WxH\) but image"):
        load_dataset(root)


def test_missing_label_when_required(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    (root / "labels" / "b2_manual1.png").unlink()
    assert load_dataset(root)[1].label is None
    with pytest.raises(InputError, match="has no label; expected") as exc:
        load_dataset(root, require_labels=True)
    assert exc.value.path == root / "images" / "b2.png"


def test_non_binary_label(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    save(root / "labels" / "a_label.png", np.arange(H * W, dtype=np.uint8).reshape(H, W))
    with pytest.raises(InputError, match="label is not binary") as exc:
        load_dataset(root)
    assert exc.value.path == root / "labels" / "a_label.png"


def test_unreadable_image(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    (root / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="cannot read image") as exc:
        load_dataset(root)
    assert exc.value.path == root / "images" / "a.png"


def test_two_files_for_one_image(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "mine")
    save(root / "images" / "a.tif", img_rgb(9))
    with pytest.raises(InputError, match="two images are both named 'a': a.png and a.tif"):
        index_dataset(root)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"format": "drvie"}, "format='drvie' is not valid; expected one of: auto, drive, chase"),
        ({"observer": 3}, "observer=3 is not valid"),
        ({"variant": "P4"}, "variant='P4' is not valid; expected one of: P1, P2, P3"),
        ({"split": "test"}, "no splits"),
        ({"observer": 2}, "one observer"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict, words: str) -> None:
    root = make_generic(tmp_path / "mine")
    with pytest.raises(UsageError, match=words):
        load_dataset(root, **kwargs)


def test_unknown_split_lists_the_valid_ones(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    with pytest.raises(
        UsageError, match="split='val' is not valid .* expected one of: test, training"
    ):
        load_dataset(root, split="val")


# ------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_drive(drive_samples) -> None:
    assert [s.name for s in drive_samples] == [f"{i:02d}" for i in range(1, 41)]
    assert {s.split for s in drive_samples[:20]} == {"test"}
    assert {s.split for s in drive_samples[20:]} == {"training"}
    for s in drive_samples:
        assert s.image.shape == (584, 565, 3) and s.image.dtype == np.float32
        assert s.label.shape == s.fov.shape == (584, 565)
        assert s.fov_source == "file" and s.fov_path.name.endswith("_mask.gif")
        assert 0.67 <= s.fov.mean() <= 0.70  # official masks: 0.680-0.692
        in_image = s.label.mean()  # measured 0.060-0.116
        in_fov = s.label[s.fov].mean()  # measured 0.087-0.168
        assert 0.05 <= in_image <= 0.13, f"{s.name}: {in_image:.3f}"
        assert 0.08 <= in_fov <= 0.18, f"{s.name}: {in_fov:.3f}"
        assert not (s.label & ~s.fov).sum() > 0.005 * s.label.sum()


@pytest.mark.realdata
def test_real_drive_second_observer(drive_dir, drive_samples) -> None:
    second = load_dataset(drive_dir, split="test", observer=2, require_labels=True)
    assert [s.name for s in second] == [f"{i:02d}" for i in range(1, 21)]
    first = {s.name: s.label for s in drive_samples}
    for s in second:
        a, b = first[s.name], s.label
        assert 0.05 <= b.mean() <= 0.13
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert 0.70 <= dice <= 0.95, f"{s.name}: observers agree with Dice {dice:.3f}"
    with pytest.raises(InputError, match="no label"):
        index_dataset(drive_dir, split="training", observer=2, require_labels=True)


@pytest.mark.realdata
def test_real_stare_both_observers(stare_dir, stare_samples) -> None:
    assert detect_format(stare_dir) == "stare"
    second = load_dataset(stare_dir, observer=2, require_labels=True)
    assert [s.name for s in stare_samples] == [s.name for s in second]
    assert len(stare_samples) == 20 and stare_samples[0].name == "im0001"
    for a, b in zip(stare_samples, second, strict=True):
        assert a.image.shape == (605, 700, 3) and a.label.shape == (605, 700)
        assert a.fov_source == "derived" and a.spacing is None and a.split is None
        assert 0.03 <= a.label.mean() <= 0.12 and 0.03 <= b.label.mean() <= 0.16
        assert not np.array_equal(a.label, b.label)
