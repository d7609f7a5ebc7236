"""A weak vessel map of an OCT volume from the shadows its vessels cast (no network, no labels).

Blood absorbs light on the way down and back, so every retinal vessel darkens everything
straight below it: photoreceptors, RPE, choroid, in every B-scan it crosses. The bright
outer band from the ellipsoid zone to Bruch's membrane (EZ .. BM) is the most uniform
tissue under the vessels, so its mean per A-scan, against a local background, is a vessel
map that owes nothing to a segmentation network:

1. **Slab**: mean display intensity of each A-scan between two surfaces
   (:class:`ShadowConfig` ``top`` .. ``bottom``, default EZ .. BM, the voxel-centre
   convention of :func:`octvessel.oct.enface.project`) -> en-face image (B-scans, A-scans).
2. **Levels**: each B-scan's (row's) median is subtracted, then each A-scan position's
   (column's): B-scan gain changes and the signal fall-off at the two side edges of real
   scans are offsets of the log-compressed intensities; then a Gaussian of ``smooth_um`` (physical, so anisotropic
   in pixels) takes out most of the speckle.
3. **Background**: a grey-level closing with an elliptical footprint of radius
   ``background_um`` in millimetres on both axes fills every dark structure narrower than
   the footprint, in any direction (a filter along the fast axis alone misses vessels that
   run along a B-scan); **shadow depth** = closing - image (display units, >= 0).
4. **Weak mask**: depth whose robust z-score, ``(d - median(d)) / (1.4826 MAD(d))`` over
   the whole map, exceeds ``threshold`` (3), without connected regions smaller than
   ``min_area_mm2``.

Dark things that are not vessels cast "shadows" too: the edges of drusen, hard exudates,
hyper-reflective foci and media opacities; the weak map is a proxy for agreement, not a
label. All functions are pure (arrays in, arrays out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from octvessel.config import JsonConfig
from octvessel.errors import InputError, UsageError
from octvessel.oct.projection import project
from octvessel.oct.slabs import Slab
from octvessel.oct.volume import Volume

__all__ = [
    "ShadowConfig",
    "ShadowMap",
    "border_band",
    "border_share",
    "load_surfaces",
    "robust_z",
    "shadow_depth",
    "shadow_map",
    "weak_mask",
    "weak_training_label",
]


@dataclass(frozen=True)
class ShadowConfig(JsonConfig):
    """How the shadow map is made (lengths in micrometres / mm^2 of retina).

    Attributes:
        top, bottom: the surfaces bounding the slab whose darkening is measured.
        top_um, bottom_um: offsets added to them (positive = deeper).
        smooth_um: sigma of the Gaussian applied to the slab image before the background.
        background_um: radius of the closing footprint; wider than the widest vessel.
        threshold: robust z-score of the shadow depth above which a pixel is weak vessel.
        min_area_mm2: smallest connected region (8-connected) kept in the weak mask.
    """

    top: str = "EZ"
    bottom: str = "BM"
    top_um: float = 0.0
    bottom_um: float = 0.0
    smooth_um: float = 20.0
    background_um: float = 200.0
    threshold: float = 3.0
    min_area_mm2: float = 0.004

    def __post_init__(self) -> None:
        Slab(self.top, self.bottom, self.top_um, self.bottom_um)  # same checks as a slab
        for name in ("smooth_um", "min_area_mm2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise UsageError(f"{name}={v!r}: expected a number >= 0")
        for name in ("background_um", "threshold"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise UsageError(f"{name}={v!r}: expected a number > 0")

    @property
    def slab(self) -> Slab:
        """The measured slab as an :class:`octvessel.oct.enface.Slab` (mean)."""
        return Slab(self.top, self.bottom, self.top_um, self.bottom_um, "mean")


@dataclass(eq=False)
class ShadowMap:
    """The shadow map of one volume, on its native en-face grid (B-scans, A-scans).

    Attributes:
        slab: float32 mean intensity of the slab per A-scan (display units).
        depth: float32 shadow depth >= 0 (display units; larger = darker than around).
        z: float32 robust z-score of ``depth`` (what the threshold applies to).
        mask: bool weak vessel mask.
        spacing: (slow, fast) mm per pixel.
        config: what made it.
    """

    slab: np.ndarray
    depth: np.ndarray
    z: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float]
    config: ShadowConfig = field(default_factory=ShadowConfig)


def _check_spacing(spacing: tuple[float, float]) -> tuple[float, float]:
    try:
        dy, dx = (float(v) for v in spacing)
    except (TypeError, ValueError):
        raise UsageError(f"spacing={spacing!r}: expected (slow, fast) mm per pixel") from None
    if not (np.isfinite(dy) and np.isfinite(dx) and dy > 0 and dx > 0):
        raise UsageError(f"spacing={spacing!r}: expected (slow, fast) mm per pixel > 0")
    return dy, dx


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise UsageError(
            f"{name}: expected a 2-D en-face array (B-scans, A-scans), got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise UsageError(f"{name}: has NaN or infinite values")
    return arr.astype(np.float32)


def _footprint(radius_um: float, spacing: tuple[float, float]) -> np.ndarray:
    """Elliptical footprint of ``radius_um`` on a grid of ``spacing`` (mm per pixel)."""
    ry = max(radius_um / (spacing[0] * 1000.0), 1.0)
    rx = max(radius_um / (spacing[1] * 1000.0), 1.0)
    y = np.arange(-int(ry), int(ry) + 1)[:, None] / ry
    x = np.arange(-int(rx), int(rx) + 1)[None, :] / rx
    return (y**2 + x**2) <= 1.0


def shadow_depth(
    slab: np.ndarray, spacing: tuple[float, float], config: ShadowConfig | None = None
) -> np.ndarray:
    """Shadow depth of an en-face slab image: local background (closing) minus the image.

    Args:
        slab: float (B-scans, A-scans) mean slab intensity (log-compressed display units).
        spacing: (slow, fast) mm per pixel.
        config: ``smooth_um`` and ``background_um``.

    Returns:
        float32 (B-scans, A-scans) >= 0, display units.
    """
    cfg = config or ShadowConfig()
    dy, dx = _check_spacing(spacing)
    img = _check_image(slab, "slab")
    img = img - np.median(img, axis=1, keepdims=True)  # per-B-scan gain (an offset in log)
    img = img - np.median(img, axis=0, keepdims=True)  # fall-off at the scan's side edges
    if cfg.smooth_um > 0:
        img = ndimage.gaussian_filter(
            img, (cfg.smooth_um / (dy * 1000.0), cfg.smooth_um / (dx * 1000.0)), mode="reflect"
        )
    closed = ndimage.grey_closing(
        img, footprint=_footprint(cfg.background_um, (dy, dx)), mode="reflect"
    )
    return np.maximum(closed - img, 0.0).astype(np.float32)


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(v - median) / (1.4826 MAD)`` over the whole array, float32 (MAD 0 -> 1e-12)."""
    v = np.asarray(values, dtype=np.float64)
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    return ((v - med) / max(mad, 1e-12)).astype(np.float32)


def weak_mask(
    depth: np.ndarray, spacing: tuple[float, float], config: ShadowConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(z, mask): robust z-score of ``depth`` and the thresholded, cleaned weak mask.

    A pixel is weak vessel when ``z > config.threshold``; 8-connected regions smaller than
    ``config.min_area_mm2`` are dropped. Shapes (B-scans, A-scans); z float32, mask bool.
    """
    cfg = config or ShadowConfig()
    dy, dx = _check_spacing(spacing)
    z = robust_z(_check_image(depth, "depth"))
    mask = z > cfg.threshold
    min_px = cfg.min_area_mm2 / (dy * dx)
    if min_px > 1 and mask.any():
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= min_px
        keep[0] = False
        mask = keep[labels]
    return z, mask


def shadow_map(
    volume: Volume,
    surfaces: Mapping[str, np.ndarray] | None = None,
    config: ShadowConfig | None = None,
) -> ShadowMap:
    """The shadow map and weak vessel mask of a volume.

    Args:
        volume: float (B-scans, depth, A-scans) display intensities, spacing in mm.
        surfaces: name -> float (B-scans, A-scans) depth in samples (e.g. the arrays of
            ``NAME_surfaces.npz``, :func:`octvessel.oct.detect_boundaries`); None = the
            volume's own ``boundaries``.
        config: slab, filters and threshold.

    Raises:
        UsageError: a surface the slab needs is missing, has the wrong shape or is not
            finite; a volume with fewer than 2 B-scans or A-scans.
    """
    cfg = config or ShadowConfig()
    if not isinstance(volume, Volume):
        raise UsageError(f"shadow_map needs an octvessel.oct.Volume, got {type(volume).__name__}")
    nb, _, na = volume.shape
    if nb < 2 or na < 2:
        raise UsageError(f"volume {volume.shape}: expected at least 2 B-scans and 2 A-scans")
    surf = dict(volume.boundaries if surfaces is None else surfaces)
    for name in cfg.slab.boundaries:
        if name not in surf:
            raise UsageError(
                f"the shadow slab needs the {name} surface; available: {', '.join(surf) or 'none'} "
                "(run `octvessel reconstruct` for NAME_surfaces.npz, or detect_boundaries)"
            )
        arr = np.asarray(surf[name])
        if arr.shape != (nb, na):
            raise UsageError(
                f"surface {name} has shape {arr.shape}; expected (B-scans, A-scans) = {(nb, na)}"
            )
        if not np.isfinite(arr).all():
            raise UsageError(f"surface {name} has NaN or infinite depths; fill them first")
    slab = project(volume, cfg.slab, surf)
    spacing = (float(volume.spacing[0]), float(volume.spacing[2]))
    depth = shadow_depth(slab, spacing, cfg)
    z, mask = weak_mask(depth, spacing, cfg)
    return ShadowMap(slab=slab, depth=depth, z=z, mask=mask, spacing=spacing, config=cfg)


def weak_training_label(
    shadow: ShadowMap, negative_z: float = 0.0, not_background: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(label, region) to train on a weak map where it is sure, and nowhere else.

    ``label`` is the weak mask (vessel where the shadow is strong, ``z > threshold``);
    ``region`` marks the pixels a loss may count: the weak mask and the pixels with
    ``z < negative_z`` (shadow depth at most the map's median for 0: very likely no
    vessel), less ``not_background`` (bool, the map's shape: e.g. where a model or a
    reader sees a vessel whose shadow is faint). The pixels in between -- the weak mask's
    soft edges, thin vessels too faint to be sure of -- are left out (``octvessel train
    --loss-region fov`` with ``region`` as the dataset's masks). Both bool, the map's shape.
    """
    if not np.isfinite(negative_z) or negative_z >= shadow.config.threshold:
        raise UsageError(
            f"negative_z={negative_z!r}: expected a number below the weak mask's threshold "
            f"({shadow.config.threshold:g})"
        )
    label = np.asarray(shadow.mask, dtype=bool)
    background = np.asarray(shadow.z) < negative_z
    if not_background is not None:
        exclude = np.asarray(not_background, dtype=bool)
        if exclude.shape != label.shape:
            raise UsageError(
                f"not_background has shape {exclude.shape}; expected the map's {label.shape}"
            )
        background &= ~exclude
    return label, label | background


def load_surfaces(path: str | Path) -> dict[str, np.ndarray]:
    """The height maps of a ``NAME_surfaces.npz`` / ``NAME_boundaries.npz`` (float32).

    Raises:
        InputError: the file is missing or not an npz of 2-D arrays of one shape.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            out = {k: np.asarray(z[k], dtype=np.float32) for k in z.files if k != "confidence"}
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read surfaces ({exc}); expected an .npz of height maps", p
        ) from None
    shapes = {v.shape for v in out.values()}
    if not out or len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(
            f"expected 2-D height maps of one shape, got { ({k: v.shape for k, v in out.items()}) }",
            p,
        )
    return out


def border_band(shape: tuple[int, int], border_px: int = 5) -> np.ndarray:
    """bool ``shape``: the pixels within ``border_px`` pixels of the image's edge."""
    edge = np.zeros(shape, bool)
    b = int(border_px)
    edge[:b], edge[-b:], edge[:, :b], edge[:, -b:] = True, True, True, True
    return edge


def border_share(mask: np.ndarray, border_px: int = 5) -> float:
    """Share of the True pixels of ``mask`` lying within ``border_px`` pixels of its edge.

    The border false-positive measure of the OCT model: compare a prediction's share with
    the weak map's (or with the border's share of the image area). NaN for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise UsageError(f"mask: expected a 2-D array, got shape {m.shape}")
    if not m.any():
        return float("nan")
    return float(m[border_band(m.shape, border_px)].sum() / m.sum())
