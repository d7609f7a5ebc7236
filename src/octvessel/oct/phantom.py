"""Synthetic OCT volumes of a macular raster scan with known layers and vessels.

The model, in physical units (mm, micrometres), one B-scan at a time:

- Layers: Bruch's membrane (BM) is a bowl (eye curvature) with a random tilt; the other
  interfaces are stacked above it with thickness maps that depend on the distance to the
  fovea (inner layers thin to zero in the foveal pit, the outer nuclear layer and outer
  segments thicken), and the choroid and sclera below. Thicknesses and relative
  reflectivities follow typical spectral-domain OCT of a healthy macula: bright RNFL, IPL,
  OPL, ellipsoid zone and RPE (the brightest band), dark INL and ONL, a textured choroid.
- Vessels: a branching, tapering tree (:func:`octvessel.sim.vessels.vessel_geometry`,
  Murray's-law widths) grown on an isotropic en-face grid from the optic disc at the nasal
  edge, bending around the foveal avascular zone. Each vessel is a tube in the inner
  retina just under the ILM: bright walls, a speckled lumen, and a shadow below it from
  the light blood absorbs on the way down and back, ``exp(-2 mu L)`` with ``L`` the chord
  through the tube, reaching through the outer retina, RPE and choroid.
- Acquisition: linear reflectivity x multiplicative speckle (gamma, ``speckle_looks``) +
  an exponential noise floor, log-compressed to display intensities in [0, 1] over
  ``dynamic_range_db``; depth roll-off, lateral vignetting, per-B-scan gain changes and
  small axial motion shifts (a random walk over B-scans).

Ground truth: every boundary as a height map (B-scans x A-scans, samples, the
voxel-centre convention of :mod:`octvessel.oct.volume`) and the vessel map on the native
en-face grid (one row per B-scan): a pixel is vessel when its B-scan line passes through a
vessel at that A-scan (coverage >= 0.5 after sampling the isotropic tree at the B-scan's
position).

The numbers are plausible, not fitted to any device; the phantom tests the pipeline and
gives a segmenter something OCT-like, it is not a model of any patient.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from octvessel.errors import UsageError
from octvessel.oct.phantom_config import PhantomConfig
from octvessel.oct.phantom_geometry import layer_surfaces, vessel_maps
from octvessel.oct.phantom_render import LEVELS, choroid_texture, render_bscan
from octvessel.oct.volume import Volume
from octvessel.sim.octify import side_falloff

__all__ = ["LEVELS", "Phantom", "PhantomConfig", "make_volume", "write_dataset"]


@dataclass(eq=False)
class Phantom:
    """A phantom volume and its ground truth.

    Attributes:
        volume: the volume (float32 (B-scans, depth, A-scans) in [0, 1]); no boundaries, as
            from a device export without segmentation.
        boundaries: true height maps, name -> float32 (B-scans, A-scans) in samples:
            ILM, RNFL, GCL, IPL, INL, OPL, ELM, EZ, RPE (centre of the RPE band), BM, and CHO when the
            choroid ends inside the image.
        vessels: bool (B-scans, A-scans) en-face vessel ground truth (native grid).
        coverage: float32 (B-scans, A-scans), vessel coverage in [0, 1] before thresholding.
        diameter_um: float32 (B-scans, A-scans), vessel diameter (0 off vessels).
        fovea: (row, col) of the fovea on the native grid (pixels).
        config, seed: what made it.
        centrelines: the vessel tree's true centre lines on the isotropic grid it grew on
            (:func:`octvessel.sim.vessels.vessel_centrelines`, plus ``iso_shape``);
            :func:`octvessel.morphometry.phantom_truth` turns them into true morphometry.
    """

    volume: Volume
    boundaries: dict[str, np.ndarray]
    vessels: np.ndarray
    coverage: np.ndarray
    diameter_um: np.ndarray
    fovea: tuple[float, float]
    config: PhantomConfig
    seed: int
    centrelines: dict | None = None

    def with_truth(self) -> Volume:
        """The volume carrying the true boundaries (as a file with segmentation would)."""
        return self.volume.with_boundaries(self.boundaries)


def make_volume(config: PhantomConfig | None = None, seed: int = 0, **overrides: Any) -> Phantom:
    """Make one deterministic phantom (same config and seed -> identical arrays).

    Args:
        config: size and model parameters (default: 141 x 640 x 385, 7 x 7 mm).
        seed: random seed.
        **overrides: fields of :class:`PhantomConfig` to change, e.g. ``bscans=16``.

    Raises:
        UsageError: bad parameters, or a retina that does not fit in the depth range.
    """
    cfg = config or PhantomConfig()
    if overrides:
        cfg = PhantomConfig.from_dict({**cfg.to_dict(), **overrides})
    cfg.check_fits()
    rng = np.random.default_rng(seed)
    nb, nd, na = cfg.bscans, cfg.depth, cfg.ascans
    slow_mm, axial_mm, fast_mm = cfg.spacing
    laterality = cfg.laterality or ("OD" if rng.random() < 0.5 else "OS")
    fov = cfg.fovea or (0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03))

    # en-face coordinates (mm) of every (B-scan, A-scan), relative to the fovea
    y = (np.arange(nb) + 0.5) * slow_mm - fov[0] * cfg.field_mm[0]
    x = (np.arange(na) + 0.5) * fast_mm - fov[1] * cfg.field_mm[1]
    yy, xx = np.meshgrid(y, x, indexing="ij")
    nasal = xx if laterality == "OD" else -xx  # OD: disc to the right of the fovea
    surfaces = layer_surfaces(cfg, rng, yy, xx, nasal)

    geometry = vessel_maps(cfg, rng, seed, fov, laterality)
    top = surfaces["ILM"] + (5.0 / cfg.axial_um)
    data = np.empty((nb, nd, na), np.float32)
    gain_db = rng.normal(0, cfg.gain_jitter_db, nb)
    vignette_db = -cfg.vignetting_db * (xx**2 + yy**2) / (0.25 * sum(f**2 for f in cfg.field_mm))
    if cfg.edge_falloff_db > 0:  # the dark side edges of real scans (a lateral gain)
        vignette_db = vignette_db - cfg.edge_falloff_db * side_falloff(na, fast_mm, rng)[None, :]
    texture = cfg.choroid_texture * choroid_texture(rng, nb, na)
    inner = ndimage.gaussian_filter(rng.normal(0, 1, (nb, na)), (1.5, 4.0), mode="reflect")
    inner = (cfg.inner_texture * inner / (np.abs(inner).max() + 1e-9)).astype(np.float32)
    z = np.arange(nd, dtype=np.float32)[:, None]
    rolloff_db = (-cfg.rolloff_db_per_mm * axial_mm * z).astype(np.float32)
    surf32 = {k: v.astype(np.float32) for k, v in surfaces.items()}
    top = top.astype(np.float32)
    for b in range(nb):
        extra_db = (rolloff_db + (vignette_db[b] + gain_db[b]).astype(np.float32)).astype(
            np.float32
        )
        data[b] = render_bscan(
            cfg, rng, z, {k: v[b] for k, v in surf32.items()}, top[b],
            geometry["chord_um"][b], texture[b], inner[b], extra_db,
        )  # fmt: skip
    truth = {k: v.astype(np.float32) for k, v in surfaces.items() if not k.startswith("_")}
    if truth["CHO"].max() >= nd:
        del truth["CHO"]
    volume = Volume(
        data=data,
        spacing=cfg.spacing,
        laterality=laterality,
        meta={"format": "phantom", "spacing_source": "file", "seed": seed},
    )
    fovea_px = (fov[0] * nb - 0.5, fov[1] * na - 0.5)
    return Phantom(
        volume=volume,
        boundaries=truth,
        vessels=geometry["coverage"] >= 0.5,
        coverage=geometry["coverage"].astype(np.float32),
        diameter_um=geometry["diameter_um"].astype(np.float32),
        fovea=fovea_px,
        config=cfg,
        seed=seed,
        centrelines=geometry["centrelines"],
    )


# ----------------------------------------------------------------------------- dataset


def write_dataset(
    out: str | Path,
    n: int = 4,
    seed: int = 0,
    config: PhantomConfig | None = None,
    *,
    prefix: str = "phantom",
    volumes: bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Write ``n`` phantoms as a CAVRI-C-style labelled dataset (and their volumes).

    Layout (``load_dataset(out, variant="P1"|"P2"|"P3")`` reads it)::

        images/<name>_fundus_P1.bmp, _P2.bmp, _P3.bmp   8-bit en-face, native grid
        manual/<name>_fundus_ref.bmp                     vessel ground truth {0, 255}
        mask/<name>_mask.bmp                             field of view (all of it)
        volumes/<name>.npz                               uint8 volume, spacing, true
                                                         boundaries, vessels (optional)
        dataset.json                                     format, spacing, generator, stats

    The en-face images are made as ``octvessel reconstruct --boundaries detect`` makes them
    from a volume without segmentation (the detected, not the true, boundaries), so they
    carry the detector's errors as real reconstructions would; dataset.json records those
    errors and the vessel contrast of each variant.

    Raises:
        UsageError: bad ``n`` or ``prefix``.
        InputError: an output exists and ``overwrite`` is False (checked before any work).
    """
    from octvessel.atomic import check_writable, write_json
    from octvessel.oct.files import write_dataset_sample

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n={n!r} is not valid; expected a positive integer")
    if not prefix or not prefix.replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"prefix={prefix!r}: expected letters, digits, '_' or '-'")
    cfg = config or PhantomConfig()
    cfg.check_fits()
    root = Path(out)
    width = max(3, len(str(n - 1)))
    names = [f"{prefix}_{i:0{width}d}" for i in range(n)]
    targets = [root / "dataset.json"]
    for name in names:
        targets += [root / "images" / f"{name}_fundus_{v}.bmp" for v in ("P1", "P2", "P3")]
        targets += [root / "manual" / f"{name}_fundus_ref.bmp", root / "mask" / f"{name}_mask.bmp"]
        if volumes:
            targets.append(root / "volumes" / f"{name}.npz")
    for t in targets:
        check_writable(t, overwrite)
    samples = []
    for i, name in enumerate(names):
        if progress:
            progress(i, n, name)
        sample_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        ph = make_volume(cfg, seed=sample_seed)
        samples.append(write_dataset_sample(root, name, ph, volumes=volumes, overwrite=overwrite))
    slow, _, fast = cfg.spacing
    info = {
        "format": "cavri",
        "spacing": [slow, fast],
        "generator": {
            "what": "octvessel.oct.phantom",
            "seed": seed,
            "n": n,
            "config": json.loads(json.dumps(cfg.to_dict())),
        },
        "samples": samples,
    }
    write_json(root / "dataset.json", info, overwrite)
    if progress:
        progress(n, n, "done")
    return info
