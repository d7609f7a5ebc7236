"""Seconds per volume for OCT reading, surface detection, quality and each projection.

Runs on a synthetic phantom (default: the full Avanti 3D Retina size, 141 B-scans x 640
samples x 385 A-scans), so it needs no data; it also prints the detected boundaries'
errors against the phantom's truth and the vessel contrast of each variant. The graph
search (``detect_boundaries``) is timed against the earlier peak detector
(``detect_boundaries_peak``) in the same run, and the load average is printed, since the
machine may be shared.

    python benchmarks/reconstruct.py [--shape 141,640,385] [--seed 0] [--repeat 3] \
        [--figure docs/img/oct-surfaces.png]

``--figure`` also draws the surface definitions of docs/oct.md on the phantom (a B-scan
through the fovea and a mean A-scan profile with each surface and its edge type).

Times are the best of ``--repeat`` runs (wall clock, this machine, whatever else runs on
it); the reading times include the file system cache, not a cold disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.oct import EnFaceConfig, detect_boundaries, read_volume, reconstruct
from octvessel.oct.enface import normalize_stripes, vessel_contrast
from octvessel.oct.files import write_reconstructions
from octvessel.oct.layers import boundary_errors, detect_boundaries_peak
from octvessel.oct.phantom import make_volume
from octvessel.oct.quality import assess
from octvessel.oct.volume import write_volume


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="141,640,385", help="B-SCANS,DEPTH,A-SCANS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--figure", help="also write the surface-definition figure here (PNG)")
    args = ap.parse_args()
    nb, nd, na = (int(v) for v in args.shape.split(","))
    rows: list[tuple[str, float]] = []

    t, ph = best_of(1, lambda: make_volume(seed=args.seed, bscans=nb, depth=nd, ascans=na))
    rows.append(("phantom generation (once)", t))
    vol = ph.volume
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "scan.OCT"
        np.ascontiguousarray(vol.data.transpose(0, 2, 1)).astype("<f4").tofile(raw)
        npz = write_volume(Path(tmp) / "scan.npz", vol)
        opts = {"ascans": na, "depth": nd}
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows.append(
                ("read Avanti raw .OCT", best_of(args.repeat, lambda: read_volume(raw, **opts))[0])
            )
        rows.append(
            ("read .npz (float32, compressed)", best_of(args.repeat, lambda: read_volume(npz))[0])
        )
        t, found = best_of(args.repeat, lambda: detect_boundaries(vol))
        rows.append(("detect ILM, OPL, EZ, RPE, BM (graph search)", t))
        t_old, _ = best_of(args.repeat, lambda: detect_boundaries_peak(vol))
        rows.append(("detect ILM, RPE, BM (peak detector, before)", t_old))
        rows.append(("  ratio graph search / peak detector", t / t_old))
        t, _ = best_of(args.repeat, lambda: assess(vol.data, found, vol.spacing))
        rows.append(("quality (confidence, jumps, low signal)", t))
        for variant in ("P1", "P2", "P3"):
            t, _ = best_of(args.repeat, lambda v=variant: reconstruct(vol, v, boundaries=found))
            rows.append((f"project {variant} (+normalise, stretch)", t))
        iso = EnFaceConfig(isotropic=True)
        t, _ = best_of(args.repeat, lambda: reconstruct(vol, "P3", iso, boundaries=found))
        rows.append(("project P3 isotropic", t))
        out = Path(tmp) / "out"
        t_first, _ = best_of(  # includes the first import of matplotlib (QC picture)
            1,
            lambda: write_reconstructions(
                vol.with_boundaries({}), out, "scan", ("P1", "P2", "P3"), overwrite=True
            ),
        )
        rows.append(("write_reconstructions P1-P3, first call (imports matplotlib)", t_first))
        t, _ = best_of(
            args.repeat,
            lambda: write_reconstructions(
                vol.with_boundaries({}), out, "scan", ("P1", "P2", "P3"), overwrite=True
            ),
        )
        rows.append(("write_reconstructions P1-P3 end to end (detect, QC png included)", t))

    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"volume {nb} x {nd} x {na} (B-scans x depth x A-scans), seed {args.seed}; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    for name, sec in rows:
        unit = "x" if name.strip().startswith("ratio") else "s"
        print(f"  {name:<66s} {sec:7.3f} {unit}")
    print("boundary error vs truth (px): median / p95 / max")
    for name, e in boundary_errors(found, ph.boundaries).items():
        print(f"  {name:<4s} {e['median']:.2f} / {e['p95']:.2f} / {e['max']:.2f}")
    print("vessel contrast (normalised projection, local background): Weber / CNR")
    for variant in ("P1", "P2", "P3"):
        e = reconstruct(vol, variant, boundaries=found)
        c = vessel_contrast(normalize_stripes(e.raw), ph.vessels)
        print(f"  {variant} {e.slab.describe():<28s} {c['contrast']:.3f} / {c['cnr']:.2f}")
    if args.figure:
        surface_figure(Path(args.figure), ph, found)


def surface_figure(path: Path, ph: Any, found: dict[str, np.ndarray]) -> None:
    """Phantom B-scan through the fovea and a mean A-scan profile with every surface."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from octvessel.oct.qc import COLOURS

    kinds = {"ILM": "rise", "OPL": "fall", "EZ": "rise", "RPE": "ridge", "BM": "fall"}
    data = ph.volume.data
    b, a = (int(round(v)) for v in ph.fovea)
    top = int(found["ILM"][b].min()) - 25
    bottom = int(found["BM"][b].max()) + 40
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=(3, 1), dpi=90)
    ax.imshow(data[b, top:bottom], cmap="gray", aspect="auto",
              extent=(-0.5, data.shape[2] - 0.5, bottom - 0.5, top - 0.5))  # fmt: skip
    for name, h in found.items():
        ax.plot(h[b], color=COLOURS[name], lw=0.9, label=f"{name} ({kinds[name]})")
    ax.legend(loc="lower left", fontsize=8, ncol=5, framealpha=0.6)
    ax.set_title(f"phantom B-scan {b + 1} through the fovea: detected surfaces", fontsize=9)
    ax.set_ylabel("depth (samples)")
    c0 = a + data.shape[2] // 4  # a strip outside the pit
    prof = data[b, top:bottom, c0 - 10 : c0 + 10].mean(axis=1)
    z = np.arange(top, bottom)
    ax2.plot(prof, z, color="white")
    ax2.set_facecolor("0.15")
    for name, h in found.items():
        d = float(np.mean(h[b, c0 - 10 : c0 + 10]))
        ax2.axhline(d, color=COLOURS[name], lw=0.9)
        ax2.text(prof.max(), d, f" {name}", color=COLOURS[name], va="center", fontsize=8)
    ax2.invert_yaxis()
    ax2.set_title("mean A-scan (20 A-scans)", fontsize=9)
    ax2.set_xlabel("intensity")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
