"""En-face (fundus) reconstructions of an OCT volume: projections of depth slabs.

A slab runs from one boundary to another (``"top"`` / ``"bottom"`` are the image's first and
last sample), each shifted by an offset in micrometres (positive = deeper), and is reduced
over depth by ``mean``, ``sum``, ``max``, ``min`` or ``median``. Voxel ``z`` belongs to the
slab when ``top <= z < bottom`` (voxel centres; at least one voxel per A-scan).

Named variants and the presets of the OCT-vessel paper (Marciniak et al., Sensors 2023):

| preset | variant | slab |
|---|---|---|
| P1 | ``full`` | whole A-scan, mean |
| P2 | ``retina`` | ILM .. RPE, mean |
| P3 | ``shadow`` | RPE - ``shadow_um`` .. RPE, mean |

``shadow_um`` defaults to 60 um, about the photoreceptor inner and outer segments (external
limiting membrane to RPE): a bright band that lies wholly below the inner-retinal vessels,
so their shadows are not filled in by the vessels' own reflections.

The paper does not publish its layer ranges; these presets are octvessel's choice,
not a reproduction.

Post-processing, in order: per-B-scan and per-column normalisation against striping
(default on; :func:`normalize_stripes`: each row's level, a median along the row, minus
its smooth trend over rows is subtracted, then the same for columns -- additive, because
OCT intensities are log-compressed, where a gain change is an offset), optional isotropic
resampling of the slow axis, and a percentile contrast stretch to [0, 1] (8 bits on
output).

Image layout: rows = B-scans (file order), columns = A-scans; the native grid of an Avanti
3D Retina scan is 141 rows x 385 columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from octvessel.config import JsonConfig
from octvessel.errors import InputError, UsageError, check_choice
from octvessel.oct.layers import DetectConfig, detect_boundaries
from octvessel.oct.volume import Volume, check_order

__all__ = [
    "BOUNDARY_SOURCES",
    "PRESETS",
    "REDUCERS",
    "VARIANTS",
    "EnFace",
    "EnFaceConfig",
    "NAMED_SLABS",
    "Slab",
    "parse_variant",
    "reconstruct",
    "reconstruct_all",
    "resample_rows",
    "resolve_boundaries",
    "to_native_grid",
    "vessel_contrast",
]

REDUCERS = ("mean", "sum", "max", "min", "median")
VARIANTS = ("full", "retina", "shadow")
PRESETS = {"P1": "full", "P2": "retina", "P3": "shadow"}
BOUNDARY_SOURCES = ("auto", "file", "detect")
EDGES = ("top", "bottom")
#: Boundaries the named variants need.
NEEDED = {"full": (), "retina": ("ILM", "RPE"), "shadow": ("RPE",)}


@dataclass(frozen=True)
class Slab(JsonConfig):
    """A depth slab between two boundaries (names, or ``"top"`` / ``"bottom"``).

    Attributes:
        top, bottom: boundary names (``ILM``, ``RPE``, ``BM`` ... or ``top`` / ``bottom``).
        top_um, bottom_um: offsets in micrometres added to each (positive = deeper).
        reducer: one of ``REDUCERS``.
    """

    top: str = "top"
    bottom: str = "bottom"
    top_um: float = 0.0
    bottom_um: float = 0.0
    reducer: str = "mean"

    def __post_init__(self) -> None:
        check_choice("reducer", self.reducer, REDUCERS)
        for name in ("top", "bottom"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise UsageError(f"slab {name}={v!r}: expected a boundary name, 'top' or 'bottom'")
        for name in ("top_um", "bottom_um"):
            if not np.isfinite(float(getattr(self, name))):
                raise UsageError(f"slab {name}={getattr(self, name)!r}: expected a finite number")

    @property
    def boundaries(self) -> tuple[str, ...]:
        """The boundary names the slab needs (``top`` / ``bottom`` excluded)."""
        return tuple(n for n in (self.top, self.bottom) if n not in EDGES)

    def describe(self) -> str:
        """Compact text, e.g. ``RPE-60um..RPE, mean``."""

        def edge(name: str, um: float) -> str:
            return name if um == 0 else f"{name}{um:+g}um"

        return f"{edge(self.top, self.top_um)}..{edge(self.bottom, self.bottom_um)}, {self.reducer}"


#: OCTA-500's projection slabs (Li et al. 2020), as means over depth like its OCT maps.
NAMED_SLABS = {"ILM-OPL": Slab("ILM", "OPL"), "OPL-BM": Slab("OPL", "BM")}


def parse_variant(spec: str | Slab, shadow_um: float = 60.0) -> tuple[str, Slab]:
    """(name, slab) of a preset (``P1``), a variant (``shadow``) or a slab spec.

    Slab specs read ``TOP[+-UM]:BOTTOM[+-UM][:REDUCER]``, e.g. ``ILM+20:RPE-10:max``;
    such variants are named ``slab``.
    """
    if isinstance(spec, Slab):
        return "slab", spec
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"variant {spec!r}: expected P1, P2, P3, full, retina, shadow or a slab")
    text = spec.strip()
    if text.upper() in NAMED_SLABS:
        return text.upper(), NAMED_SLABS[text.upper()]
    name = PRESETS.get(text.upper(), text.lower())
    if name == "full":
        return name, Slab()
    if name == "retina":
        return name, Slab("ILM", "RPE")
    if name == "shadow":
        if not shadow_um > 0:
            raise UsageError(f"shadow_um={shadow_um!r} is not valid; expected > 0")
        return name, Slab("RPE", "RPE", top_um=-float(shadow_um))
    if ":" not in text:
        valid = ", ".join([*PRESETS, *VARIANTS, *NAMED_SLABS, "TOP[+-UM]:BOTTOM[+-UM][:REDUCER]"])
        raise UsageError(f"variant {spec!r} is not valid; expected one of: {valid}")
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"slab {spec!r}: expected TOP[+-UM]:BOTTOM[+-UM][:REDUCER]")
    top, top_um = _edge(parts[0], spec)
    bottom, bottom_um = _edge(parts[1], spec)
    reducer = parts[2].strip().lower() if len(parts) == 3 else "mean"
    return "slab", Slab(top, bottom, top_um, bottom_um, reducer)


def _edge(text: str, spec: str) -> tuple[str, float]:
    text = text.strip()
    for i in range(1, len(text)):
        if text[i] in "+-":
            name, num = text[:i], text[i:].removesuffix("um")
            try:
                return _edge_name(name), float(num)
            except ValueError:
                break
    if text and all(c.isalnum() or c in "_+-" for c in text) and text[0] not in "+-":
        return _edge_name(text), 0.0
    raise UsageError(f"slab {spec!r}: cannot read {text!r}; expected NAME, NAME+UM or NAME-UM")


def _edge_name(name: str) -> str:
    low = name.strip().lower()
    return low if low in EDGES else name.strip().upper()


@dataclass(frozen=True)
class EnFaceConfig(JsonConfig):
    """How to turn a volume into en-face images.

    Attributes:
        shadow_um: thickness of the ``shadow`` (P3) slab above the RPE, micrometres.
        normalize: per-B-scan and per-column normalisation against striping.
        percentiles: (low, high) percentiles mapped to 0 and 1 by the contrast stretch.
        isotropic: resample the slow axis to the fast axis' spacing.
        boundaries: ``auto`` (the file's when it has those needed, else detected),
            ``file`` (the file's, an error when missing) or ``detect`` (always detect).
    """

    shadow_um: float = 60.0
    normalize: bool = True
    percentiles: tuple[float, float] = (0.5, 99.5)
    isotropic: bool = False
    boundaries: str = "auto"

    def __post_init__(self) -> None:
        check_choice("boundaries", self.boundaries, BOUNDARY_SOURCES)
        if not self.shadow_um > 0:
            raise UsageError(f"shadow_um={self.shadow_um!r} is not valid; expected > 0")
        lo, hi = (float(v) for v in self.percentiles)
        if not 0 <= lo < hi <= 100:
            raise UsageError(
                f"percentiles={self.percentiles!r} is not valid; expected 0 <= low < high <= 100"
            )
        object.__setattr__(self, "percentiles", (lo, hi))


@dataclass(eq=False)
class EnFace:
    """One en-face reconstruction.

    Attributes:
        image: float32 (rows, columns) in [0, 1] after normalisation and stretch.
        raw: float32 (rows, columns), the projection before normalisation and stretch,
            always on the native grid (B-scans x A-scans), in the volume's units.
        variant: ``full``, ``retina``, ``shadow`` or ``slab``; preset: ``P1``..``P3`` or None.
        slab: the slab projected.
        spacing: (row, column) pixel size in mm of ``image``.
        native_shape: (B-scans, A-scans) of the volume.
        meta: stretch range, normalisation, boundary source ...
    """

    image: np.ndarray
    raw: np.ndarray
    variant: str
    preset: str | None
    slab: Slab
    spacing: tuple[float, float]
    native_shape: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def isotropic(self) -> bool:
        return tuple(self.image.shape) != tuple(self.native_shape)

    def to_uint8(self) -> np.ndarray:
        """The image as uint8 (rows, columns)."""
        return np.rint(np.clip(self.image, 0.0, 1.0) * 255).astype(np.uint8)


# ------------------------------------------------------------------------- boundaries


def resolve_boundaries(
    volume: Volume,
    needed: Sequence[str],
    source: str = "auto",
    detect_config: DetectConfig | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The boundaries to project with, and where they came from (``"file"`` / ``"detected"``).

    ``auto`` uses the file's boundaries when all of ``needed`` are there (NaN gaps filled
    from the nearest known A-scan), else detects ILM, RPE and BM; ``file`` insists on the
    file's; ``detect`` always detects.
    """
    check_choice("boundaries", source, BOUNDARY_SOURCES)
    needed = [n for n in needed if n not in EDGES]
    have = volume.boundaries
    if source != "detect" and all(n in have and np.isfinite(have[n]).any() for n in needed):
        return {k: _fill_gaps(v) for k, v in have.items() if np.isfinite(v).any()}, "file"
    if source == "file":
        missing = [n for n in needed if n not in have or not np.isfinite(have[n]).any()]
        found = ", ".join(have) or "none"
        raise InputError(
            f"the file has no {', '.join(missing)} boundary (it has: {found}); "
            "use boundaries='auto' or 'detect'",
            volume.path,
        )
    detected = detect_boundaries(volume, detect_config)
    unknown = [n for n in needed if n not in detected]
    if unknown:
        raise UsageError(
            f"boundary {', '.join(unknown)} is neither in the file nor detected; "
            f"detected boundaries: {', '.join(detected)}"
        )
    # regions without surfaces (NaN: an optic-disc cup, tissue cut off at the top) take
    # the nearest A-scan's depth, as the file's gaps do
    return {k: _fill_gaps(v) for k, v in detected.items() if np.isfinite(v).any()}, "detected"


def _fill_gaps(h: np.ndarray) -> np.ndarray:
    """NaN entries take the value of the nearest finite entry (same B-scan first)."""
    h = np.asarray(h, dtype=np.float32)
    bad = ~np.isfinite(h)
    if not bad.any():
        return h
    from scipy import ndimage

    _, (ir, ic) = ndimage.distance_transform_edt(bad, return_indices=True)
    return h[ir, ic]


# ------------------------------------------------------------------------- projection


def project(volume: Volume, slab: Slab, boundaries: Mapping[str, np.ndarray]) -> np.ndarray:
    """Reduce ``slab`` over depth: float32 (B-scans, A-scans), no normalisation."""
    data = volume.data
    nb, nd, na = data.shape
    if slab.top == "top" and slab.bottom == "bottom" and slab.top_um == slab.bottom_um == 0:
        return _reduce_full(data, slab.reducer)
    um = volume.spacing[1] * 1000.0
    top = _edge_depth(slab.top, boundaries, (nb, na), nd)
    bottom = _edge_depth(slab.bottom, boundaries, (nb, na), nd)
    if slab.top not in EDGES and slab.bottom not in EDGES and slab.top != slab.bottom:
        check_order(top, bottom, slab.top, slab.bottom, volume.path)
    top = top + slab.top_um / um
    bottom = bottom + slab.bottom_um / um
    start = np.clip(np.ceil(top), 0, nd - 1).astype(np.intp)
    end = np.clip(np.ceil(bottom), 1, nd).astype(np.intp)
    empty = end <= start
    if empty.mean() > 0.5:
        raise UsageError(
            f"slab {slab.describe()} is empty in {100 * empty.mean():.0f}% of the A-scans "
            "(its bottom lies above its top); check the offsets"
        )
    end = np.where(empty, np.minimum(start + 1, nd), end)
    start = np.where(end <= start, end - 1, start)
    return _reduce_slab(data, start, end, slab.reducer)


def _edge_depth(
    name: str, boundaries: Mapping[str, np.ndarray], shape: tuple[int, int], nd: int
) -> np.ndarray:
    if name == "top":
        return np.full(shape, -0.5, np.float32)  # the first voxel's upper edge
    if name == "bottom":
        return np.full(shape, nd - 0.5, np.float32)
    if name not in boundaries:
        raise UsageError(
            f"boundary {name!r} is not available; available: {', '.join(boundaries) or 'none'}"
        )
    return np.asarray(boundaries[name], dtype=np.float32)


def _reduce_full(data: np.ndarray, reducer: str) -> np.ndarray:
    if reducer == "mean":
        return data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if reducer == "sum":
        return data.sum(axis=1, dtype=np.float64).astype(np.float32)
    if reducer == "max":
        return data.max(axis=1)
    if reducer == "min":
        return data.min(axis=1)
    return np.median(data, axis=1).astype(np.float32)


def _reduce_slab(
    data: np.ndarray, start: np.ndarray, end: np.ndarray, reducer: str, chunk: int = 16
) -> np.ndarray:
    """Reduce data[b, start:end, a] for every (b, a), B-scans in chunks to bound memory."""
    nb, nd, na = data.shape
    out = np.empty((nb, na), np.float32)
    length = int((end - start).max())
    k = np.arange(length)[None, :, None]
    for b0 in range(0, nb, chunk):
        s = start[b0 : b0 + chunk, None, :]
        n = (end - start)[b0 : b0 + chunk, None, :]
        idx = np.minimum(s + k, nd - 1)
        vals = np.take_along_axis(data[b0 : b0 + chunk], idx, axis=1)
        valid = k < n
        if reducer in ("mean", "sum"):
            total = np.where(valid, vals, 0).sum(axis=1, dtype=np.float64)
            res = total / n[:, 0, :] if reducer == "mean" else total
        elif reducer == "max":
            res = np.where(valid, vals, -np.inf).max(axis=1)
        elif reducer == "min":
            res = np.where(valid, vals, np.inf).min(axis=1)
        else:
            res = np.nanmedian(np.where(valid, vals, np.nan), axis=1)
        out[b0 : b0 + chunk] = res
    return out


# ---------------------------------------------------------------------- post-processing


def normalize_stripes(image: np.ndarray, rows: float = 6.0, columns: float = 8.0) -> np.ndarray:
    """Remove B-scan (row) stripes, then column stripes, keeping vessels and slow trends.

    A row's level is the median, along the row, of its difference to the median column
    profile; its stripe is that level minus a Gaussian-smoothed (``rows`` sigma) version of
    the levels, and is subtracted. Then the same for columns (``columns`` sigma). Medians
    keep vessels out of the levels unless one covers more than half of a row (or column).
    Additive, since OCT intensities are log-compressed, where a gain change is an offset.
    """
    from scipy import ndimage

    img = image.astype(np.float32, copy=True)
    for axis, sigma in ((1, rows), (0, columns)):  # axis along which a level is taken
        if img.shape[1 - axis] < 3:
            continue
        profile = np.median(img, axis=1 - axis, keepdims=True)
        level = np.median(img - profile, axis=axis)
        stripe = level - ndimage.gaussian_filter1d(level, sigma, mode="nearest")
        img -= np.expand_dims(stripe, axis).astype(np.float32)
    return img


def stretch(image: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """Map the ``percentiles`` of ``image`` to 0 and 1 (clipped); return (image, lo, hi)."""
    lo, hi = (float(v) for v in np.percentile(image, percentiles))
    if not hi > lo:
        return np.full(image.shape, 0.5, np.float32), lo, hi
    out = (image - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32), lo, hi


def isotropic_rows(native_rows: int, slow_mm: float, fast_mm: float) -> int:
    """Rows of the isotropic grid: the slow extent over the fast spacing (141 -> 385)."""
    return max(1, int(round(native_rows * slow_mm / fast_mm)))


def resample_rows(image: np.ndarray, rows: int) -> np.ndarray:
    """Linear resampling along axis 0 to ``rows`` rows, pixel centres aligned.

    Output row ``j`` samples input row ``(j + 0.5) * H_in / rows - 0.5`` (clamped), so
    resampling there and back is the identity up to interpolation blur. Works on any
    (H, W, ...) array; float32 out.
    """
    h = image.shape[0]
    pos = np.clip((np.arange(rows) + 0.5) * h / rows - 0.5, 0, h - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, h - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (image.ndim - 1)).astype(np.float32)
    img = image.astype(np.float32, copy=False)
    return img[i0] * (1 - w) + img[i1] * w


def to_native_grid(array: np.ndarray, native_shape: Sequence[int]) -> np.ndarray:
    """Map an (isotropic) en-face array, e.g. a probability map, back to the native grid.

    ``native_shape`` is the sidecar's ``native_shape`` (B-scans, A-scans). Columns must
    match; rows are resampled linearly (the inverse mapping of :func:`resample_rows`).
    """
    arr = np.asarray(array)
    nb, na = (int(v) for v in native_shape)
    if arr.shape[1] != na:
        raise UsageError(f"array has {arr.shape[1]} columns but the native grid has {na} A-scans")
    return arr.astype(np.float32) if arr.shape[0] == nb else resample_rows(arr, nb)


# ----------------------------------------------------------------------------- public


def reconstruct(
    volume: Volume,
    variant: str | Slab = "P1",
    config: EnFaceConfig | None = None,
    *,
    boundaries: Mapping[str, np.ndarray] | None = None,
    detect_config: DetectConfig | None = None,
) -> EnFace:
    """One en-face image of ``volume``.

    Args:
        volume: the volume (B-scans, depth, A-scans).
        variant: ``P1``/``P2``/``P3``, ``full``/``retina``/``shadow``, a slab spec such as
            ``"ILM+20:RPE-10:max"``, or a :class:`Slab`.
        config: normalisation, stretch, grid, shadow thickness, boundary source.
        boundaries: boundaries to use (skips resolving them; e.g. detected once for
            several variants).
        detect_config: parameters of the boundary detection when it runs.

    Raises:
        InputError: a volume with fewer than 2 B-scans or 8 A-scans, or a non-raster scan
            (radial, circular), boundaries that cross.
        UsageError: a bad variant, a slab that is empty, a boundary that is not available.
    """
    return reconstruct_all(
        volume, [variant], config, boundaries=boundaries, detect_config=detect_config
    )[0]


def reconstruct_all(
    volume: Volume,
    variants: Sequence[str | Slab] = ("P1", "P2", "P3"),
    config: EnFaceConfig | None = None,
    *,
    boundaries: Mapping[str, np.ndarray] | None = None,
    detect_config: DetectConfig | None = None,
) -> list[EnFace]:
    """Several en-face images of one volume; boundaries are resolved (detected) once."""
    cfg = config or EnFaceConfig()
    check_enface_volume(volume)
    parsed = [parse_variant(v, cfg.shadow_um) for v in variants]
    needed = sorted({n for _, slab in parsed for n in slab.boundaries})
    source = "given"
    if boundaries is None:
        boundaries, source = (
            resolve_boundaries(volume, needed, cfg.boundaries, detect_config)
            if needed
            else ({}, "none")
        )
    slow, _, fast = volume.spacing
    nb, _, na = volume.shape
    out = []
    for spec, (name, slab) in zip(variants, parsed, strict=True):
        raw = project(volume, slab, boundaries)
        img = normalize_stripes(raw) if cfg.normalize else raw
        rows_mm = slow
        if cfg.isotropic:
            rows = isotropic_rows(nb, slow, fast)
            img = resample_rows(img, rows)
            rows_mm = slow * nb / rows
        image, lo, hi = stretch(img, cfg.percentiles)
        preset = next((p for p, v in PRESETS.items() if v == name), None)
        out.append(
            EnFace(
                image=image,
                raw=raw,
                variant=name,
                preset=preset,
                slab=slab,
                spacing=(rows_mm, fast),
                native_shape=(nb, na),
                meta={
                    "requested": spec if isinstance(spec, str) else slab.describe(),
                    "slab": slab.describe(),
                    "boundary_source": source if slab.boundaries else "none",
                    "normalized": cfg.normalize,
                    "stretch": {"percentiles": list(cfg.percentiles), "range": [lo, hi]},
                },
            )
        )
    return out


def check_enface_volume(volume: Volume) -> None:
    """Refuse volumes that cannot make an en-face image."""
    nb, nd, na = volume.shape
    if nb < 2 or na < 8:
        raise InputError(
            f"volume too small for an en-face image: {nb} B-scans x {na} A-scans; expected at "
            "least 2 B-scans and 8 A-scans (single-line and circle scans have one B-scan)",
            volume.path,
        )
    if volume.meta.get("raster") is False:
        raise InputError(
            f"a {volume.meta.get('scan_pattern', 'non-raster')} scan: its B-scans are not "
            "parallel lines, so it has no en-face image",
            volume.path,
        )


def vessel_contrast(
    image: np.ndarray, vessels: np.ndarray, margin: int = 2, window: int = 21
) -> dict[str, float]:
    """Vessel contrast of an en-face image against the local background (vessels dark).

    Background = pixels farther than ``margin`` pixels from any vessel; its local level at
    every pixel is the mean of the background pixels in a ``window`` x ``window``
    neighbourhood, so slow brightness trends do not count as contrast or as noise.

    Returns:
        ``contrast``: median over vessel pixels of (local background - vessel) / local
        background (Weber contrast);
        ``cnr``: mean (local background - vessel) over the standard deviation of the
        background around its local level.
    """
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float64)
    ves = np.asarray(vessels, dtype=bool)
    if img.shape != ves.shape or not ves.any() or ves.all():
        raise UsageError(
            "vessel_contrast needs an image and a vessel map of the same shape, "
            "with both vessel and background pixels"
        )
    far = ~ndimage.binary_dilation(ves, iterations=margin) if margin > 0 else ~ves
    if not far.any():
        far = ~ves
    w = far.astype(np.float64)
    local = ndimage.uniform_filter(img * w, window, mode="reflect") / np.maximum(
        ndimage.uniform_filter(w, window, mode="reflect"), 1e-12
    )
    diff = local[ves] - img[ves]
    noise = float((img - local)[far].std())
    with np.errstate(divide="ignore", invalid="ignore"):
        weber = float(np.median(diff / local[ves]))
    return {"contrast": weber, "cnr": float(diff.mean()) / (noise + 1e-12)}
