"""Speed of octvessel.morphometry.measure: a 565x584 DRIVE-sized mask and a 385x141 phantom
en-face mask (targets: <= 1 s and <= 0.5 s). Prints seconds per image (best of 3).

    PYTHONPATH=src python benchmarks/measure.py [DRIVE_LABEL.gif]
"""

from __future__ import annotations

import sys
import time


def best(fn, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    from octvessel.morphometry import measure
    from octvessel.oct.phantom import make_volume

    if len(sys.argv) > 1:
        from octvessel.data.io import read_mask

        fundus = read_mask(sys.argv[1])
    else:
        from octvessel.sim.vessels import VesselTreeConfig, render_image

        fundus = render_image(VesselTreeConfig(height=584, width=565), seed=1, style="fundus")[1]
    ph = make_volume(seed=0)
    sp = (ph.config.spacing[0], ph.config.spacing[2])
    t_f = best(lambda: measure(fundus, (0.01, 0.01), fovea=(292, 282), laterality="OD"))
    t_e = best(lambda: measure(ph.vessels, sp, fovea=ph.fovea, laterality=ph.volume.laterality))
    print(
        f"{fundus.shape[1]}x{fundus.shape[0]} mask ({fundus.mean():.3f} vessel): {t_f:.3f} s (target 1 s)"
    )
    print(f"{ph.vessels.shape[1]}x{ph.vessels.shape[0]} en-face mask: {t_e:.3f} s (target 0.5 s)")


if __name__ == "__main__":
    main()
