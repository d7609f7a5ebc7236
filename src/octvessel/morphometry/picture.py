"""The picture of one measurement: mask in grey, centre line coloured by width, ETDRS grid.

Drawn in millimetres (pixels when the size is unknown), so an anisotropic en-face image
keeps its physical proportions and the ETDRS circles are circles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octvessel.atomic import atomic_path
from octvessel.morphometry.measure import Measurement
from octvessel.morphometry.regions import RINGS_MM


def draw_measurement(path: str | Path, m: Measurement, *, overwrite: bool = True) -> Path:
    """Write the PNG of ``m`` to ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr, sc = m.spacing
    h, w = m.shape  # the graph's grid covers the same field (square pixels, Measurement)
    unit = "mm" if m.units == "mm" else "px"
    extent = (-0.5 * sc, (w - 0.5) * sc, (h - 0.5) * sr, -0.5 * sr)
    wide = (w * sc) / (h * sr)
    fig, ax = plt.subplots(figsize=(7.5 * min(max(wide, 0.6), 1.6) + 1.5, 7.5), dpi=110)
    ax.imshow(m.width_mm > 0, cmap="gray", vmin=0, vmax=2.5, extent=extent, interpolation="nearest")
    rr, cc = np.nonzero(m.graph.segment_labels > 0)
    scale = 1000.0 if unit == "mm" else 1.0
    widths = m.width_mm[rr, cc] * scale
    rr, cc = m.to_input_px(np.stack([rr, cc], 1)).T
    pts = ax.scatter(cc * sc, rr * sr, c=widths, s=2.0, cmap="turbo", linewidths=0,
                     vmin=0, vmax=np.percentile(widths, 98) if widths.size else 1)  # fmt: skip
    bp = m.branch_points
    if bp.size:
        ax.scatter(bp[:, 1] * sc, bp[:, 0] * sr, s=14, facecolors="none", edgecolors="w",
                   linewidths=0.7)  # fmt: skip
    fig.colorbar(pts, ax=ax, fraction=0.035, label=f"width ({'um' if unit == 'mm' else 'px'})")
    if m.fovea is not None:
        fy, fx = m.fovea[0] * sr, m.fovea[1] * sc
        t = np.linspace(0, 2 * np.pi, 361)
        for d in RINGS_MM:
            ax.plot(fx + d / 2 * np.cos(t), fy + d / 2 * np.sin(t), color="yellow", lw=0.8)
        if m.laterality is not None:
            r0, r2 = RINGS_MM[0] / 2, RINGS_MM[-1] / 2
            for a in (45, 135, 225, 315):
                u, v = np.cos(np.radians(a)), np.sin(np.radians(a))
                ax.plot(
                    [fx + r0 * u, fx + r2 * u], [fy + r0 * v, fy + r2 * v], color="yellow", lw=0.8
                )
            nasal = 1 if m.laterality == "OD" else -1
            ax.text(fx + nasal * (r2 + 0.1), fy, "N", color="yellow", ha="center", va="center")
            ax.text(fx - nasal * (r2 + 0.1), fy, "T", color="yellow", ha="center", va="center")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(unit)
    ax.set_ylabel(unit)
    whole = m.rows[0]
    ax.set_title(
        f"{whole['image']}: length {whole['length_mm']:.1f} {unit}, mean width "
        f"{whole['mean_width_um']:.1f} {'um' if unit == 'mm' else 'px'}, "
        f"{whole['branch_points']} branch points, FD {whole['fractal_dimension']:.3f}",
        fontsize=9,
    )
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)
