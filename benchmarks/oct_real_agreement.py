"""Agreement of an OCT vessel model with the label-free shadow map on the real Spectralis volume.

No real OCT volume here has vessel labels. This script scores a model against the weak
vessel mask made from the vessels' own shadows (:mod:`octvessel.oct.shadows`, no network),
so that a new model can be compared with today's on the same real volume:

1. Reconstructs ``../shared/data/OCT/spectralis_volume`` as ``octvessel reconstruct
   --variant P1,P2,P3`` does (detected surfaces, native grid, into a temporary folder, or
   ``--recon`` = an existing reconstruct output folder) and predicts each BMP with the model
   as ``octvessel predict`` does (``Predictor.predict_file``).
2. Makes the weak mask from ``NAME_surfaces.npz`` (slab EZ..BM).
3. Per variant and per part of the volume (all B-scans; 1-99, development; 100-145,
   **held out** for any future training on this volume, reported separately): AUC of the
   probability against the weak mask, Dice and recall of the weak mask at threshold 0.5,
   the predicted vessel fraction; between variants: Dice of the 0.5 masks (also without
   the 5 px border band) and the correlation of the probabilities; the border measure:
   share of predicted vessel pixels within 5 px of the image border, against the weak
   mask's share and the border band's share of the area.
4. ``--phantom-seeds``: the same numbers on phantoms, where the truth is known, to show
   what the proxy says about a model that is right (and the shadow map's own AUC against
   the truth).

    python benchmarks/oct_real_agreement.py [--model iternet-oct] [--recon DIR] \
        [--phantom-seeds 10,11,12] [--json OUT.json] [--figure docs/img/oct-real-agreement.png] \
        [--shadow-figure docs/img/oct-shadows.png]

B-scan numbers are 1-based (the file names ``bscans/N-Input.tif``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from shared_data import shared_data

from octvessel.inference import InferenceConfig
from octvessel.metrics import auc_roc
from octvessel.oct import EnFaceConfig, detect_boundaries, read_volume, reconstruct_all
from octvessel.oct.files import write_reconstructions
from octvessel.oct.phantom import make_volume
from octvessel.oct.shadows import (
    ShadowConfig,
    ShadowMap,
    border_band,
    border_share,
    load_surfaces,
    shadow_map,
)

VARIANTS = ("P1", "P2", "P3")
PAIRS = tuple(itertools.combinations(VARIANTS, 2))  # (P1, P2), (P1, P3), (P2, P3)
#: 1-based inclusive B-scan ranges of the real volume; "held_out" stays out of any training.
PARTS = {"all": (1, 145), "dev": (1, 99), "held_out": (100, 145)}
BORDER_PX = 5


def spectralis_dir() -> Path:
    return shared_data() / "OCT" / "spectralis_volume"


def real_reconstruction(recon: Path | None, work: Path) -> tuple[Path, dict[str, Any]]:
    """(folder, sidecar) of the P1-P3 reconstruction of the real volume (made if needed)."""
    src = spectralis_dir()
    if recon is None:
        if not src.is_dir():
            sys.exit(f"skip: {src} is absent (the shared real data)")
        vol = read_volume(src)
        recon = work / "recon"
        write_reconstructions(vol, recon, prefix="spectralis_volume", variants=VARIANTS)
    sidecars = sorted(recon.glob("*_enface.json"))
    if len(sidecars) != 1:
        sys.exit(f"{recon}: expected one *_enface.json (a reconstruct output folder)")
    return recon, json.loads(sidecars[0].read_text())


def variant_files(sidecar: dict[str, Any]) -> dict[str, str]:
    """Variant preset (P1, P2, P3) -> its image file name in a reconstruct sidecar."""
    return {e["preset"]: k for k, e in sidecar["images"].items() if e.get("preset")}


def real_shadow(
    recon: Path, sidecar: dict[str, Any], config: ShadowConfig | None = None
) -> tuple[ShadowMap, Any]:
    """Shadow map of the real volume on the reconstruction's surfaces; and the volume."""
    vol = read_volume(sidecar["source"])
    surfaces = load_surfaces(recon / sidecar["surfaces"]["file"])
    return shadow_map(vol, surfaces, config), vol


def agreement(
    probs: dict[str, np.ndarray], weak: np.ndarray, rows: slice | None = None
) -> dict[str, Any]:
    """Numbers of one model's P1-P3 probabilities against one weak mask (same grid).

    Between variants, ``dice_inner`` leaves out the band within ``BORDER_PX`` of the image
    border: false positives along the border, which all variants share, raise the plain
    Dice without any vessel being found."""
    rows = rows or slice(None)
    w = weak[rows]
    inner = ~border_band(weak.shape, BORDER_PX)[rows]
    out: dict[str, Any] = {"weak_fraction": float(w.mean())}
    masks = {}
    for v, p in probs.items():
        p = p[rows]
        m = p >= 0.5
        masks[v] = m
        inter = float((m & w).sum())
        out[v] = {
            "auc_vs_weak": auc_roc(p, w) if w.any() and not w.all() else float("nan"),
            "dice_vs_weak": 2 * inter / max(float(m.sum() + w.sum()), 1.0),
            "weak_recall": inter / max(float(w.sum()), 1.0),
            "vessel_fraction": float(m.mean()),
        }
    for a, b in PAIRS:
        if a in masks and b in masks:
            ma, mb = masks[a], masks[b]
            ia, ib = ma & inner, mb & inner
            out[f"{a}-{b}"] = {
                "dice": 2 * float((ma & mb).sum()) / max(float(ma.sum() + mb.sum()), 1.0),
                "dice_inner": 2 * float((ia & ib).sum()) / max(float(ia.sum() + ib.sum()), 1.0),
                "prob_corr": float(
                    np.corrcoef(probs[a][rows].ravel(), probs[b][rows].ravel())[0, 1]
                ),
            }
    return out


def border_numbers(probs: dict[str, np.ndarray], weak: np.ndarray) -> dict[str, float]:
    out = {
        "area": float(border_band(weak.shape, BORDER_PX).mean()),
        "weak": border_share(weak, BORDER_PX),
    }
    for v, p in probs.items():
        out[v] = border_share(p >= 0.5, BORDER_PX)
    return out


def phantom_numbers(
    predictor: Any, seeds: list[int], config: ShadowConfig | None = None
) -> list[dict[str, Any]]:
    """Per phantom: shadow-map AUC vs truth, weak-mask quality, model vs truth and vs weak."""
    rows = []
    for seed in seeds:
        ph = make_volume(seed=seed)
        det = detect_boundaries(ph.volume)
        sm = shadow_map(ph.volume, det, config)
        t = ph.vessels
        inter = float((sm.mask & t).sum())
        row: dict[str, Any] = {
            "seed": seed,
            "shadow_auc_vs_truth": auc_roc(sm.depth, t),
            "weak_precision": inter / max(float(sm.mask.sum()), 1.0),
            "weak_recall": inter / float(t.sum()),
            "weak_dice": 2 * inter / float(sm.mask.sum() + t.sum()),
        }
        if predictor is not None:
            images = reconstruct_all(ph.volume, VARIANTS, EnFaceConfig(), boundaries=det)
            probs = {
                v: predictor.predict_array(e.to_uint8().astype(np.float32)[..., None] / 255.0)
                for v, e in zip(VARIANTS, images, strict=True)
            }
            row["model_auc_vs_truth"] = {v: auc_roc(p, t) for v, p in probs.items()}
            row["agreement"] = agreement(probs, sm.mask)
            row["border"] = border_numbers(probs, sm.mask)
        rows.append(row)
    return rows


def figure(path: Path, images: dict[str, np.ndarray], probs, sm: ShadowMap, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    aspect = sm.spacing[0] / sm.spacing[1]
    held = PARTS["held_out"][0] - 1.5  # the line between B-scans 99 and 100 (0-based rows)
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.6))
    panels = [("shadow depth (EZ..BM), weak mask outlined", None)] + [
        (f"{v}: model >= 0.5 red, weak mask green, both yellow", v) for v in probs
    ]
    for ax, (name, v) in zip(axes.ravel(), panels, strict=True):
        if v is None:
            ax.imshow(
                sm.depth, cmap="gray_r", aspect=aspect, vmin=0, vmax=np.percentile(sm.depth, 99.5)
            )
            ax.contour(sm.mask, levels=[0.5], colors="lime", linewidths=0.5)
        else:
            g = images[v].astype(np.float32) / 255.0
            m = probs[v] >= 0.5
            rgb = np.stack([g, g, g], -1) * 0.75
            rgb[m & ~sm.mask] = (1, 0.1, 0.1)
            rgb[sm.mask & ~m] = (0.1, 0.9, 0.1)
            rgb[m & sm.mask] = (1, 0.95, 0.1)
            ax.imshow(rgb, aspect=aspect)
        ax.axhline(held, color="cyan", lw=0.8, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("A-scan")
        ax.set_ylabel("B-scan (0-based)")
    fig.suptitle(f"{title}; below the dashed line: B-scans 100-145, held out", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def shadow_figure(path: Path, sm: ShadowMap, seed: int) -> None:
    """The shadow depth of the real volume and of a phantom, weak mask and truth outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ph = make_volume(seed=seed)
    psm = shadow_map(ph.volume, detect_boundaries(ph.volume))
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for row, (m, truth, name, extent) in enumerate(
        (
            (sm, None, "real Spectralis", (0, 5.72, 4.32, 0)),
            (psm, ph.vessels, f"phantom seed {seed}", (0, 7.0, 7.0, 0)),
        )
    ):
        vmax = np.percentile(m.depth, 99.5)
        axes[row, 0].imshow(m.depth, cmap="gray_r", vmin=0, vmax=vmax, extent=extent)
        axes[row, 0].set_title(f"{name}: shadow depth (EZ..BM, closing - image)", fontsize=9)
        axes[row, 1].imshow(m.mask, cmap="gray", extent=extent)
        if truth is not None:
            ys = np.linspace(0, extent[2], truth.shape[0])
            xs = np.linspace(0, extent[1], truth.shape[1])
            axes[row, 1].contour(xs, ys, truth, levels=[0.5], colors="red", linewidths=0.4)
        note = ", truth outlined red" if truth is not None else ""
        axes[row, 1].set_title(f"{name}: weak mask (z > {m.config.threshold:g}){note}", fontsize=9)
        for ax in axes[row]:
            ax.set_xlabel("mm")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fmt(x: float) -> str:
    return "  nan" if not np.isfinite(x) else f"{x:.3f}"


def print_agreement(label: str, a: dict[str, Any]) -> None:
    print(f"  {label}: weak-mask fraction {a['weak_fraction']:.3f}")
    for v in VARIANTS:
        r = a[v]
        print(
            f"    {v}: AUC vs weak {_fmt(r['auc_vs_weak'])}  Dice@0.5 {_fmt(r['dice_vs_weak'])}  "
            f"weak recall {_fmt(r['weak_recall'])}  vessel fraction {r['vessel_fraction']:.3f}"
        )
    pairs = [k for k in a if "-" in k]
    print(
        "    between variants: "
        + "  ".join(
            f"{k} Dice {a[k]['dice']:.3f} (inner {a[k]['dice_inner']:.3f}) r {a[k]['prob_corr']:.3f}"
            for k in pairs
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="iternet-oct", help="shipped name, run folder or bundle")
    ap.add_argument("--recon", type=Path, help="an existing `reconstruct` output folder")
    ap.add_argument("--phantom-seeds", default="10,11,12", help="'' to skip the phantom check")
    ap.add_argument("--no-model", action="store_true", help="only the shadow map's own numbers")
    ap.add_argument("--threshold", type=float, default=ShadowConfig().threshold,
                    help="weak-mask robust z threshold (default %(default)s)")  # fmt: skip
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--figure", type=Path, help="write the real-volume overlay figure here")
    ap.add_argument("--shadow-figure", type=Path, help="write the shadow-map figure here")
    ap.add_argument("--margin", type=int, default=InferenceConfig().margin,
                    help="mirrored inference margin, px (as predict's --margin)")  # fmt: skip
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (the machine may be shared)")
    from octvessel.inference import Predictor

    config = InferenceConfig(margin=args.margin)
    predictor = None if args.no_model else Predictor.from_pretrained(args.model, config=config)
    report: dict[str, Any] = {
        "model": None if args.no_model else args.model,
        "margin": args.margin,
        "parts": PARTS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        recon, sidecar = real_reconstruction(args.recon, Path(tmp))
        sm, vol = real_shadow(recon, sidecar, ShadowConfig(threshold=args.threshold))
        print(
            f"real volume {vol.shape} reconstructed/read and shadow map in {time.perf_counter() - t0:.1f} s"
        )
        report["weak_mask"] = {"config": sm.config.to_dict(), "fraction": float(sm.mask.mean())}
        names = variant_files(sidecar)
        from octvessel.data.io import read_image

        if args.shadow_figure:
            seed = int(args.phantom_seeds.split(",")[0]) if args.phantom_seeds else 10
            shadow_figure(args.shadow_figure, sm, seed)
            print(f"figure -> {args.shadow_figure}")
        images = {
            v: np.rint(read_image(recon / names[v])[..., 0] * 255).astype(np.uint8)
            for v in VARIANTS
        }
        if predictor is not None:
            probs = {v: predictor.predict_file(recon / names[v]) for v in VARIANTS}
            print(f"model {args.model}: P1-P3 predicted")
            report["real"] = {}
            for part, (lo, hi) in PARTS.items():
                a = agreement(probs, sm.mask, slice(lo - 1, hi))
                report["real"][part] = a
                print_agreement(f"real, B-scans {lo}-{hi} ({part})", a)
            border = border_numbers(probs, sm.mask)
            report["real"]["border"] = border
            print(
                f"  border (within {BORDER_PX} px): area {border['area']:.3f}, weak mask "
                f"{border['weak']:.3f}, "
                + ", ".join(f"{v} {border[v]:.3f}" for v in VARIANTS)
                + " of the vessel pixels"
            )
            if args.figure:
                figure(
                    args.figure,
                    images,
                    probs,
                    sm,
                    f"{args.model} on the real Spectralis volume vs the shadow map",
                )
                print(f"figure -> {args.figure}")
    seeds = [int(s) for s in args.phantom_seeds.split(",") if s.strip()]
    if seeds:
        rows = phantom_numbers(predictor, seeds, ShadowConfig(threshold=args.threshold))
        report["phantom"] = rows
        for r in rows:
            print(
                f"phantom seed {r['seed']}: shadow AUC vs truth {r['shadow_auc_vs_truth']:.3f}; weak "
                f"mask precision {r['weak_precision']:.3f} recall {r['weak_recall']:.3f} Dice "
                f"{r['weak_dice']:.3f}"
            )
            if "agreement" in r:
                print(
                    "  model AUC vs truth "
                    + "  ".join(f"{v} {x:.3f}" for v, x in r["model_auc_vs_truth"].items())
                )
                print_agreement("model vs weak mask", r["agreement"])
                b = r["border"]
                print(
                    f"  border: weak {b['weak']:.3f}, "
                    + ", ".join(f"{v} {b[v]:.3f}" for v in VARIANTS)
                )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
        print(f"numbers -> {args.json}")


if __name__ == "__main__":
    main()
