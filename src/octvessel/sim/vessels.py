"""Procedural retinal vessel trees and fundus / en-face-like images drawn from them.

The tree grows from an optic-disc point as curved segments that branch with widths that
follow Murray's law (r0^3 = r1^3 + r2^3), so the maps have the thin-to-thick mix that
makes vessel segmentation hard. Everything is deterministic for a given seed. These
images exist to exercise the pipeline end to end without real data; they are not a
substitute for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octvessel.errors import UsageError, check_choice

STYLES = ("fundus", "enface")


@dataclass(frozen=True)
class VesselTreeConfig:
    """Shape of a synthetic vessel tree (lengths and widths in pixels of the output grid).

    Attributes:
        height, width: output size.
        trunks: main vessels leaving the disc.
        root_radius: radius of a trunk (pixels).
        min_radius: branches thinner than this stop growing.
        step: centre-line sampling step (pixels).
        tortuosity: standard deviation of the heading change per step (radians).
        branch_prob: chance per step that a segment splits.
        disc: (row, col) of the optic disc as fractions of the size, or None for random.
        max_fraction: growth stops once vessels cover this fraction of the image.
        avoid: optional (row, col, radius) of a zone the vessels bend around, as fractions
            of (height, width, min(height, width)) -- e.g. the foveal avascular zone of a
            macular scan. Vessels closer than twice the radius are steered along the zone's
            tangent (no random draws are added, so the tree is the same when ``avoid`` is
            None) while they head into it; a segment stops at the rim of the zone.
    """

    height: int = 256
    width: int = 256
    trunks: int = 4
    root_radius: float = 3.2
    min_radius: float = 0.6
    step: float = 1.0
    tortuosity: float = 0.06
    branch_prob: float = 0.006
    disc: tuple[float, float] | None = None
    max_fraction: float = 0.14
    avoid: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise UsageError(
                f"height, width = {self.height}, {self.width}: expected at least 8 pixels each"
            )
        if not 0 < self.min_radius < self.root_radius:
            raise UsageError("expected 0 < min_radius < root_radius")
        if self.avoid is not None and (len(self.avoid) != 3 or not self.avoid[2] > 0):
            raise UsageError(
                f"avoid={self.avoid!r}: expected None or (row, col, radius) with radius > 0"
            )


@dataclass(frozen=True)
class VesselGeometry:
    """A tree with the geometry needed to render it in 3-D (all H x W float32, pixels).

    Attributes:
        coverage: fraction of each pixel covered by a vessel, in [0, 1].
        radius: radius of the nearest centre-line point (defined everywhere).
        distance: distance from the pixel centre to the nearest centre-line point.
        centrelines: the true centre lines and branching events (:func:`vessel_centrelines`).
    """

    coverage: np.ndarray
    radius: np.ndarray
    distance: np.ndarray
    centrelines: dict | None = None


def _stamp(canvas: np.ndarray, r: float, c: float, radius: float) -> None:
    """Max-composite an anti-aliased disc of ``radius`` centred at (r, c) into ``canvas``."""
    h, w = canvas.shape
    ext = int(np.ceil(radius + 1.5))
    r0, r1 = max(int(r) - ext, 0), min(int(r) + ext + 2, h)
    c0, c1 = max(int(c) - ext, 0), min(int(c) + ext + 2, w)
    if r0 >= r1 or c0 >= c1:
        return
    yy, xx = np.mgrid[r0:r1, c0:c1]
    dist = np.hypot(yy - r, xx - c)
    cover = np.clip(radius + 0.5 - dist, 0.0, 1.0)
    np.maximum(canvas[r0:r1, c0:c1], cover, out=canvas[r0:r1, c0:c1])


def vessel_tree(config: VesselTreeConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grow one tree.

    Returns:
        coverage: float32 H x W in [0, 1], the fraction of each pixel covered by a vessel;
        radius: float32 H x W, the radius (pixels) of the vessel covering a pixel (0 elsewhere).
    """
    coverage, radius_map = _grow(config, seed)
    # spread the radius of centre-line pixels over the vessel's width
    _, (ir, ic) = ndimage.distance_transform_edt(radius_map == 0, return_indices=True)
    radius_map = np.where(coverage > 0, radius_map[ir, ic], 0).astype(np.float32)
    return coverage, radius_map


def vessel_geometry(config: VesselTreeConfig, seed: int = 0) -> VesselGeometry:
    """Grow the same tree as :func:`vessel_tree` and return its 3-D rendering geometry."""
    record: dict[str, list] = {}
    coverage, centre = _grow(config, seed, record)
    if not centre.any():
        inf = np.full(centre.shape, np.inf, np.float32)
        return VesselGeometry(coverage, np.zeros_like(centre), inf, record)
    dist, (ir, ic) = ndimage.distance_transform_edt(centre == 0, return_indices=True)
    return VesselGeometry(
        coverage, centre[ir, ic].astype(np.float32), dist.astype(np.float32), record
    )


def _steer(
    r: float, c: float, heading: float, avoid: tuple[float, float, float] | None
) -> tuple[float, bool]:
    """Bend ``heading`` along the tangent of the avoided zone; also say if (r, c) is inside."""
    if avoid is None:
        return heading, False
    ar, ac, rad = avoid
    dy, dx = r - ar, c - ac
    dist = float(np.hypot(dy, dx))
    if dist >= 2 * rad:
        return heading, False
    away = np.arctan2(dy, dx)
    if dist >= rad and np.cos(heading - away) >= 0:
        return heading, False  # already moving away: leave the course alone
    tangents = (away + np.pi / 2, away - np.pi / 2)
    diffs = [np.angle(np.exp(1j * (t - heading))) for t in tangents]
    turn = min(diffs, key=abs)
    weight = min(1.0, (2 * rad - dist) / rad)  # 0 at twice the radius, 1 at the rim
    return heading + 0.25 * weight * turn, dist < rad


def _grow(
    config: VesselTreeConfig, seed: int, record: dict[str, list] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, radius on centre-line pixels only) of one tree.

    ``record`` (optional, filled in place; the tree is the same with or without it):
    ``events`` -- (row, col, degree before children) of the disc (0), each split (1: the
    parent ends there) and each side branch (2: the parent goes on); ``paths`` -- per drawn
    segment (event index, float array (n, 3) of row, col, radius of its centre-line points).
    """
    events = record.setdefault("events", []) if record is not None else None
    paths = record.setdefault("paths", []) if record is not None else None
    rng = np.random.default_rng(seed)
    h, w = config.height, config.width
    scale = min(h, w) / 256.0
    coverage = np.zeros((h, w), np.float32)
    radius_map = np.zeros((h, w), np.float32)
    if config.disc is None:
        disc = (
            rng.uniform(0.35, 0.65) * h,
            rng.choice([rng.uniform(0.03, 0.2), rng.uniform(0.8, 0.97)]) * w,
        )
    else:
        disc = (config.disc[0] * h, config.disc[1] * w)
    avoid = None
    if config.avoid is not None:
        avoid = (config.avoid[0] * h, config.avoid[1] * w, config.avoid[2] * min(h, w))
    toward_center = np.arctan2(h / 2 - disc[0], w / 2 - disc[1])
    stack = []
    for i in range(config.trunks):
        heading = (
            toward_center
            + (i - (config.trunks - 1) / 2) * (2.2 / max(config.trunks - 1, 1))
            + rng.normal(0, 0.15)
        )
        stack.append((disc[0], disc[1], heading, config.root_radius * rng.uniform(0.8, 1.1), 0))
    if events is not None:
        events.append((disc[0], disc[1], 0))
    max_len = 1.6 * max(h, w)
    segments = 0
    while stack and segments < 4000:
        r, c, heading, radius, event = stack.pop(0)  # breadth first: thick vessels first
        segments += 1
        if segments % 8 == 0 and coverage.mean() > config.max_fraction:
            break
        points: list[tuple[float, float, float]] = []
        if paths is not None:
            paths.append((event, points))
        length = 0.0
        drift = rng.normal(0, config.tortuosity / 4)
        seg_len = rng.uniform(25, 90) * scale * (radius / config.root_radius + 0.4)
        while length < max_len:
            heading += drift + rng.normal(0, config.tortuosity)
            heading, inside = _steer(r, c, heading, avoid)
            r += config.step * np.sin(heading)
            c += config.step * np.cos(heading)
            length += config.step
            if inside or not (-5 <= r < h + 5 and -5 <= c < w + 5):
                break
            _stamp(coverage, r, c, radius)
            points.append((r, c, radius))
            ir, ic = int(round(r)), int(round(c))
            if 0 <= ir < h and 0 <= ic < w:
                radius_map[ir, ic] = max(radius_map[ir, ic], radius)
            if length > seg_len and rng.random() < config.branch_prob * 4:
                # Murray's law split: r^3 = r1^3 + r2^3, asymmetric
                share = rng.uniform(0.3, 0.5)
                r1, r2 = radius * (1 - share) ** (1 / 3), radius * share ** (1 / 3)
                spread = rng.uniform(0.4, 0.9)
                here = _event(events, r, c, 1)
                for rad, sign in ((r1, 1), (r2, -1)):
                    if rad >= config.min_radius:
                        stack.append(
                            (r, c, heading + sign * spread * (0.5 if rad == r1 else 1.0), rad, here)
                        )
                break
            if rng.random() < config.branch_prob:
                # side branch, the parent continues slightly thinner
                child = radius * rng.uniform(0.45, 0.7)
                if child >= config.min_radius:
                    stack.append(
                        (
                            r, c, heading + rng.choice([-1, 1]) * rng.uniform(0.8, 1.4), child,
                            _event(events, r, c, 2),
                        )
                    )  # fmt: skip
                radius = (radius**3 - child**3) ** (1 / 3) if child < radius else radius
    if paths is not None:
        paths[:] = [(e, np.asarray(p, np.float64).reshape(-1, 3)) for e, p in paths]
    return coverage, radius_map


def _event(events: list | None, r: float, c: float, degree: int) -> int:
    """Record a branching event; return its index (-1 when not recording)."""
    if events is None:
        return -1
    events.append((r, c, degree))
    return len(events) - 1


def vessel_centrelines(config: VesselTreeConfig, seed: int = 0) -> dict[str, list]:
    """The true centre lines of :func:`vessel_tree`'s tree (same config and seed).

    Returns ``{"events": [(row, col, degree)], "paths": [(event, (n, 3) row, col, radius)]}``
    in pixels of the tree's grid (see :func:`_grow`); a segment's path starts one step
    after its event's point.
    """
    record: dict[str, list] = {}
    _grow(config, seed, record)
    return record


def render_image(
    config: VesselTreeConfig,
    seed: int = 0,
    style: str = "enface",
    noise: float = 0.04,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a synthetic image with its ground truth.

    Args:
        config: tree shape and image size.
        seed: random seed (same seed -> same image, label and mask).
        style: ``enface`` -- gray OCT en-face-like projection (vessels dark, B-scan row
            stripes, speckle-like noise, no dark surround) or ``fundus`` -- colour fundus
            photograph-like (orange background, dark vessels, bright disc, circular FOV).
        noise: standard deviation of the additive noise (image units).

    Returns:
        image: float32 H x W x C in [0, 1] (C = 1 for ``enface``, 3 for ``fundus``);
        label: bool H x W, True where a vessel covers at least half the pixel;
        fov: bool H x W field of view.
    """
    check_choice("style", style, STYLES)
    rng = np.random.default_rng(seed + 7919)
    coverage, radius = vessel_tree(config, seed)
    h, w = coverage.shape
    label = coverage >= 0.5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # smooth background: low-frequency illumination field
    field = ndimage.gaussian_filter(
        rng.normal(0, 1, (h, w)).astype(np.float32), sigma=min(h, w) / 8
    )
    field /= np.abs(field).max() + 1e-6
    # thin vessels are fainter (partial volume), thick ones saturate
    contrast = coverage * np.clip(0.35 + 0.25 * radius, 0.35, 0.85)
    if style == "enface":
        base = 0.55 + 0.12 * field
        img = base * (1 - 0.75 * contrast)
        img *= 1 + rng.normal(0, 0.06, (h, 1)).astype(np.float32)  # per-B-scan brightness stripes
        img *= rng.gamma(8.0, 1 / 8.0, (h, w)).astype(np.float32) ** 0.25  # multiplicative speckle
        img += rng.normal(0, noise, (h, w)).astype(np.float32)
        image = np.clip(img, 0, 1)[..., None]
        fov = np.ones((h, w), bool)
    else:
        cy, cx = h / 2, w / 2
        rad = 0.48 * min(h, w)
        fov = (yy - cy) ** 2 + (xx - cx) ** 2 <= rad**2
        vignette = 1 - 0.35 * (((yy - cy) ** 2 + (xx - cx) ** 2) / rad**2)
        disc_r, disc_c = np.unravel_index(
            np.argmax(ndimage.uniform_filter(radius, 15)), radius.shape
        )
        disc = np.exp(-((yy - disc_r) ** 2 + (xx - disc_c) ** 2) / (2 * (0.06 * min(h, w)) ** 2))
        lum = (0.55 + 0.08 * field) * vignette + 0.35 * disc
        lum = lum * (1 - 0.6 * contrast) + rng.normal(0, noise, (h, w))
        rgb = np.stack([0.95 * lum + 0.1, 0.55 * lum, 0.25 * lum], axis=-1)
        image = np.clip(rgb, 0, 1) * fov[..., None]
        label &= fov
    return image.astype(np.float32), label, fov
