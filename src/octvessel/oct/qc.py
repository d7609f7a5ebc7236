"""``NAME_qc.png``: the B-scan through the fovea and the worst B-scans with every surface
drawn, and en-face maps of the RPE height and of the confidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from octvessel.atomic import atomic_path

__all__ = ["COLOURS", "fovea_bscan", "worst_bscans", "write_qc"]

#: Line colour of each surface in the QC picture.
COLOURS = {"ILM": "yellow", "OPL": "cyan", "EZ": "magenta", "RPE": "red", "BM": "lime"}


def fovea_bscan(surfaces: dict[str, np.ndarray]) -> tuple[int, int]:
    """(B-scan, A-scan) of the thinnest ILM..RPE retina in the central 60 % of the scan."""
    thick = surfaces["RPE"] - surfaces["ILM"]
    thick = np.where(np.isfinite(thick), thick, np.nanmax(thick) if np.isfinite(thick).any() else 0)
    thick = ndimage.uniform_filter(thick, size=(3, 15), mode="nearest")
    nb, nw = thick.shape
    b0, b1 = int(nb * 0.2), max(int(nb * 0.8), int(nb * 0.2) + 1)
    w0, w1 = int(nw * 0.2), max(int(nw * 0.8), int(nw * 0.2) + 1)
    centre = thick[b0:b1, w0:w1]
    b, w = np.unravel_index(np.argmin(centre), centre.shape)
    return int(b + b0), int(w + w0)


def worst_bscans(confidence: np.ndarray, jumps: np.ndarray, n: int = 2) -> list[int]:
    """The ``n`` B-scans with the most jumping A-scans, ties broken by low confidence."""
    score = jumps.sum(axis=1) + (1.0 - np.median(confidence, axis=1))
    return [int(b) for b in np.argsort(-score)[:n]]


def write_qc(
    path: str | Path,
    data: np.ndarray,
    surfaces: dict[str, np.ndarray],
    confidence: np.ndarray,
    jump_map: np.ndarray,
    spacing: tuple[float, float, float],
    title: str,
    overwrite: bool = False,
) -> dict[str, object]:
    """Draw and write the QC picture; returns which B-scans it shows (0-based)."""
    # a Figure outside pyplot: no backend is chosen or switched (the caller's matplotlib
    # settings stay), the PNG renders with Agg (as octvessel.visualize.new_figure does)
    from matplotlib.figure import Figure

    fb, fw = fovea_bscan(surfaces)
    worst = [b for b in worst_bscans(confidence, jump_map, 3) if b != fb][:2]
    shown = [fb, *worst]
    nb, nd, nw = data.shape
    ilm, bm = surfaces["ILM"][shown], surfaces["BM"][shown]
    top = max(0, int(np.floor(np.nanmin(ilm))) - 30) if np.isfinite(ilm).any() else 0
    bottom = min(nd, int(np.ceil(np.nanmax(bm))) + 60) if np.isfinite(bm).any() else nd
    fig = Figure(figsize=(12, 4.2 * len(shown) / 1.5 + 4.5), dpi=80)
    grid = fig.add_gridspec(len(shown) + 1, 2, height_ratios=[1.0] * len(shown) + [1.1])
    lo, hi = np.percentile(data[shown], [0.5, 99.8])
    for i, b in enumerate(shown):
        ax = fig.add_subplot(grid[i, :])
        ax.imshow(data[b, top:bottom], cmap="gray", vmin=lo, vmax=hi, aspect="auto",
                  extent=(-0.5, nw - 0.5, bottom - 0.5, top - 0.5), interpolation="nearest")  # fmt: skip
        x = np.arange(nw)
        for name, h in surfaces.items():
            ax.plot(x, h[b], color=COLOURS.get(name, "white"), lw=0.8, label=name)
        bad = np.flatnonzero(jump_map[b])
        if bad.size:
            ax.plot(bad, np.full(bad.size, top + 3), "|", color="orange", ms=6, label="jump")
        # regions left without surfaces (oct/regions.py): no retina / no RPE (optic disc)
        none = ~np.isfinite(surfaces["ILM"][b])
        no_rpe = ~np.isfinite(surfaces["RPE"][b]) & ~none
        for mask, colour, label in ((none, "red", "no retina"), (no_rpe, "deepskyblue", "no RPE")):
            if mask.any():
                xs = np.flatnonzero(mask)
                ax.plot(xs, np.full(xs.size, top + 8), "|", color=colour, ms=6, label=label)
        what = "through the fovea" if i == 0 else "worst"
        ax.set_title(
            f"B-scan {b + 1} of {nb} ({what}): median confidence "
            f"{np.median(confidence[b]):.2f}, {int(jump_map[b].sum())} jumping A-scans",
            fontsize=9,
        )
        ax.set_ylabel("depth (samples)")
        if i == 0:
            ax.axvline(fw, color="white", lw=0.5, ls=":")
            ax.legend(loc="lower right", fontsize=7, ncol=6, framealpha=0.5)
    extent = (0, nw * spacing[2], nb * spacing[0], 0)
    ax = fig.add_subplot(grid[-1, 0])
    rpe = surfaces["RPE"]
    rpe_um = (rpe - (np.nanmedian(rpe) if np.isfinite(rpe).any() else 0)) * spacing[1] * 1000.0
    im = ax.imshow(rpe_um, cmap="viridis_r", aspect="auto", extent=extent, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="RPE depth - median (um)")
    ax.axhline((fb + 0.5) * spacing[0], color="white", lw=0.6, ls=":")
    ax.set_title("RPE height (en face; rows = B-scans; blank: no RPE)", fontsize=9)
    ax.set_xlabel("mm")
    ax = fig.add_subplot(grid[-1, 1])
    im = ax.imshow(confidence, cmap="magma", vmin=0, vmax=1, aspect="auto", extent=extent,
                   interpolation="nearest")  # fmt: skip
    fig.colorbar(im, ax=ax, label="confidence")
    ax.set_title("confidence (RPE contrast against the vitreous)", fontsize=9)
    ax.set_xlabel("mm")
    fig.suptitle(title, fontsize=10)
    # fixed margins (tight_layout costs a fifth of a second); fast PNG compression
    fig.subplots_adjust(left=0.06, right=0.98, top=0.94, bottom=0.05, hspace=0.35, wspace=0.15)
    with atomic_path(Path(path), overwrite) as tmp:
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})
    return {"fovea_bscan": fb, "fovea_ascan": fw, "worst_bscans": worst}
