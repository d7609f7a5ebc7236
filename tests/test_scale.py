"""Physical scale: the order of pixel-size sources, bad values, the FOV estimate, bundles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from octvessel import atomic
from octvessel.data.fov import MIN_FOV_FRACTION, fov_diameter
from octvessel.errors import InputError, UsageError
from octvessel.pixel_size import ModelScale, PixelSize, check_spacing, parse_spacing
from octvessel.scale import resolve_pixel_size, spacing_from_files

HEYEX = """<?xml version="1.0"?><HEDX><BODY><Patient><Study><Series>
{images}
</Series></Study></Patient></BODY></HEDX>"""
BSCAN = """<Image><OphthalmicAcquisitionContext><Width>512</Width><Height>496</Height>
<ScaleX>0.0114</ScaleX><ScaleY>0.0039</ScaleY>
<Start><Coord><X>0.0</X><Y>{y}</Y></Coord></Start><End><Coord><X>5.8</X><Y>{y}</Y></Coord></End>
</OphthalmicAcquisitionContext></Image>"""


def _folder(tmp_path: Path) -> Path:
    """img.png with every kind of metadata beside it (each test removes what it does not want)."""
    d = tmp_path / "data" / "images"
    d.mkdir(parents=True)
    (d / "img.png").write_bytes(b"")
    atomic.write_json(
        d / "scan_enface.json", {"images": {"img.png": {}}, "spacing_mm": [0.05, 0.02]}
    )
    atomic.write_json(tmp_path / "data" / "dataset.json", {"spacing": [0.03, 0.03]})
    xml = HEYEX.format(images="\n".join(BSCAN.format(y=0.12 * i) for i in range(4)))
    (d / "OCT-Info.xml").write_text(xml, encoding="utf-8")
    atomic.write_json(
        d / "prediction.json", {"scale": {"images": {"img": {"spacing_mm": [0.2, 0.2]}}}}
    )
    return d


def test_the_sources_are_tried_in_the_documented_order(tmp_path):
    d = _folder(tmp_path)
    img = d / "img.png"
    disc = np.zeros((100, 120), bool)
    yy, xx = np.mgrid[:100, :120]
    disc[(yy - 50) ** 2 + (xx - 60) ** 2 <= 40**2] = True

    def get(**kw):
        return resolve_pixel_size(path=img, fov=disc, **kw)

    got = get(spacing=(0.01, 0.02), fov_px=300, data_spacing=(0.4, 0.4))
    assert (got.spacing, got.source) == ((0.01, 0.02), "--spacing")
    got = get(fov_px=300, data_spacing=(0.4, 0.4))
    assert (got.spacing, got.fov_px, got.source) == (None, 300.0, "--fov-px")
    got = get(data_spacing=(0.4, 0.4))
    assert (got.spacing, got.source) == ((0.4, 0.4), "dataset")
    assert (get().spacing, get().source) == ((0.05, 0.02), "sidecar")
    (d / "scan_enface.json").unlink()
    assert (get().spacing, get().source) == ((0.03, 0.03), "dataset")
    (tmp_path / "data" / "dataset.json").unlink()
    got = get()
    assert got.source == "heyex-xml" and got.spacing == pytest.approx((0.12, 0.0114))
    (d / "OCT-Info.xml").unlink()
    assert (get().spacing, get().source) == ((0.2, 0.2), "prediction")
    (d / "prediction.json").unlink()
    got = get()
    assert got.source == "fov-estimate" and got.spacing is None and got.fov_px == 81.0
    assert "given FOV mask" in got.detail
    assert get(estimate=False) == PixelSize()
    # a FOV that is the whole image (an OCT en-face image) gives no estimate
    assert resolve_pixel_size(path=img, fov=np.ones((50, 60), bool)).source == "none"


def test_a_sidecar_that_does_not_list_the_image_is_ignored(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    atomic.write_json(
        d / "a_enface.json", {"images": {"other.png": {}}, "spacing_mm": [0.05, 0.02]}
    )
    assert spacing_from_files(d / "img.png") is None


@pytest.mark.parametrize(
    "text", ["0,0.02", "-0.01,0.02", "nan,0.02", "inf", "0.02,1.5", "abc", "0.1,0.2,0.3"]
)
def test_bad_spacings_are_refused_with_one_line(text):
    with pytest.raises(UsageError) as err:
        parse_spacing(text)
    assert "\n" not in str(err.value) and "--spacing" in str(err.value)


def test_a_bad_spacing_in_a_file_names_the_file(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    atomic.write_json(d / "a_enface.json", {"images": {"img.png": {}}, "spacing_mm": [0.05, -1]})
    with pytest.raises(InputError, match="a_enface.json"):
        spacing_from_files(d / "img.png")


def test_spacing_values_and_single_numbers():
    assert parse_spacing("0.0497,0.0182") == (0.0497, 0.0182)
    assert parse_spacing("0.01") == (0.01, 0.01)
    assert check_spacing(1.0) == (1.0, 1.0)
    with pytest.raises(UsageError):
        check_spacing(1.0000001)
    with pytest.raises(UsageError):
        check_spacing(True)


def test_fov_diameter_of_clipped_discs_and_tiny_masks():
    yy, xx = np.mgrid[:300, :400]
    disc = (yy - 150) ** 2 + (xx - 200) ** 2 <= 180**2  # clipped at top and bottom
    assert fov_diameter(disc) == pytest.approx(361, abs=1)
    tiny = np.zeros((100, 100), bool)
    tiny[:4, :4] = True
    assert tiny.mean() < MIN_FOV_FRACTION
    with pytest.raises(InputError, match="under 5 %"):
        fov_diameter(tiny, "case1")


def test_model_scale_round_trips_and_refuses_bad_values(tmp_path):
    s = ModelScale((0.0496, 0.0182), note="x")
    assert ModelScale.from_dict(s.to_dict()) == s
    assert ModelScale.from_dict(None) is None
    with pytest.raises(InputError, match="config.json"):
        ModelScale.from_dict({"pixel_size_mm": [0, 0.01]}, tmp_path / "config.json")
    with pytest.raises(InputError):
        ModelScale.from_dict({"fov_px": 540}, "config.json")
    assert math.isclose(ModelScale((0.02, 0.02), fov_px=540).fov_px, 540.0)


def test_shipped_bundles_record_their_pixel_size():
    from octvessel.models import list_shipped
    from octvessel.models.pretrained import BundleConfig

    shipped = list_shipped()
    fundus = BundleConfig.from_file(shipped["iternet-fundus"] / "config.json").scale
    oct_ = BundleConfig.from_file(shipped["iternet-oct"] / "config.json").scale
    assert fundus.fov_px == 595 and fundus.pixel_size_mm[0] == fundus.pixel_size_mm[1]
    assert oct_.fov_px is None
    assert oct_.pixel_size_mm == pytest.approx((7 / 141, 7 / 385), rel=1e-4)
    for name in ("iternet-fundus", "iternet-oct"):
        card = (shipped[name] / "README.md").read_text(encoding="utf-8")
        assert "trained at" in card
        raw = json.loads((shipped[name] / "config.json").read_text(encoding="utf-8"))
        assert raw["scale"]["pixel_size_mm"] == list(
            BundleConfig.from_file(shipped[name] / "config.json").scale.pixel_size_mm
        )
