"""octvessel.data.io: reading images and masks in every format, atomic writing, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from octvessel.data import read_image, read_mask, write_image, write_mask
from octvessel.errors import InputError, UsageError

H, W = 24, 20
RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
GRAY8 = RNG.integers(0, 256, (H, W), dtype=np.uint8)
LABEL = np.zeros((H, W), dtype=bool)
LABEL[5:9, 3:17] = True
LABEL[12, :] = True


def pil_save(path: Path, array: np.ndarray, **kw) -> Path:
    Image.fromarray(array).save(path, **kw)
    return path


def palette_image(indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    flat = [c for rgb in colours for c in rgb]
    im.putpalette(flat + [0] * (768 - len(flat)))
    return im


def assert_one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> None:
    text = str(exc.value)
    assert path.name in text, text
    assert "\n" not in text
    assert exc.value.path == path


# ------------------------------------------------------------------------ read_image


@pytest.mark.parametrize("suffix", [".png", ".ppm", ".bmp", ".tif"])
def test_read_image_rgb8_lossless(tmp_path: Path, suffix: str) -> None:
    p = pil_save(tmp_path / f"a{suffix}", RGB8)
    img = read_image(p)
    assert img.dtype == np.float32 and img.shape == (H, W, 3)
    np.testing.assert_allclose(img, RGB8 / 255.0, atol=1e-7)


@pytest.mark.parametrize("suffix", [".png", ".pgm", ".bmp", ".gif", ".tif"])
def test_read_image_gray8_gives_one_channel(tmp_path: Path, suffix: str) -> None:
    p = pil_save(tmp_path / f"g{suffix}", GRAY8)
    img = read_image(p)
    assert img.shape == (H, W, 1)
    np.testing.assert_allclose(img[..., 0], GRAY8 / 255.0, atol=1e-7)


def test_read_image_jpeg_is_close(tmp_path: Path) -> None:
    smooth = np.dstack([np.tile(np.linspace(0, 255, W), (H, 1))] * 3).astype(np.uint8)
    p = pil_save(tmp_path / "a.jpg", smooth, quality=95)
    img = read_image(p)
    assert img.shape == (H, W, 3)
    assert np.abs(img - smooth / 255.0).mean() < 0.02


def test_read_image_16bit_png_and_pgm(tmp_path: Path) -> None:
    a = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    for name in ("a.png", "a.pgm"):
        img = read_image(pil_save(tmp_path / name, a))
        np.testing.assert_allclose(img[..., 0], a / 65535.0, rtol=0, atol=1e-6)


def test_read_image_tiff_uint16_float_and_planar(tmp_path: Path) -> None:
    a16 = RNG.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a16.tif", a16, photometric="rgb")
    np.testing.assert_allclose(read_image(tmp_path / "a16.tif"), a16 / 65535.0, atol=1e-6)

    f = RNG.random((H, W)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", f)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[..., 0], f)

    planar = RNG.random((3, H, W)).astype(np.float32)
    tifffile.imwrite(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif"), planar.transpose(1, 2, 0))


def test_read_image_float_tiff_out_of_range_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "hdr.tif"
    tifffile.imwrite(p, np.full((H, W), 3.5, dtype=np.float32))
    with pytest.raises(InputError, match=r"expected \[0, 1\]") as exc:
        read_image(p)
    assert_one_line_naming(exc, p)


def test_read_image_multipage_tiff_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, np.zeros((4, H, W), dtype=np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="one 2-D image"):
        read_image(p)


def test_read_image_drops_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([RGB8, np.full((H, W), 7, np.uint8)])
    np.testing.assert_allclose(read_image(pil_save(tmp_path / "a.png", rgba)), RGB8 / 255.0)
    la = Image.fromarray(np.dstack([GRAY8, np.full((H, W), 9, np.uint8)]), mode="LA")
    la.save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.shape == (H, W, 1)
    np.testing.assert_allclose(img[..., 0], GRAY8 / 255.0)


def test_read_image_palettes(tmp_path: Path) -> None:
    idx = (np.arange(H * W).reshape(H, W) % 3).astype(np.uint8)
    colours = [(255, 0, 0), (0, 128, 0), (10, 20, 30)]
    palette_image(idx, colours).save(tmp_path / "c.gif")
    img = read_image(tmp_path / "c.gif")
    assert img.shape == (H, W, 3)
    np.testing.assert_allclose(img, np.array(colours)[idx] / 255.0, atol=1e-7)

    grays = [(0, 0, 0), (100, 100, 100), (200, 200, 200)]
    palette_image(idx, grays).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.shape == (H, W, 1)
    np.testing.assert_allclose(img[..., 0], np.array([0, 100, 200])[idx] / 255.0, atol=1e-7)


def test_read_image_gzip(tmp_path: Path) -> None:
    raw = pil_save(tmp_path / "im.ppm", RGB8).read_bytes()
    gz = tmp_path / "im0001.ppm.gz"
    gz.write_bytes(gzip.compress(raw))
    np.testing.assert_allclose(read_image(gz), RGB8 / 255.0)


def _truncated(tmp_path: Path, name: str) -> Path:
    good = tmp_path / f"good_{name}"
    if name.endswith(".tif"):
        tifffile.imwrite(good, RGB8)
    else:
        pil_save(good, RGB8)
    bad = tmp_path / name
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize("name", ["cut.png", "cut.ppm", "cut.bmp", "cut.tif", "cut.jpg"])
def test_truncated_files_raise_input_error(tmp_path: Path, name: str) -> None:
    p = _truncated(tmp_path, name)
    with pytest.raises(InputError) as exc:
        read_image(p)
    assert_one_line_naming(exc, p)


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_unreadable_files_raise_input_error(tmp_path: Path, reader) -> None:
    empty = tmp_path / "empty.png"
    empty.touch()
    junk = tmp_path / "junk.gif"
    junk.write_bytes(b"this is not an image at all" * 10)
    missing = tmp_path / "missing.tif"
    folder = tmp_path / "folder.png"
    folder.mkdir()
    for p, words in [
        (empty, "empty"),
        (junk, "cannot read"),
        (missing, "not found"),
        (folder, "folder"),
    ]:
        with pytest.raises(InputError, match=words) as exc:
            reader(p)
        assert_one_line_naming(exc, p)


# ------------------------------------------------------------------------- read_mask


@pytest.mark.parametrize(
    ("name", "high"),
    [
        ("m01.png", 1),
        ("m255.gif", 255),
        ("m37.png", 37),
        ("m255.ppm", 255),
        ("m255.bmp", 255),
        ("m.tif", 255),
    ],
)
def test_read_mask_two_level_gray(tmp_path: Path, name: str, high: int) -> None:
    p = pil_save(tmp_path / name, LABEL.astype(np.uint8) * np.uint8(high))
    m = read_mask(p)
    assert m.dtype == np.bool_ and m.shape == (H, W)
    np.testing.assert_array_equal(m, LABEL)


def test_read_mask_16bit_float_bool_and_rgb(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "u16.tif", LABEL.astype(np.uint16) * np.uint16(65535))
    tifffile.imwrite(tmp_path / "f.tif", LABEL.astype(np.float32))
    tifffile.imwrite(tmp_path / "b.tif", LABEL)
    pil_save(tmp_path / "rgb.png", np.dstack([LABEL.astype(np.uint8) * 255] * 3))
    red = np.zeros((H, W, 3), np.uint8)
    red[LABEL] = (255, 0, 0)
    pil_save(tmp_path / "red.png", red)
    for name in ("u16.tif", "f.tif", "b.tif", "rgb.png", "red.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), LABEL, err_msg=name)


def test_read_mask_binary_palette_maps_through_the_palette(tmp_path: Path) -> None:
    # DRIVE 2nd_manual: indices {0, 1}, palette 0 -> near-black, 1 -> near-white
    palette_image(LABEL.astype(np.uint8), [(4, 2, 4), (252, 254, 252)]).save(tmp_path / "d.gif")
    np.testing.assert_array_equal(read_mask(tmp_path / "d.gif"), LABEL)
    # inverted palette: index 1 is black, so index-1 pixels are background
    palette_image(LABEL.astype(np.uint8), [(255, 255, 255), (0, 0, 0)]).save(tmp_path / "inv.gif")
    np.testing.assert_array_equal(read_mask(tmp_path / "inv.gif"), ~LABEL)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".png"])
def test_read_mask_palette_and_1bit_in_other_containers(tmp_path: Path, suffix: str) -> None:
    palette_image(LABEL.astype(np.uint8), [(4, 2, 4), (252, 254, 252)]).save(
        tmp_path / f"p{suffix}"
    )
    np.testing.assert_array_equal(read_mask(tmp_path / f"p{suffix}"), LABEL)
    Image.fromarray(LABEL).save(tmp_path / f"bits{suffix}")  # mode "1"
    np.testing.assert_array_equal(read_mask(tmp_path / f"bits{suffix}"), LABEL)


def test_read_image_jpeg_compressed_tiff_falls_back_to_pillow(tmp_path: Path) -> None:
    # tifffile needs the optional imagecodecs package for JPEG-in-TIFF; Pillow reads it
    p = tmp_path / "jpeg.tif"
    Image.fromarray(RGB8).save(p, compression="jpeg")
    img = read_image(p)
    assert img.shape == (H, W, 3)
    assert np.abs(img - RGB8 / 255.0).mean() < 0.1


def test_read_mask_single_level(tmp_path: Path) -> None:
    assert not read_mask(pil_save(tmp_path / "zero.png", np.zeros((H, W), np.uint8))).any()
    assert read_mask(pil_save(tmp_path / "full.png", np.full((H, W), 255, np.uint8))).all()


def test_read_mask_rejects_three_levels_and_names_the_values(tmp_path: Path) -> None:
    a = LABEL.astype(np.uint8) * 255
    a[0, 0] = 128
    p = pil_save(tmp_path / "three.png", a)
    with pytest.raises(InputError, match=r"not binary: found 3 values \(0, 128, 255\)") as exc:
        read_mask(p)
    assert_one_line_naming(exc, p)


def test_read_mask_rejects_two_levels_without_zero(tmp_path: Path) -> None:
    p = pil_save(tmp_path / "onetwo.png", LABEL.astype(np.uint8) + 1)
    with pytest.raises(InputError, match=r"found 2 values \(1, 2\)"):
        read_mask(p)


def test_read_mask_threshold_for_soft_masks(tmp_path: Path) -> None:
    soft = (LABEL * 200 + 20).astype(np.uint8)
    soft[0, 0] = 130
    p = pil_save(tmp_path / "soft.png", soft)
    with pytest.raises(InputError, match="threshold"):
        read_mask(p)
    m = read_mask(p, threshold=0.5)
    expected = LABEL.copy()
    expected[0, 0] = True  # 130 / 255 > 0.5
    np.testing.assert_array_equal(m, expected)
    assert not read_mask(p, threshold=0.9).any()
    with pytest.raises(UsageError, match="threshold"):
        read_mask(p, threshold=2.0)


def test_read_mask_from_jpeg_needs_threshold(tmp_path: Path) -> None:
    big = np.kron(LABEL, np.ones((4, 4), bool)).astype(np.uint8) * 255
    p = pil_save(tmp_path / "label.jpg", big, quality=75)
    with pytest.raises(InputError, match="not binary"):
        read_mask(p)
    m = read_mask(p, threshold=0.5)
    assert (m == big.astype(bool)).mean() > 0.98


# ----------------------------------------------------------------------------- write


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".ppm"])
def test_write_image_uint8_round_trip_exact(tmp_path: Path, suffix: str) -> None:
    p = write_image(tmp_path / "sub" / f"out{suffix}", RGB8)
    np.testing.assert_allclose(read_image(p), RGB8 / 255.0)
    assert _no_temp_files(p.parent)


def test_write_image_float_to_png_8_and_16_bit(tmp_path: Path) -> None:
    f = RNG.random((H, W)).astype(np.float32)
    p8 = write_image(tmp_path / "f8.png", f)
    assert Image.open(p8).mode == "L"
    np.testing.assert_allclose(read_image(p8)[..., 0], f, atol=0.5 / 255 + 1e-6)
    p16 = write_image(tmp_path / "f16.png", f, bits=16)
    assert Image.open(p16).mode.startswith("I")
    np.testing.assert_allclose(read_image(p16)[..., 0], f, atol=0.5 / 65535 + 1e-6)


def test_write_image_float_tiff_is_float32_exact(tmp_path: Path) -> None:
    f = RNG.random((H, W, 3)).astype(np.float32)
    p = write_image(tmp_path / "f.tif", f)
    assert tifffile.imread(p).dtype == np.float32
    np.testing.assert_array_equal(read_image(p), f)
    p16 = write_image(tmp_path / "u16.tiff", f, bits=16)
    assert tifffile.imread(p16).dtype == np.uint16


def test_write_image_jpeg_is_close(tmp_path: Path) -> None:
    smooth = np.dstack([np.tile(np.linspace(0, 1, W), (H, 1))] * 3).astype(np.float32)
    p = write_image(tmp_path / "a.jpg", smooth)
    assert np.abs(read_image(p) - smooth).mean() < 0.02


def test_write_image_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        write_image(tmp_path / "a.png", np.full((H, W), 1.5, np.float32))
    with pytest.raises(UsageError, match="expected one of"):
        write_image(tmp_path / "a.xyz", RGB8)
    with pytest.raises(UsageError, match="16-bit"):
        write_image(tmp_path / "a.png", RGB8, bits=16)
    with pytest.raises(UsageError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(UsageError, match="bits"):
        write_image(tmp_path / "a.png", RGB8, bits=12)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_when_the_writer_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write_image(tmp_path / "keep.png", RGB8)
    before = p.read_bytes()

    def broken(tmp: Path, out: np.ndarray, suffix: str) -> None:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk on fire")

    from octvessel.data import image_write

    monkeypatch.setattr(image_write, "_write_array", broken)
    with pytest.raises(RuntimeError):
        write_image(p, GRAY8)
    assert p.read_bytes() == before
    assert _no_temp_files(tmp_path)


def test_write_image_overwrites_unless_told_not_to(tmp_path: Path) -> None:
    p = write_image(tmp_path / "x.png", RGB8)
    write_image(p, GRAY8)
    assert read_image(p).shape == (H, W, 1)
    with pytest.raises(InputError, match="exists already") as exc:
        write_image(p, RGB8, overwrite=False)
    assert exc.value.path == p
    with pytest.raises(InputError, match="exists already"):
        write_mask(p, LABEL, overwrite=False)
    assert read_image(p).shape == (H, W, 1)
    write_mask(tmp_path / "new.png", LABEL, overwrite=False)


@pytest.mark.parametrize("suffix", [".png", ".gif", ".tif", ".bmp", ".pgm"])
def test_write_mask_round_trip(tmp_path: Path, suffix: str) -> None:
    p = write_mask(tmp_path / f"m{suffix}", LABEL)
    np.testing.assert_array_equal(read_mask(p), LABEL)
    assert _no_temp_files(tmp_path)


def test_write_mask_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="lossy|expected one of"):
        write_mask(tmp_path / "m.jpg", LABEL)
    with pytest.raises(UsageError, match="0 and 1"):
        write_mask(tmp_path / "m.png", LABEL.astype(np.uint8) * 255)
    np.testing.assert_array_equal(
        read_mask(write_mask(tmp_path / "i.png", LABEL.astype(np.int64))), LABEL
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    arr=arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3]))),
    suffix=st.sampled_from([".png", ".tif", ".bmp"]),
)
def test_write_read_round_trip_property(tmp_path: Path, arr: np.ndarray, suffix: str) -> None:
    p = write_image(tmp_path / f"h{suffix}", arr)
    np.testing.assert_allclose(read_image(p), arr / 255.0, atol=1e-7)
