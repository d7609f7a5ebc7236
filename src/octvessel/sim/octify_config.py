"""How fundus photographs become OCT-en-face-like samples: :class:`OctifyConfig` and the
field-angle table used to find a source's pixel size (:mod:`octvessel.sim.octify`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from octvessel.config import JsonConfig, check_bool, check_int
from octvessel.errors import UsageError, check_choice

__all__ = ["CHANNELS", "FIELD_DEG", "MM_PER_DEGREE", "OctifyConfig"]

CHANNELS = ("luminance", "green")
#: Camera field angle (full FOV diameter, degrees) per dataset layout; sources:
#: DRIVE  -- Canon CR5 non-mydriatic 3CCD, 45 deg (Staal et al., IEEE TMI 23(4) 2004);
#: STARE  -- TopCon TRV-50, 35 deg (Hoover et al., IEEE TMI 19(3) 2000);
#: CHASE_DB1 -- Nidek NM-200-D, 30 deg (Owen et al., IOVS 50(5) 2009; Fraz et al. 2012);
#: HRF    -- Canon CR-1, 45 deg (Budai et al., Int. J. Biomed. Imaging 2013).
FIELD_DEG = {"drive": 45.0, "stare": 35.0, "chase": 30.0, "hrf": 45.0}
#: Retina per degree of field angle for an emmetropic eye (~17 mm from the nodal point to
#: the retina: 17 mm x pi / 180 = 0.297; 0.29 is the usual rounded figure, Drasdo & Fowler,
#: Br. J. Ophthalmol. 58, 1974). Axial length changes it by roughly +-8 % in practice.
MM_PER_DEGREE = 0.29


def _number(name: str, value: Any, lo: float, hi: float = math.inf, *, lo_open: bool = False):
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > lo if lo_open else value >= lo)
        and value <= hi
    )
    if not ok:
        bound = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else "")
        raise UsageError(f"{name}={value!r}: expected a number {bound}")


@dataclass(frozen=True)
class OctifyConfig(JsonConfig):
    """How fundus photographs become OCT-en-face-like samples (all lengths in mm or pixels).

    Attributes:
        channel: ``green`` (the fundus channel with the best vessel contrast, closest to the
            strong vessel shadows of OCT en-face images) or ``luminance`` (BT.601); a gray
            source is used as it is.
        crop_mm: side of the square patch of retina each output shows (7.0: Avanti 3D Retina).
        mm_per_px: source pixel size; None: the dataset's spacing, else ``field_deg`` /
            the ``FIELD_DEG`` table over the measured FOV diameter.
        field_deg: camera field angle used instead of the ``FIELD_DEG`` table (any format).
        mm_per_degree: retina per degree of field angle (0.29).
        width, height: output grid, A-scans x B-scans (385 x 141).
        square: resample the output to ``width`` x ``width`` (385 x 385), as the authors did.
        crops: crops per image; 0 = a half-overlapping grid over the FOV.
        min_fov_fraction: least fraction of a crop that must lie inside the FOV.
        row_shift_px: std of the per-B-scan horizontal shift (output pixels; eye motion).
        blur_mm: sigma of the Gaussian optical blur, in mm of retina.
        vignetting: relative brightness lost in the crop's corners.
        stripes: std of the per-B-scan log-gain (brightness stripes).
        stripe_corr: lag-1 correlation of that log-gain over neighbouring B-scans
            (an AR(1) drift; real reconstructions: about 0.4 after stripe normalisation).
        speckle: coefficient of variation of the multiplicative gamma speckle.
        speckle_corr_px: Gaussian sigma (output pixels, along the A-scans) the speckle is
            correlated over, its coefficient of variation kept (0: white).
        noise: std of the additive Gaussian noise after the [0, 1] stretch.
        motion_lines: mean number (Poisson) of single dark or bright B-scans per crop
            (blinks, motion, a lost B-scan: 1-2 rows whose brightness jumps by a
            log-gain of sd 0.3; real reconstructions show a few).
        edge_falloff: the real scans' dark side edges: the largest relative loss of
            brightness at the first and last A-scan (each side draws a loss in
            [0.5, 1] x this and a width in [0.05, 0.17] mm, raised-cosine profile).
        edge_rim: chance per side edge that its outer 1-3 A-scans are the noisy columns of
            real reconstructions (each pixel a log-gain of sd 1.2 at the edge, less inwards;
            :func:`octvessel.sim.octify.edge_rim`).
        fovea_dip: the dark fovea of full-depth en-face images: the largest relative
            darkening at its centre (drawn in [0.5, 1] x this, Gaussian of sigma
            0.3-0.6 mm, centre in the middle 40 % of the crop; in 80 % of the crops).
        variant: the CAVRI-C variant name the images are written under (P1, P2 or P3).
        seed: random seed of :func:`octify_dataset`.
    """

    channel: str = "green"
    crop_mm: float = 7.0
    mm_per_px: float | None = None
    field_deg: float | None = None
    mm_per_degree: float = MM_PER_DEGREE
    width: int = 385
    height: int = 141
    square: bool = False
    crops: int = 0
    min_fov_fraction: float = 0.9
    row_shift_px: float = 0.7
    blur_mm: float = 0.01
    vignetting: float = 0.2
    stripes: float = 0.005
    stripe_corr: float = 0.4
    speckle: float = 0.05
    speckle_corr_px: float = 2.0
    noise: float = 0.003
    motion_lines: float = 1.5
    edge_falloff: float = 0.8
    edge_rim: float = 0.5
    fovea_dip: float = 0.6
    variant: str = "P1"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("channel", self.channel, CHANNELS)
        _number("crop_mm", self.crop_mm, 0.0, lo_open=True)
        if self.mm_per_px is not None:
            _number("mm_per_px", self.mm_per_px, 0.0, lo_open=True)
        if self.field_deg is not None:
            _number("field_deg", self.field_deg, 0.0, 180.0, lo_open=True)
        _number("mm_per_degree", self.mm_per_degree, 0.0, lo_open=True)
        for name in ("width", "height", "crops", "seed"):
            check_int(name, getattr(self, name), minimum=0 if name in ("crops", "seed") else 8)
        check_bool("square", self.square)
        _number("min_fov_fraction", self.min_fov_fraction, 0.0, 1.0, lo_open=True)
        for name in ("row_shift_px", "blur_mm", "stripes", "noise", "speckle_corr_px"):
            _number(name, getattr(self, name), 0.0)
        _number("stripe_corr", self.stripe_corr, 0.0, 0.99)
        _number("motion_lines", self.motion_lines, 0.0, 20.0)
        for name in ("edge_falloff", "edge_rim", "fovea_dip"):
            _number(name, getattr(self, name), 0.0, 1.0)
        _number("vignetting", self.vignetting, 0.0, 1.0 - 1e-6)
        _number("speckle", self.speckle, 0.0, 2.0)
        check_choice("variant", self.variant, ("P1", "P2", "P3"))

    @property
    def out_shape(self) -> tuple[int, int]:
        """(rows, columns) of every output sample."""
        return (self.width if self.square else self.height), self.width

    @property
    def spacing(self) -> tuple[float, float]:
        """(row, col) mm per output pixel."""
        rows, cols = self.out_shape
        return self.crop_mm / rows, self.crop_mm / cols

    def without_degradations(self) -> OctifyConfig:
        """The same geometry with every degradation at strength 0."""
        return replace(
            self,
            row_shift_px=0.0,
            blur_mm=0.0,
            vignetting=0.0,
            stripes=0.0,
            speckle=0.0,
            noise=0.0,
            edge_falloff=0.0,
            edge_rim=0.0,
            fovea_dip=0.0,
            motion_lines=0.0,
        )
