"""Detected surfaces against the device's own on the two real Heidelberg ``.vol`` B-scans.

Reads ``OCT/heidelberg_vol/{retimat_onh,HeyexImport_valid}.vol`` from the shared data
(``$OCTVESSEL_SHARED_DATA`` or ``../shared/data``), detects the surfaces, and prints per
file the absolute error (median / p95 px, 3.87 um per px) of ILM and BM against the
device's segmentation over the A-scans where both have the surface, the signed offset
(ours - device), the error split at 5 px (the A-scans where ours and the device's follow
different structures, and the rest), how many A-scans were left without surfaces (no
retina / no RPE, see ``octvessel.oct.regions``), where the device's BM sits relative to
the RPE band's intensity peak (its convention), and on how many of the scored A-scans
the device's BM lies on an image edge (within 1.5 px of a local maximum of the smoothed
bright-to-dark gradient; an interpolated BM does not). ``--figures DIR`` draws each B-scan with both
segmentations (``DIR/oct-vol-NAME.png``, as in docs/oct.md).

    python benchmarks/vol_surfaces.py [--figures docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage
from shared_data import shared_data

from octvessel.oct import detect_boundaries, read_volume
from octvessel.oct.layers import boundary_errors

NAMES = ("retimat_onh", "HeyexImport_valid")


def peak_offset(data: np.ndarray, ref: np.ndarray, rpe: np.ndarray) -> float:
    """Median depth of ``ref`` below the RPE band's brightest sample within 8 px of ``rpe``."""
    nd = data.shape[1]
    ok = np.isfinite(ref) & np.isfinite(rpe)
    b, w = np.nonzero(ok)
    if b.size == 0:
        return float("nan")
    off = np.arange(-8, 9)
    z = np.clip(np.round(rpe[b, w]).astype(int)[:, None] + off[None, :], 0, nd - 1)
    peak = z[np.arange(b.size), np.argmax(data[b[:, None], z, w[:, None]], axis=1)]
    return float(np.median(ref[b, w] - peak))


def on_fall_edge(data: np.ndarray, ref: np.ndarray, cols: np.ndarray) -> float:
    """Share of ``cols`` where ``ref`` (W,) is within 1.5 px of a local fall maximum.

    ``data`` (D, W) display intensities; the fall is the bright-to-dark difference of the
    B-scan smoothed by (1, 1.5) samples, sitting between samples j and j + 1.
    """
    sm = ndimage.gaussian_filter(data.astype(np.float32), (1.0, 1.5))
    fall = sm[:-1] - sm[1:]
    peak = (fall[1:-1] > fall[:-2]) & (fall[1:-1] >= fall[2:]) & (fall[1:-1] > 0.02)
    hits = 0
    for c in cols:
        z = np.flatnonzero(peak[:, c]) + 1.5  # edge positions of the peaks
        hits += bool(z.size) and np.abs(z - ref[c]).min() <= 1.5
    return hits / max(len(cols), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figures", type=Path, help="write oct-vol-NAME.png here")
    args = ap.parse_args()
    root = shared_data() / "OCT" / "heidelberg_vol"
    if not root.is_dir():
        raise SystemExit(f"shared .vol files not found at {root}")
    for name in NAMES:
        vol = read_volume(root / f"{name}.vol")
        found = detect_boundaries(vol)
        dev = vol.boundaries
        err = boundary_errors(found, dev)
        print(f"{name}: {vol.shape[2]} A-scans")
        for k in ("ILM", "BM"):
            e = err.get(k)
            signed = np.nanmedian(found[k] - dev[k]) if e else float("nan")
            if e:
                print(
                    f"  {k}: median {e['median']:.2f} / p95 {e['p95']:.1f} px over {e['n']} "
                    f"A-scans with both; signed median (ours - device) {signed:+.2f} px"
                )
                a = np.abs(found[k][0] - dev[k][0])
                far = np.flatnonzero(a > 5)
                near = a[np.isfinite(a) & (a <= 5)]
                print(
                    f"    {far.size} A-scans over 5 px; the other {near.size}: median "
                    f"{np.median(near):.2f} px"
                )
            print(f"    device {k} missing in {int(np.isnan(dev[k]).sum())} A-scans")
        no_ret = ~np.isfinite(found["ILM"])
        no_rpe = ~np.isfinite(found["RPE"]) & ~no_ret
        print(f"  left without surfaces: no retina {int(no_ret.sum())}, no RPE {int(no_rpe.sum())}")
        print(
            f"  BM below the RPE peak: device {peak_offset(vol.data[0:1], dev['BM'], found['RPE']):.1f}"
            f" px, ours {peak_offset(vol.data[0:1], found['BM'], found['RPE']):.1f} px"
        )
        both = np.flatnonzero(np.isfinite(found["BM"][0]) & np.isfinite(dev["BM"][0]))
        print(
            f"  device BM on a fall edge: {on_fall_edge(vol.data[0], dev['BM'][0], both):.0%} "
            f"of the {both.size} scored A-scans"
        )
        if args.figures:
            figure(args.figures / f"oct-vol-{name}.png", vol, found, err, name)


def figure(path: Path, vol, found: dict, err: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from octvessel.oct.qc import COLOURS

    data = vol.data[0]
    nw = data.shape[1]
    x = np.arange(nw)
    fig, ax = plt.subplots(figsize=(10, 6.6), dpi=80)
    ax.imshow(data, cmap="gray", aspect="auto", interpolation="nearest")
    for k, h in vol.boundaries.items():
        if k in ("ILM", "BM"):
            ax.plot(x, h[0], color="orange", lw=2.2, ls=":", label=f"device {k}")
    for k, h in found.items():
        ax.plot(x, h[0], color=COLOURS[k], lw=0.9, label=k)
    none = ~np.isfinite(found["ILM"][0])
    no_rpe = ~np.isfinite(found["RPE"][0]) & ~none
    for mask, colour, label in ((none, "red", "no retina"), (no_rpe, "deepskyblue", "no RPE")):
        if mask.any():
            xs = np.flatnonzero(mask)
            ax.plot(xs, np.full(xs.size, data.shape[0] - 6), "|", color=colour, ms=8, label=label)
    scores = ", ".join(
        f"{k} {err[k]['median']:.2f} px median ({err[k]['n']} A-scans)"
        for k in ("ILM", "BM")
        if k in err
    )
    ax.set_title(f"{name}.vol: ours (solid) and the device's (orange dotted); {scores}", fontsize=9)
    ax.legend(loc="lower right", fontsize=7, ncol=5, framealpha=0.6)
    ax.set_xlabel("A-scan")
    ax.set_ylabel("depth (samples)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
