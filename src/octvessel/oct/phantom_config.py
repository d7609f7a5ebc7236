"""Size, geometry and acquisition parameters of a synthetic OCT phantom (:class:`PhantomConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octvessel.config import JsonConfig
from octvessel.errors import UsageError

__all__ = ["REALISTIC", "PhantomConfig"]

_RETINA_MM = 0.36  # thickest ILM..BM the layer model makes, with a margin
_MOTION_PX = 10.0  # bound on the axial motion shift (samples)


@dataclass(frozen=True)
class PhantomConfig(JsonConfig):
    """Size, geometry and acquisition of a phantom (defaults: Avanti 3D Retina 7 x 7 mm).

    Attributes:
        bscans, depth, ascans: volume shape (B-scans, depth, A-scans).
        field_mm: (slow, fast) field of view in mm.
        axial_um: depth sample spacing in micrometres.
        bm_depth_mm: depth of Bruch's membrane under the fovea, mm below the image top;
            None places it at 36 % of the depth range, low enough for the retina to fit.
        curvature: bowl of the eye, mm of rise per mm^2 of squared distance from the fovea.
        tilt: largest slope of the random tilt (mm per mm).
        fovea: (row, col) of the fovea as fractions of the field, or None (near centre).
        laterality: "OD", "OS" or None (random); sets the side the vessels come from.
        speckle_looks: gamma shape of the speckle (1 = fully developed, larger = smoother).
        dynamic_range_db: display range; noise_floor: the noise floor's display level.
        gain_jitter_db: standard deviation of the per-B-scan gain.
        motion_px: standard deviation of the axial motion step between B-scans (samples).
        rolloff_db_per_mm: signal loss with depth; vignetting_db: loss at the field corners.
        edge_falloff_db: the dark side edges of real scans: largest signal loss (dB) at the
            first and last A-scan (each side drawn in [0.5, 1] x this over 50-170 um;
            :func:`octvessel.sim.octify.side_falloff`); 0 = none.
        root_radius_um, min_radius_um: radius of the trunks and of the thinnest vessels.
        vessel_fraction: en-face area fraction at which the tree stops growing.
        faz_radius_mm: radius of the foveal avascular zone.
        blood_attenuation_per_mm: attenuation coefficient of blood (shadow depth).
        choroid_texture: amplitude (display levels) of the choroid's vessel pattern.
        inner_texture: amplitude of the en-face reflectivity variation of RNFL, GCL, IPL.
    """

    bscans: int = 141
    depth: int = 640
    ascans: int = 385
    field_mm: tuple[float, float] = (7.0, 7.0)
    axial_um: float = 3.1
    bm_depth_mm: float | None = None
    curvature: float = 0.008
    tilt: float = 0.012
    fovea: tuple[float, float] | None = None
    laterality: str | None = None
    speckle_looks: float = 1.5
    dynamic_range_db: float = 45.0
    noise_floor: float = 0.12
    gain_jitter_db: float = 1.2
    motion_px: float = 0.8
    rolloff_db_per_mm: float = 4.0
    vignetting_db: float = 2.0
    edge_falloff_db: float = 0.0
    root_radius_um: float = 62.0
    min_radius_um: float = 10.0
    vessel_fraction: float = 0.12
    faz_radius_mm: float = 0.25
    blood_attenuation_per_mm: float = 12.0
    choroid_texture: float = 0.16
    inner_texture: float = 0.05

    def __post_init__(self) -> None:
        for name, low in (("bscans", 2), ("depth", 64), ("ascans", 16)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise UsageError(f"{name}={v!r} is not valid; expected an integer >= {low}")
        object.__setattr__(self, "field_mm", tuple(float(v) for v in self.field_mm))
        if self.fovea is not None:
            object.__setattr__(self, "fovea", tuple(float(v) for v in self.fovea))
        positive = (
            "axial_um", "speckle_looks", "dynamic_range_db", "root_radius_um",
            "min_radius_um", "vessel_fraction", "faz_radius_mm",
        )  # fmt: skip
        for name in positive:
            if not float(getattr(self, name)) > 0:
                raise UsageError(f"{name}={getattr(self, name)!r} is not valid; expected > 0")
        if len(self.field_mm) != 2 or min(self.field_mm) <= 0:
            raise UsageError(f"field_mm={self.field_mm!r}: expected (slow, fast) > 0 mm")
        if self.bm_depth_mm is not None and not self.bm_depth_mm > 0:
            raise UsageError(f"bm_depth_mm={self.bm_depth_mm!r} is not valid; expected > 0 or None")
        if self.laterality not in (None, "OD", "OS"):
            raise UsageError(
                f"laterality={self.laterality!r} is not valid; expected one of: OD, OS, None"
            )
        if self.min_radius_um >= self.root_radius_um:
            raise UsageError("expected min_radius_um < root_radius_um")
        if not 0 <= self.edge_falloff_db <= 60:
            raise UsageError(f"edge_falloff_db={self.edge_falloff_db!r}: expected 0-60 dB")
        if not 0 < self.noise_floor < 0.5:
            raise UsageError(f"noise_floor={self.noise_floor!r}: expected a level in (0, 0.5)")

    @property
    def rise_mm(self) -> float:
        """Largest height change of BM over the field from curvature and tilt (mm)."""
        fy, fx = self.fovea or (0.5, 0.5)
        far = max(
            float(np.hypot((cy - fy) * self.field_mm[0], (cx - fx) * self.field_mm[1]))
            for cy in (0.0, 1.0)
            for cx in (0.0, 1.0)
        )
        far *= 1.0 if self.fovea else 1.15  # the random fovea moves a little
        return self.curvature * far**2 + self.tilt * far

    @property
    def bm_mm(self) -> float:
        """Depth of BM under the fovea (mm): ``bm_depth_mm`` or the automatic choice."""
        if self.bm_depth_mm is not None:
            return float(self.bm_depth_mm)
        depth_mm = self.depth * self.axial_um / 1000.0
        return max(0.36 * depth_mm, _RETINA_MM + self.rise_mm + 12 * self.axial_um / 1000.0)

    def check_fits(self) -> None:
        """Refuse a geometry whose retina cannot fit in the depth range (before any work)."""
        um = self.axial_um
        top = (self.bm_mm - _RETINA_MM - self.rise_mm) * 1000.0 / um - _MOTION_PX
        bottom = (self.bm_mm + self.rise_mm) * 1000.0 / um + _MOTION_PX
        if top < 0 or bottom > self.depth:
            need = int(np.ceil((_RETINA_MM + 2 * self.rise_mm) * 1000.0 / um + 2 * _MOTION_PX))
            raise UsageError(
                f"the retina does not fit in {self.depth} samples of {um:g} um with a "
                f"{self.field_mm[0]:g} x {self.field_mm[1]:g} mm field: it needs about {need} "
                "samples; raise the depth or axial_um, or narrow the field"
            )

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(slow, axial, fast) spacing in mm."""
        return (
            self.field_mm[0] / self.bscans,
            self.axial_um / 1000.0,
            self.field_mm[1] / self.ascans,
        )


#: ``octvessel phantom --realistic``: the settings that bring the phantom's en-face images
#: nearer the measured real Spectralis volume (docs/oct-model.md section 4): dark side
#: edges and the smoother speckle of averaged B-scans.
REALISTIC = {"edge_falloff_db": 20.0, "speckle_looks": 4.0}
