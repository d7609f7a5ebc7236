"""Preprocessing: the OpenCV CLAHE port, gamma, min-max and standardisation, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octvessel.errors import UsageError
from octvessel.models import create_model, load_model
from octvessel.preprocessing import Preprocessing, clahe, gamma_lut, minmax, standardize, to_uint8

# cv2.createCLAHE(clipLimit, tileGridSize=(tiles across, tiles down)).apply(pattern(h, w)),
# identical with opencv-python-headless 4.10.0 and 5.0.0
OPENCV_20x28_CLIP2_8x8 = (
    "15556a604a40404540456a60554540403535406595b4d4dad4daeaff2a95ff95f47aff75d470bff4"
    "94ef80f475ef80fa40ff95109515aa2a35ead8c2b6ad9c887a6dfce5d6c9b5aeafafa699474a4b45"
    "4a4f4a353580bf5285df3592cf5a94d76aad1582df38ca2065ef35b22080bf5d31e3bc8559ffca95"
    "6e45ffcbb39d793a23f3d4b683603910f3bf985c356aaadcef4979baf13f79bd1375dfff579aea48"
    "89e12669b3ff2e7d2adf9548cf782adc8a3df4bc8530ffcf9050ffc48045ffc47a28dfba2e559299"
    "acbfcaf5234a80aad8205294afde275d77a2ea143c6695d535ca7cd578ef8020c252fca155e5a342"
    "d67f40d87527d84f09a94ef92a4a6a604a3d403a4a506aa5b4ccdfff1a38556280aab4cccfd7f4ff"
    "2e9cff95f37dfc65f353ffa80ca52ac34ce17cf783ffa611a516aa2b35ead8c6bdb5a397938d8073"
    "7068606a7d919c8a77694b43474d4a362a80bf5295df55c425b2ff63e442d440af30aaff75d735c5"
    "1a85ea6531dfbc886440eddecdb59869383223fbdfcf9f87694a391dd6c187763566aae03e7aa0ff"
    "59c61165ba1187ba1361ae2260b82663a8f32aa52ad49555eab28042f4cf8a451ada95704008d485"
    "5a2ddfb27028eab72e5592afd8fa2a67a6d615496fafff305a95ea285392d0ef2c6c98c23cd484f5"
    "b451ea9923e8953ce19039ed7a52ffaf4c16a665e2943ce140557580909aaac2d4ef2035505a75af"
    "d4f42a3f4a75959fa4b7cae252cd79d665da66f290ffa630ba38f17a1c904ead48bd80d970d060ed"
)
OPENCV_32x32_CLIP40_4x4 = (
    "04101c2c303433363636393a3c4e5b667277808a9baec2d2d9e2ecf6ff081c2c085ccb60cf5cbc50"
    "a4428eea7cee85fa95fa97fc6cff720278077e0d87108fe30cc3bbaf9b8d7d6b5a4cede3d3ccc5c1"
    "b7aca79e6856504d4c473e322418dfd714509f3480ce468cc55694d860a90a92df2cbe1a64e84187"
    "1a74b158ab2080c718b7937c58eed4af8661f3d1a79a721d10e6cfb060442705ed9c8a665428d3bb"
    "1c487cbfeb6197c9e86794cb086db0f928a4e21f63d7154f8cfa4585bc2c71b01b9a683cd09159df"
    "ac6dfcc4871bf9c49426f6cd682ef592682fbc9c6930ca9e1c345376a7c4dcef587496b3da0c2491"
    "b8df0f326d8de50832618dadd4305a8b187e3ebf74eba256cd74fca854e5a024de621fdb701da351"
    "039240c3862eb9761624343f4956656d757d90a2afcfdef50d1e30467390969eabb6c3dbe62d4d61"
    "156cda7ce987ea85ee86fc980fa81bc92edc44ef75fc890e8a16911e9d2dabf814cfccc8c4bbb2a8"
    "9e958c83787d865860696e73766e635850464139322ef8f41450ab3893e86ad050a9fe6cdf33d62a"
    "c11c8ffe78cd3caf1e88ce63b7389bef1ab09c7f6c4ff8e7d4b490682f2210f2e0d598946f3f2611"
    "c6b093785840f0df1a3a80ce407fcaff71c10366b70746ca0853a01064b91259a4cd498cc93d86d0"
    "1a9c6e44e8bb855df4cd963c1adfba683403e4995e20cca97224cfa46c38e0ba18365c91c1ec5676"
    "a9d4063b88c6f7316c91f01b5698bed0266691b6e13472a519904cd69454dc971ddd983be0a844f0"
    "8948fda95507a852d0963fce8934d490192d3b526b89a0b6d0e70d3459657ac7dcf61426507c8b9f"
    "b0bacee1ef34577a1a78349e44ba65d686f89b27b857dd76049022b94ccb70cf7edf91ec9c3abc64"
    "1cdfe3ebeff1f6fa020812202c3031383a3a3c3e484e4c48423b36303438fbff2068d160c25bb719"
    "ab17a00f7dfc7af06fec60c444b62194dc78d152b438a9f724cfbeaba08d7f782e2414ffe5d6ce95"
    "8d817761401fe0cdb9a58d705438f7f02960abfa76c50e90d932a4f45cbf1070a62484c73a94ca44"
    "8ece3989d33d9ee82ac19d7652ffd6b08d3814e6bf7b5b2f02ae907536e0bc8a57edcca6703cf3d7"
    "2f568ac4ff6a98d0093da6dd255d8df42b72a3ca3571a5c9ea518abfee428ac631b87910d89722f6"
    "b84116d7743dfc925b13b57d33c67f42ca8b3ad29442f1b0344c6c8cb2d0f51a324aabd0f6123e62"
    "80a4bcda2c5c67829eb8cfedfe4473a038ab60df8308ba2ee54e19ca48fb7b26a359c48328b457c6"
    "60e491fbb344e38b3c48505c6875838c95a0b3becfdce9f6ff051016243a3c43403838373c4c6474"
    "409b0c9f10a416ab1ab31f7c248e239124922494f793ec82df6dd75bd354db0c4404ffebe7e2dbcc"
    "c7be7074786c675f50484334f3e8dbcbb7aa97886c5c0804"
)


def pattern(h: int, w: int) -> np.ndarray:
    """A deterministic uint8 test image (no RNG, so the same on every platform)."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 7 + y * 3 + (x * y * 13) % 29 * 4) % 200 + 20).astype(np.uint8)


def expected(hexstr: str, h: int, w: int) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hexstr), dtype=np.uint8).reshape(h, w)


@pytest.mark.parametrize(
    "h,w,clip,tiles,golden",
    [
        (20, 28, 2.0, (8, 8), OPENCV_20x28_CLIP2_8x8),  # not a tile multiple: padded
        (32, 32, 40.0, (4, 4), OPENCV_32x32_CLIP40_4x4),  # a multiple: no padding
    ],
)
def test_clahe_is_bit_exact_with_opencv(h, w, clip, tiles, golden):
    out = clahe(pattern(h, w), clip, tiles)
    assert out.dtype == np.uint8 and out.shape == (h, w)
    assert np.array_equal(out, expected(golden, h, w))


def test_clahe_behaves_like_histogram_equalisation_and_checks_its_input():
    rng = np.random.default_rng(0)
    low = rng.integers(100, 110, (64, 96), dtype=np.uint8)  # a low-contrast image
    out = clahe(low, clip_limit=40.0, tiles=(1, 1))
    assert int(out.max()) - int(out.min()) > 150  # contrast stretched
    order = np.argsort(low, axis=None, kind="stable")
    assert np.all(np.diff(out.ravel()[order].astype(int)) >= 0)  # one tile: monotone map
    # a lower clip limit limits the stretch
    mild = clahe(low, clip_limit=1.0, tiles=(1, 1))
    assert int(mild.max()) - int(mild.min()) < int(out.max()) - int(out.min())
    assert clahe(np.full((1, 1), 7, np.uint8)).shape == (1, 1)
    assert clahe(rng.integers(0, 256, (5, 141), dtype=np.uint8)).shape == (5, 141)
    with pytest.raises(UsageError, match="uint8"):
        clahe(low.astype(np.float32))
    with pytest.raises(UsageError, match="uint8"):
        clahe(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UsageError, match="clip_limit"):
        clahe(low, clip_limit=0.0)


def test_gamma_follows_retina_unet():
    lut = gamma_lut(1.2)
    k = np.arange(256)
    assert lut.dtype == np.uint8 and lut[0] == 0 and lut[255] == 255
    assert np.array_equal(lut, np.floor(255 * (k / 255) ** (1 / 1.2)).astype(np.uint8))
    assert np.all(lut >= k)  # gamma 1.2 brightens: the exponent is 1 / gamma
    x = np.array([[[0.0], [0.25], [1.0]]], np.float32)  # 1 x 3 x 1
    out = Preprocessing("gray", gamma=1.2)(x)
    assert np.allclose(out[0, 0], [0.0, 0.25 ** (1 / 1.2), 1.0], atol=1e-6)


def test_minmax_standardize_and_uint8_cast():
    x = np.array([[0.2, 0.4], [0.6, 0.7]], np.float32)
    assert np.allclose(minmax(x), [[0.0, 0.4], [0.8, 1.0]], atol=1e-6)
    assert np.array_equal(minmax(np.full((3, 3), 0.5, np.float32)), np.zeros((3, 3)))
    z = standardize(x)
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-5
    assert np.array_equal(standardize(np.ones((2, 2), np.float32)), np.zeros((2, 2)))
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(codes.astype(np.float32) / np.float32(255)), codes)
    assert np.array_equal(to_uint8(np.array([0.999, 0.5, -1.0, 2.0])), [254, 127, 0, 255])


def test_retina_unet_pipeline_matches_the_reference_steps():
    rng = np.random.default_rng(1)
    rgb = (rng.random((30, 44, 3)) * 0.5 + 0.2).astype(np.float32)
    pre = Preprocessing("gray", normalize="minmax", clahe=True, gamma=1.2)
    out = pre(rgb)
    assert out.shape == (1, 30, 44) and out.dtype == np.float32
    # the reference: rgb2gray on 0..255, dataset_normalized (standardise, then per-image
    # min-max to 0..255), uint8 cast, OpenCV CLAHE 2.0 / 8x8, adjust_gamma(1.2) LUT, / 255
    gray = (rgb * 255).astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    norm = (gray - gray.mean()) / gray.std()
    norm = (norm - norm.min()) / (norm.max() - norm.min()) * 255
    ref = gamma_lut(1.2)[clahe(norm.astype(np.uint8), 2.0, (8, 8))] / 255.0
    # identical but where float32 vs float64 rounding puts a grey level on the other side of
    # an 8-bit code border (CLAHE's slope, at most ~2 at clip 2.0, and gamma can widen it)
    assert np.mean(np.abs(out[0] - ref) > 1e-6) < 0.01
    assert np.abs(out[0] - ref).max() <= 4 / 255 + 1e-6
    # values are 8-bit codes in [0, 1]
    assert np.allclose(out * 255, np.round(out * 255), atol=1e-4)


def test_standardize_runs_last_and_channels_are_kept():
    rgb = np.random.default_rng(2).random((16, 20, 3)).astype(np.float32)
    out = Preprocessing("rgb", normalize="standardize", gamma=2.0)(rgb)
    assert out.shape == (3, 16, 20)
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-4
    eq = Preprocessing("rgb", clahe=True)(rgb)
    assert eq.shape == (3, 16, 20)
    single = Preprocessing("gray", clahe=True)(rgb[..., 1:2])  # CLAHE per channel
    assert np.allclose(eq[1], single[0])


def test_defaults_leave_the_image_alone_and_configs_are_validated():
    rgb = np.random.default_rng(3).random((5, 7, 3)).astype(np.float32)
    assert np.array_equal(Preprocessing()(rgb), rgb.transpose(2, 0, 1))
    assert np.array_equal(Preprocessing("green")(rgb)[0], rgb[..., 1])
    for bad in (
        {"normalize": "zscore"},
        {"clahe": "yes"},
        {"clahe_clip": 0},
        {"clahe_tiles": 0},
        {"clahe_tiles": 2.5},
        {"gamma": 0.0},
        {"gamma": float("nan")},
    ):
        (key,) = bad
        with pytest.raises(UsageError, match=key):
            Preprocessing(**bad)
    with pytest.raises(UsageError, match="valid"):
        Preprocessing.from_dict({"colour": "gray"})


def test_config_round_trips_through_json_and_weights_bundles(tmp_path):
    pre = Preprocessing("gray", normalize="minmax", clahe=True, clahe_clip=3.0, gamma=1.2)
    assert Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre
    # configs written before these fields existed still load
    assert Preprocessing.from_dict({"color": "green"}) == Preprocessing("green")
    model = create_model("unet-small", base_channels=4)
    model.save_pretrained(tmp_path / "b", preprocessing=pre)
    _, bundle = load_model(tmp_path / "b")
    assert bundle.preprocessing == pre
