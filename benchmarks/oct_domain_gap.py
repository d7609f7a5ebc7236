"""How the real Spectralis en-face images differ from the phantom's and from octified fundus photos.

Three sources, each as the segmentation model sees it (the 8-bit en-face image, [0, 1]):

- **real**: ``../shared/data/OCT/spectralis_volume`` reconstructed P1, P2, P3 as
  ``octvessel reconstruct`` does (detected surfaces, native grid 145 x 512, 29.8 x 11.2 um
  pixels); vessel mask = the label-free shadow weak mask (:mod:`octvessel.oct.shadows`).
- **phantom**: ``make_volume(seed)`` (141 x 640 x 385, 7 x 7 mm, 49.6 x 18.2 um pixels),
  P1-P3 on detected surfaces; vessel mask = the truth, and also the phantom's own shadow
  weak mask (the like-for-like comparison with the real numbers).
- **choroid** (real and phantom only): the slab 20-150 um under BM, reconstructed like P1-P3;
  no model sees it, it shows the choroidal pattern the phantom models.
- **octify**: DRIVE test photographs through ``octify_sample`` with the default
  ``OctifyConfig`` (one image for every variant: octify has no depth); mask = the label.

Per image (lengths in mm, so the different grids are comparable):

- contrast: Weber ``median((bg - I) / bg)`` over vessel pixels and CNR ``mean(bg - I) /
  std(background)``, the local background ``bg`` = mean of non-vessel pixels (2 px away
  from vessels) in a 0.3 x 0.3 mm box;
- vessel widths: ``2 x`` the physical distance transform on the mask's skeleton (um);
- noise power spectrum of the background (the vessel mask and 2 px around it filled with
  the local background): Hann-windowed periodogram, radially averaged on physical
  frequencies (cycles/mm) up to the smaller Nyquist; power in 1-4 and 4-10 c/mm and the
  log-log slope over 1-10 c/mm;
- stripes: std of the row means minus their Gaussian trend (sigma 3 rows), and its lag-1
  autocorrelation, on the final image and (real, phantom) on the raw projection before
  stripe normalisation, in units of the image's std;
- background texture: std of the band-passed background (Gaussians 0.03 - 0.15 mm, vessels
  and 2 px around them left out); foveal darkening: mean within 0.35 mm of the fovea over
  the mean at 1-2 mm; bright spots: white top-hat (disk of 0.1 mm) > 0.2, 8-connected regions
  of at least 0.002 mm^2, per mm^2;
- borders: mean of the outer 5 px on each side minus the interior mean (20 px in), over
  the interior std (negative = a dark border), and the width of the dark border (lines
  from the edge whose median is under 80 % of the interior median, um).

Octified crops that reach outside the photograph's field of view are left out (their black
corners are not OCT-like either way).

    python benchmarks/oct_domain_gap.py [--seeds 10,11,12] [--drive 10] \
        [--figure docs/img/oct-domain-gap.png] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oct_real_agreement import real_reconstruction, real_shadow
from shared_data import shared_data

from octvessel.data import load_dataset
from octvessel.data.io import read_image
from octvessel.oct import EnFaceConfig, detect_boundaries, reconstruct_all
from octvessel.oct.phantom import make_volume
from octvessel.oct.shadows import shadow_map
from octvessel.sim.octify import OctifyConfig, octify_sample

VARIANTS = ("P1", "P2", "P3")
#: An outer slab the model never sees, for the choroidal pattern: 20-150 um under BM.
CHOROID = "BM+20:BM+150"
BANDS = ((1.0, 4.0), (4.0, 10.0))
BORDER_PX = 5


# ---------------------------------------------------------------------------- measures


def _box(mm: float, spacing: tuple[float, float]) -> tuple[int, int]:
    return tuple(max(3, int(round(mm / s)) | 1) for s in spacing)  # odd sizes


def local_background(image: np.ndarray, mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """(background level, far-from-vessel pixels): mean of pixels 2 px away from vessels, 0.3 mm box."""
    far = ~ndimage.binary_dilation(mask, iterations=2)
    w = far.astype(np.float64)
    size = _box(0.3, spacing)
    bg = ndimage.uniform_filter(image * w, size) / np.maximum(ndimage.uniform_filter(w, size), 1e-9)
    return bg, far


def contrast(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    bg, far = local_background(image, mask, spacing)
    diff = bg[mask] - image[mask]
    noise = float((image - bg)[far].std())
    return {
        "weber": float(np.median(diff / np.maximum(bg[mask], 1e-3))),
        "cnr": float(diff.mean() / (noise + 1e-12)),
    }


def skeleton_widths(
    mask: np.ndarray, spacing: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(skeleton, bool H x W; width map, um: ``2 x`` the physical distance transform).

    ``mask``: bool H x W; ``spacing``: (row, col) mm per pixel. The widths of a mask are
    ``width[skeleton]``.
    """
    from skimage.morphology import skeletonize

    width = 2000.0 * ndimage.distance_transform_edt(mask, sampling=spacing)
    return skeletonize(mask), width


def widths_um(mask: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    if not mask.any():
        return {"median": float("nan"), "p90": float("nan")}
    skeleton, width = skeleton_widths(mask, spacing)
    w = width[skeleton]
    return {"median": float(np.median(w)), "p90": float(np.percentile(w, 90))}


def nps(image: np.ndarray, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies c/mm, radially averaged power, grey^2 mm^2) of the mean-free image."""
    h, w = image.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    x = (image - image.mean()) * win
    p = np.abs(np.fft.fft2(x)) ** 2 * spacing[0] * spacing[1] / (win**2).sum()
    fy = np.fft.fftfreq(h, spacing[0])[:, None]
    fx = np.fft.fftfreq(w, spacing[1])[None, :]
    f = np.hypot(fy, fx)
    top = min(0.5 / spacing[0], 0.5 / spacing[1])
    edges = np.geomspace(0.2, top, 40)
    idx = np.digitize(f.ravel(), edges)
    sums = np.bincount(idx, p.ravel(), len(edges) + 1)[1:-1]
    counts = np.bincount(idx, minlength=len(edges) + 1)[1:-1]
    centres = np.sqrt(edges[1:] * edges[:-1])
    ok = counts > 0
    return centres[ok], sums[ok] / counts[ok]


def nps_numbers(freq: np.ndarray, power: np.ndarray) -> dict[str, float]:
    out = {}
    for lo, hi in BANDS:
        sel = (freq >= lo) & (freq < hi)
        out[f"{lo:g}-{hi:g}"] = (
            float(np.trapezoid(power[sel], freq[sel])) if sel.sum() > 1 else float("nan")
        )
    sel = (freq >= 1) & (freq <= 10)
    out["slope"] = float(np.polyfit(np.log(freq[sel]), np.log(power[sel]), 1)[0])
    return out


def stripes(image: np.ndarray) -> dict[str, float]:
    r = image.mean(axis=1)
    res = r - ndimage.gaussian_filter1d(r, 3.0, mode="nearest")
    c = np.corrcoef(res[:-1], res[1:])[0, 1]
    return {"std_rel": float(res.std() / (image.std() + 1e-12)), "lag1": float(c)}


def texture(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float]) -> float:
    s1 = [0.03 / s for s in spacing]
    s2 = [0.15 / s for s in spacing]
    band = ndimage.gaussian_filter(image, s1) - ndimage.gaussian_filter(image, s2)
    far = ~ndimage.binary_dilation(mask, iterations=2)
    return float(band[far].std())


def fovea_ratio(image: np.ndarray, fovea: tuple[float, float] | None, spacing) -> float:
    if fovea is None:
        return float("nan")
    yy, xx = np.indices(image.shape)
    r = np.hypot((yy - fovea[0]) * spacing[0], (xx - fovea[1]) * spacing[1])
    return float(image[r < 0.35].mean() / image[(r > 1.0) & (r < 2.0)].mean())


def bright_spots(image: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    ry, rx = (max(0.1 / s, 1.0) for s in spacing)
    y = np.arange(-int(ry), int(ry) + 1)[:, None] / ry
    x = np.arange(-int(rx), int(rx) + 1)[None, :] / rx
    smooth = ndimage.gaussian_filter(image, [0.02 / s for s in spacing])
    th = ndimage.white_tophat(smooth, footprint=(y**2 + x**2) <= 1)
    lab, n = ndimage.label(th > 0.15, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())[1:] * spacing[0] * spacing[1]
    keep = sizes >= 0.005
    area = image.size * spacing[0] * spacing[1]
    return {"per_mm2": float(keep.sum() / area), "area_pct": float(100 * sizes[keep].sum() / area)}


def borders(image: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    b = BORDER_PX
    inner = image[20:-20, 20:-20]
    m, s = inner.mean(), inner.std() + 1e-12
    sides = {"left": image[:, :b], "right": image[:, -b:], "top": image[:b], "bottom": image[-b:]}
    out = {k: float((v.mean() - m) / s) for k, v in sides.items()}
    # dark-border width: lines from each edge whose median is under 80 % of the interior's
    level = np.median(inner)
    profiles = {
        "left": np.median(image, axis=0), "right": np.median(image, axis=0)[::-1],
        "top": np.median(image, axis=1), "bottom": np.median(image, axis=1)[::-1],
    }  # fmt: skip
    for k, prof in profiles.items():
        dark = prof < 0.8 * level
        n = int(np.argmin(dark)) if not dark.all() else len(dark)
        out[f"{k}_dark_um"] = n * 1000.0 * (spacing[1] if k in ("left", "right") else spacing[0])
    return out


def measure(image, mask, spacing, fovea=None, raw=None) -> dict[str, Any]:
    bg, far = local_background(image, mask, spacing)
    f, p = nps(np.where(far, image, bg), spacing)  # the background's spectrum: vessels filled in
    out = {
        "contrast": contrast(image, mask, spacing),
        "widths_um": widths_um(mask, spacing),
        "nps": nps_numbers(f, p),
        "stripes": stripes(image),
        "texture": texture(image, mask, spacing),
        "fovea_ratio": fovea_ratio(image, fovea, spacing),
        "spots": bright_spots(image, spacing),
        "borders": borders(image, spacing),
        "_nps_curve": (f, p),
        "_rows": image.mean(axis=1),
        "_cols": np.median(image, axis=0),
    }
    if raw is not None:
        out["stripes_raw"] = stripes(raw)
    return out


# ----------------------------------------------------------------------------- sources


def real_source(work: Path) -> list[dict[str, Any]]:
    recon, sidecar = real_reconstruction(None, work)
    sm, vol = real_shadow(recon, sidecar)
    surfaces = {
        k: v for k, v in np.load(recon / sidecar["surfaces"]["file"]).items() if k != "confidence"
    }
    raws = reconstruct_all(vol, VARIANTS, EnFaceConfig(normalize=False), boundaries=surfaces)
    names = {e["preset"]: k for k, e in sidecar["images"].items()}
    fovea = (sidecar["qc"]["fovea_bscan"], sidecar["qc"]["fovea_ascan"])
    out = []
    for v, raw in zip(VARIANTS, raws, strict=True):
        img = read_image(recon / names[v])[..., 0].astype(np.float64)
        m = measure(img, sm.mask, sm.spacing, fovea, raw.raw.astype(np.float64))
        out.append({"source": "real", "variant": v, "mask": "weak", "image": img, **m})
    ch = reconstruct_all(vol, [CHOROID], EnFaceConfig(), boundaries=surfaces)[0]
    img = ch.to_uint8().astype(np.float64) / 255.0
    m = measure(img, sm.mask, sm.spacing, fovea, ch.raw.astype(np.float64))
    out.append({"source": "real", "variant": "choroid", "mask": "weak", "image": img, **m})
    return out


def phantom_source(seeds: list[int]) -> list[dict[str, Any]]:
    out = []
    for seed in seeds:
        ph = make_volume(seed=seed)
        det = detect_boundaries(ph.volume)
        weak = shadow_map(ph.volume, det).mask
        spacing = (ph.volume.spacing[0], ph.volume.spacing[2])
        imgs = reconstruct_all(ph.volume, [*VARIANTS, CHOROID], EnFaceConfig(), boundaries=det)
        for v, e in zip([*VARIANTS, "choroid"], imgs, strict=True):
            img = e.to_uint8().astype(np.float64) / 255.0
            m = measure(img, ph.vessels, spacing, ph.fovea, e.raw.astype(np.float64))
            m["contrast_weak"] = contrast(img, weak, spacing)
            m["widths_weak_um"] = widths_um(weak, spacing)
            out.append(
                {
                    "source": "phantom",
                    "variant": v,
                    "mask": "truth",
                    "seed": seed,
                    "image": img,
                    **m,
                }
            )
    return out


def octify_source(n: int) -> list[dict[str, Any]]:
    drive = shared_data() / "DRIVE"
    if not drive.is_dir():
        print(f"skip octify: {drive} is absent")
        return []
    cfg = OctifyConfig()
    samples = [s for s in load_dataset(drive) if s.split == "test"][:n]
    out = []
    for i, s in enumerate(samples):
        rng = np.random.default_rng(np.random.SeedSequence([0, i]))
        for c in octify_sample(s, cfg, rng):
            if not c.fov.all():  # crops reaching outside the FOV: their black corners are no OCT
                continue
            img = c.image[..., 0].astype(np.float64)
            img = np.rint(img * 255) / 255.0  # as written to 8-bit files
            m = measure(img, c.label, cfg.spacing)
            out.append(
                {
                    "source": "octify",
                    "variant": "all",
                    "mask": "label",
                    "name": c.name,
                    "image": img,
                    **m,
                }
            )
    return out


# ------------------------------------------------------------------------------ report


def _get(r: dict[str, Any], path: str) -> float:
    v: Any = r
    for k in path.split("."):
        v = v.get(k, float("nan")) if isinstance(v, dict) else float("nan")
    return float(v)


ROWS = [
    ("Weber contrast", "contrast.weber"),
    ("CNR", "contrast.cnr"),
    ("Weber, shadow mask", "contrast_weak.weber"),
    ("CNR, shadow mask", "contrast_weak.cnr"),
    ("width median um", "widths_um.median"),
    ("width p90 um", "widths_um.p90"),
    ("width median um, shadow mask", "widths_weak_um.median"),
    ("NPS 1-4 c/mm (x1e-3)", "nps.1-4"),
    ("NPS 4-10 c/mm (x1e-3)", "nps.4-10"),
    ("NPS slope 1-10 c/mm", "nps.slope"),
    ("row stripes / std", "stripes.std_rel"),
    ("row stripes lag-1 r", "stripes.lag1"),
    ("raw row stripes / std", "stripes_raw.std_rel"),
    ("background texture (grey)", "texture"),
    ("fovea / 1-2 mm ring", "fovea_ratio"),
    ("bright spots per mm2", "spots.per_mm2"),
    ("bright spot area %", "spots.area_pct"),
    ("border left (z)", "borders.left"),
    ("border right (z)", "borders.right"),
    ("border top (z)", "borders.top"),
    ("border bottom (z)", "borders.bottom"),
    ("dark border left um", "borders.left_dark_um"),
    ("dark border right um", "borders.right_dark_um"),
    ("dark border top um", "borders.top_dark_um"),
    ("dark border bottom um", "borders.bottom_dark_um"),
]


def summary(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(f"{r['source']} {r['variant']}", []).append(r)
    table = {}
    for g, rs in groups.items():
        row = {}
        for label, path in ROWS:
            vals = np.array([_get(r, path) for r in rs])
            if path.startswith("nps.1") or path.startswith("nps.4"):
                vals = vals * 1e3
            row[label] = float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")
        row["n"] = len(rs)
        table[g] = row
    return table


def print_table(table: dict[str, dict[str, float]]) -> None:
    cols = list(table)
    print("| measure | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    print("| images | " + " | ".join(str(table[c]["n"]) for c in cols) + " |")
    for label, _ in ROWS:
        cells = [table[c][label] for c in cols]
        print(
            f"| {label} | "
            + " | ".join("-" if not np.isfinite(x) else f"{x:.3g}" for x in cells)
            + " |"
        )


def figures(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pick(source, variant, k=0):
        rs = [r for r in results if r["source"] == source and r["variant"] == variant]
        return rs[k] if len(rs) > k else None

    shown = [pick("real", "P1"), pick("real", "P3"), pick("phantom", "P1"), pick("phantom", "P3"),
             pick("octify", "all", 0), pick("octify", "all", 3),
             pick("real", "choroid"), pick("phantom", "choroid")]  # fmt: skip
    titles = [
        "real P1",
        "real P3",
        "phantom P1 (seed %s)",
        "phantom P3 (seed %s)",
        "octified DRIVE %s",
        "octified DRIVE %s",
        f"real, choroid slab {CHOROID} (not a model input)",
        f"phantom (seed %s), choroid slab {CHOROID}",
    ]
    fig, axes = plt.subplots(4, 2, figsize=(12, 14.5))
    for ax, r, t in zip(axes.ravel(), shown, titles, strict=True):
        if r is None:
            ax.axis("off")
            continue
        h, w = r["image"].shape
        sp = (5.72 / w, 4.32 / h) if r["source"] == "real" else (7.0 / w, 7.0 / h)
        ax.imshow(r["image"], cmap="gray", vmin=0, vmax=1, extent=(0, w * sp[0], h * sp[1], 0))
        label = r.get("seed", r.get("name", ""))
        ax.set_title(t % label if "%s" in t else t, fontsize=9)
        ax.set_xlabel("mm")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)

    stats = path.with_name(path.stem + "-stats.png")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {"real": "k", "phantom": "tab:blue", "octify": "tab:orange"}
    styles = {"P1": "-", "P2": "--", "P3": ":", "all": "-", "choroid": "-."}
    seen = set()
    for r in results:
        key = (r["source"], r["variant"])
        first = key not in seen
        seen.add(key)
        f, p = r["_nps_curve"]
        axes[0].loglog(f, p, color=colours[r["source"]], ls=styles[r["variant"]], lw=0.8 if not first else 1.4,
                       alpha=1.0 if first else 0.25, label=f"{r['source']} {r['variant']}" if first else None)  # fmt: skip
        if first:
            rows = r["_rows"] - ndimage.gaussian_filter1d(r["_rows"], 3.0, mode="nearest")
            axes[1].plot(np.linspace(0, 1, len(rows)), rows + 0.06 * list(colours).index(r["source"]),
                         color=colours[r["source"]], ls=styles[r["variant"]], lw=0.8,
                         label=f"{r['source']} {r['variant']}")  # fmt: skip
            cols = r["_cols"]
            n = 30
            axes[2].plot(
                np.arange(n), cols[:n], color=colours[r["source"]], ls=styles[r["variant"]], lw=1
            )
            axes[2].plot(
                np.arange(n) + n + 5,
                cols[-n:],
                color=colours[r["source"]],
                ls=styles[r["variant"]],
                lw=1,
            )
    axes[0].set_xlabel("spatial frequency (cycles/mm)")
    axes[0].set_ylabel("power (grey^2 mm^2)")
    axes[0].set_title("noise power spectrum (radial mean)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("position along the slow axis (fraction)")
    axes[1].set_ylabel("row mean - trend (offset per source)")
    axes[1].set_title("B-scan stripes (final images)")
    axes[1].legend(fontsize=7)
    axes[2].set_title("column medians: first 30 | last 30 columns")
    axes[2].set_xlabel("column from the left edge | to the right edge")
    axes[2].set_ylabel("grey (0-1)")
    fig.tight_layout()
    fig.savefig(stats, dpi=80)
    plt.close(fig)
    print(f"figures -> {path}, {stats}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="10,11,12", help="phantom seeds")
    ap.add_argument("--drive", type=int, default=20, help="DRIVE test images to octify")
    ap.add_argument("--figure", type=Path, help="image figure (PNG); -stats.png beside it")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import tempfile

    print(f"load average {os.getloadavg()[0]:.2f} (the machine may be shared)")
    with tempfile.TemporaryDirectory() as tmp:
        results = real_source(Path(tmp))
    results += phantom_source([int(s) for s in args.seeds.split(",") if s])
    results += octify_source(args.drive)
    table = summary(results)
    print_table(table)
    if args.figure:
        figures(results, args.figure)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
