"""octvessel.oct.volume: the Volume container, plain-format readers, errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from octvessel.data.io import write_image
from octvessel.errors import InputError, UsageError
from octvessel.oct import Volume, find_volumes, read_volume, write_volume
from octvessel.oct.readers import raw_shapes_that_fit
from octvessel.oct.volume import AVANTI


def _pattern(nb: int = 3, nd: int = 40, na: int = 12) -> np.ndarray:
    """A volume whose every voxel says where it is: b * 0.1 + z * 0.001 + a * 1e-5."""
    b, z, a = np.meshgrid(np.arange(nb), np.arange(nd), np.arange(na), indexing="ij")
    return (b * 0.1 + z * 0.001 + a * 1e-5).astype(np.float32)


def _boundaries(nb: int, na: int) -> dict[str, np.ndarray]:
    return {
        "ILM": np.full((nb, na), 5.5, np.float32),
        "RPE": np.full((nb, na), 20.5, np.float32),
        "BM": np.full((nb, na), 24.5, np.float32),
    }


# ------------------------------------------------------------------------- container


def test_volume_validates_and_converts():
    v = Volume(np.zeros((2, 40, 8), np.uint8), (0.05, 0.0031, 0.0182), "R")
    assert v.data.dtype == np.float32 and v.shape == (2, 40, 8)
    assert v.laterality == "OD"
    assert v.extent_mm == pytest.approx((0.1, 0.124, 0.1456))
    with pytest.raises(InputError, match="3-D volume"):
        Volume(np.zeros((40, 8)), (1, 1, 1))
    with pytest.raises(InputError, match="spacing"):
        Volume(np.zeros((2, 40, 8)), (0.05, 0, 0.01))
    with pytest.raises(InputError, match="laterality"):
        Volume(np.zeros((2, 40, 8)), (1, 1, 1), laterality="up")


def test_nan_is_refused_with_its_position():
    data = np.zeros((2, 40, 8), np.float32)
    data[1, 7, 3] = np.nan
    with pytest.raises(
        InputError, match=r"1 NaN or infinite values \(first at B-scan 1, depth 7, A-scan 3\)"
    ):
        Volume(data, (1, 1, 1))


def test_boundaries_shape_range_and_order_are_checked():
    data = np.zeros((2, 40, 8), np.float32)
    good = _boundaries(2, 8)
    Volume(data, (1, 1, 1), boundaries=good)
    with pytest.raises(InputError, match=r"shape \(2, 7\)"):
        Volume(data, (1, 1, 1), boundaries={"ILM": np.zeros((2, 7))})
    with pytest.raises(InputError, match="leaves the volume"):
        Volume(data, (1, 1, 1), boundaries={"ILM": np.full((2, 8), 41.0)})
    crossed = dict(good, RPE=good["RPE"].copy())
    crossed["RPE"][1, 2] = 3.0  # above the ILM
    with pytest.raises(
        InputError, match=r"ILM and RPE cross in 1 A-scans \(first at B-scan 1, A-scan 2"
    ):
        Volume(data, (1, 1, 1), boundaries=crossed)
    nan_ok = dict(good, BM=np.full((2, 8), np.nan, np.float32))  # unknown is allowed
    assert np.isnan(Volume(data, (1, 1, 1), boundaries=nan_ok).boundaries["BM"]).all()


# -------------------------------------------------------------------- plain readers


def test_npy_round_trip_and_assumed_spacing(tmp_path):
    data = _pattern()
    np.save(tmp_path / "v.npy", data)
    v = read_volume(tmp_path / "v.npy")
    np.testing.assert_array_equal(v.data, data)
    assert v.meta["spacing_source"] == "assumed"
    assert v.spacing == pytest.approx((7.0 / 3, 0.0031, 7.0 / 12))
    v2 = read_volume(tmp_path / "v.npy", spacing=(0.05, 0.004, 0.02), laterality="OS")
    assert v2.spacing == (0.05, 0.004, 0.02) and v2.laterality == "OS"
    assert v2.meta["spacing_source"] == "user"
    np.save(tmp_path / "one.npy", data[0])  # one B-scan
    assert read_volume(tmp_path / "one.npy").shape == (1, 40, 12)


def test_npz_round_trip_keeps_everything(tmp_path):
    vol = Volume(_pattern(), (0.05, 0.0031, 0.0182), "OS", _boundaries(3, 12))
    write_volume(tmp_path / "v.npz", vol, extra={"vessels": np.ones((3, 12), bool)})
    back = read_volume(tmp_path / "v.npz")
    np.testing.assert_array_equal(back.data, vol.data)
    assert back.spacing == vol.spacing and back.laterality == "OS"
    assert set(back.boundaries) == {"ILM", "RPE", "BM"}
    np.testing.assert_array_equal(back.boundaries["RPE"], vol.boundaries["RPE"])
    assert "vessels" in back.meta["extra_keys"]
    with pytest.raises(InputError, match="exists already"):
        write_volume(tmp_path / "v.npz", vol)
    # uint8 storage: values quantised to 1/255
    u8 = Volume(np.linspace(0, 1, 3 * 40 * 12).reshape(3, 40, 12), (1, 1, 1))
    write_volume(tmp_path / "u8.npz", u8, dtype="uint8")
    back8 = read_volume(tmp_path / "u8.npz")
    assert np.abs(back8.data - u8.data).max() <= 0.5 / 255 + 1e-6


def test_npz_without_a_clear_volume_key(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros((2, 40, 8)), b=np.zeros((2, 40, 8)))
    with pytest.raises(InputError, match="cannot tell which array is the volume"):
        read_volume(tmp_path / "x.npz")


def test_multipage_tiff_and_bscan_folder(tmp_path):
    data = (_pattern() * 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack")
    v = read_volume(tmp_path / "stack.tif")
    np.testing.assert_allclose(v.data, data / 65535.0, rtol=1e-6)
    folder = tmp_path / "bscans"
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        write_image(folder / f"scan_{i}.png", np.full((40, 12), i * 20, np.uint8))
    f = read_volume(folder)
    assert f.shape == (3, 40, 12) and f.meta["format"] == "bscans"
    np.testing.assert_allclose(f.data[:, 0, 0], np.array([20, 40, 200]) / 255.0, rtol=1e-6)
    write_image(folder / "scan_11.png", np.zeros((39, 12), np.uint8))
    with pytest.raises(InputError, match="all B-scans must have the same size"):
        read_volume(folder)


# ------------------------------------------------------------------------ Avanti raw


def _write_raw(path, data: np.ndarray) -> None:
    """Store a (B, D, A) volume the way the Avanti raw export does: B x A x D float32."""
    np.ascontiguousarray(data.transpose(0, 2, 1)).astype("<f4").tofile(path)


def test_avanti_raw_round_trip_and_layout(tmp_path):
    data = _pattern(3, 40, 12)
    _write_raw(tmp_path / "scan.OCT", data)
    with pytest.warns(UserWarning, match="3 B-scans; the Avanti 3D Retina scan has 141"):
        v = read_volume(tmp_path / "scan.OCT", ascans=12, depth=40)
    np.testing.assert_array_equal(v.data, data)  # (B, depth, A) order restored
    assert v.meta["format"] == "avanti" and v.meta["warnings"]
    assert v.spacing == pytest.approx((7 / 3, 0.0031, 7 / 12))


def test_avanti_raw_default_layout(tmp_path):
    nb = 2
    raw = np.zeros((nb, AVANTI["ascans"], AVANTI["depth"]), "<f4")
    raw[1, 7, 100] = 1.0  # B-scan 1, A-scan 7, depth 100
    raw.tofile(tmp_path / "a.oct")
    with pytest.warns(UserWarning):
        v = read_volume(tmp_path / "a.oct")
    assert v.shape == (2, 640, 385) and v.data[1, 100, 7] == 1.0 and v.data.sum() == 1.0


def test_avanti_raw_size_that_fits_nothing_lists_shapes(tmp_path):
    (np.zeros(2 * 512 * 496, "<f4")).tofile(tmp_path / "b.oct")
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path / "b.oct")
    msg = str(exc.value)
    assert "do not fit B-scans of 385 A-scans x 640 depth" in msg and "2x512x496" in msg
    assert "\n" not in msg
    (tmp_path / "c.oct").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="not a multiple of 4"):
        read_volume(tmp_path / "c.oct")
    with pytest.raises(InputError, match=r"\(3 x 512 x 496\)"):
        read_volume(tmp_path / "b.oct", ascans=512, depth=496, bscans=3)
    assert (2, 512, 496) in raw_shapes_that_fit(2 * 512 * 496)


def test_reader_options_are_validated(tmp_path):
    np.save(tmp_path / "v.npy", _pattern())
    with pytest.raises(UsageError, match="raw Avanti"):
        read_volume(tmp_path / "v.npy", ascans=12)
    with pytest.raises(UsageError, match="expected one of: auto, npy"):
        read_volume(tmp_path / "v.npy", format="dicom")
    (tmp_path / "v.xyz").write_bytes(b"1234")
    with pytest.raises(InputError, match="unknown volume file type '.xyz'"):
        read_volume(tmp_path / "v.xyz")
    with pytest.raises(InputError, match="not found"):
        read_volume(tmp_path / "missing.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="cannot read .npy"):
        read_volume(tmp_path / "bad.npy")


def test_find_volumes(tmp_path):
    np.save(tmp_path / "b10.npy", _pattern())
    np.save(tmp_path / "b2.npy", _pattern())
    tifffile.imwrite(tmp_path / "stack.tif", _pattern(), photometric="minisblack")
    write_image(tmp_path / "picture.png", np.zeros((4, 4), np.uint8))
    assert [p.name for p in find_volumes(tmp_path)] == ["b2.npy", "b10.npy", "stack.tif"]
    scans = tmp_path / "scans"
    write_image(scans / "1.png", np.zeros((40, 8), np.uint8))
    assert find_volumes(scans) == [scans]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no OCT volumes here"):
        find_volumes(tmp_path / "empty")
