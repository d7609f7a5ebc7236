"""Physical scale: AUC with the automatic pixel size vs without it vs a hand-picked scale.

Parts (``--parts drive,stare,resized,oct``; each prints what it measured as it goes):

- ``drive``: iternet-fundus on DRIVE test 01-20 with default options (the automatic scale;
  DRIVE's FOV is the model's, so the grid is unchanged) -- must stay >= 0.9782.
- ``stare``: a model on STARE (20 images, observer 1, derived FOV masks) with default
  options vs a sweep of ``--input-scale``. iternet-fundus saw STARE in training (at its
  own size); ``--model RUN`` scores another (e.g. a DRIVE-only) model.
- ``resized``: real DRIVE test images resized (image, label and FOV mask together; bilinear
  for the image, nearest for the masks) by x0.7, x1.5, x2.5: stand-ins for cameras with
  other image sizes, NOT other cameras. AUC with the automatic scale (FOV estimate of the
  resized mask) vs none (``--input-scale 1``) vs a sweep around the inverse factor.
- ``oct``: iternet-oct on phantom en-face images (P1, detected boundaries) made on other
  grids (6x6 mm 400x400, 3x3 mm 304x304, 512x49 over 6 x 4.5 mm) vs its native 7x7 mm
  141x385: automatic scale (dataset.json spacing) vs none.

    OMP_NUM_THREADS=2 PYTHONPATH=src nice python benchmarks/scale_sweep.py --parts drive,stare

Timings are not measured (the machine these ran on was shared); AUCs are pooled over the
FOV pixels of all images at the label's native grid (octvessel.metrics.evaluate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from octvessel.data import load_dataset
from octvessel.inference import InferenceConfig, Predictor
from octvessel.metrics import evaluate

DATA = Path("/work/shared/data")


def auc(predictor: Predictor, samples, *, auto: bool = True, **options) -> tuple[float, str]:
    probs, sources = [], set()
    for s in samples:
        if auto and not options:
            probs.append(
                predictor.predict_scaled(
                    s.image, s.name, path=s.path, data_spacing=s.spacing, fov=s.fov
                )
            )
            rec = predictor.scales[s.name]
            f = rec["factors"]
            sources.add(f"{rec['source']} x{f[0]:.3f},{f[1]:.3f}" if f else rec["source"])
        else:
            probs.append(predictor.predict_array(s.image, **options))
    res = evaluate(probs, [s.label for s in samples], [s.fov for s in samples])
    return float(res["pooled"]["auc_roc"]), "; ".join(sorted(sources))


def line(what: str, value: float, extra: str = "") -> None:
    print(f"  {what:<34} AUC {value:.4f}  {extra}", flush=True)


def part_drive(model: str) -> None:
    print(f"[drive] {model} on DRIVE test 01-20, default options (automatic scale)")
    p = Predictor.from_pretrained(model)
    samples = load_dataset(DATA / "DRIVE", split="test", require_labels=True)
    value, src = auc(p, samples)
    line("automatic", value, src)


def part_stare(model: str, scales: list[float]) -> None:
    print(f"[stare] {model} on STARE (20 images): default options vs --input-scale sweep")
    p = Predictor.from_pretrained(model)
    samples = load_dataset(DATA / "STARE", require_labels=True)
    value, src = auc(p, samples)
    line("default (automatic scale)", value, src)
    for s in scales:
        line(f"--input-scale {s:g}", auc(p, samples, input_scale=s)[0])


def _resize(sample, f: float):
    from dataclasses import replace

    h, w = sample.label.shape
    size = (max(1, round(w * f)), max(1, round(h * f)))
    img = Image.fromarray((np.clip(sample.image, 0, 1) * 255).astype(np.uint8))
    image = np.asarray(img.resize(size, Image.BILINEAR), np.float32) / 255.0
    if image.ndim == 2:
        image = image[..., None]

    def nearest(m):
        return (
            np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
        )

    return replace(
        sample,
        image=image,
        label=nearest(sample.label),
        fov=nearest(sample.fov),
        name=f"{sample.name}_x{f:g}",
        path=Path(f"/nonexistent/{sample.name}_x{f:g}.png"),
    )


def part_resized(model: str, factors: list[float], n: int) -> None:
    print(
        f"[resized] {model} on DRIVE test images 01-{n:02d} resized (image, label, FOV): "
        "stand-ins for other image sizes, not other cameras"
    )
    p = Predictor.from_pretrained(model)
    base = load_dataset(DATA / "DRIVE", split="test", require_labels=True)[:n]
    for f in factors:
        samples = [_resize(s, f) for s in base]
        value, src = auc(p, samples)
        line(f"x{f:g}: automatic", value, src)
        line(f"x{f:g}: none (--input-scale 1)", auc(p, samples, input_scale=1.0)[0])
        for k in (0.8, 1.0, 1.25):
            s = round(k / f, 3)
            line(f"x{f:g}: --input-scale {s:g}", auc(p, samples, input_scale=s)[0])


GRIDS = {
    "native 7x7 mm 141x385": (141, 385, (7.0, 7.0)),
    "6x6 mm 400x400": (400, 400, (6.0, 6.0)),
    "3x3 mm 304x304": (304, 304, (3.0, 3.0)),
    "512x49 over 6 x 4.5 mm": (49, 512, (4.5, 6.0)),
}


def part_oct(model: str, n: int, seed: int) -> None:
    from octvessel.oct.phantom import PhantomConfig, write_dataset

    print(f"[oct] {model} on {n} phantoms (seed {seed}, P1) per grid: automatic vs none")
    p = Predictor.from_pretrained(model)
    with tempfile.TemporaryDirectory() as tmp:
        for label, (rows, cols, field) in GRIDS.items():
            t0 = time.perf_counter()
            cfg = PhantomConfig(bscans=rows, ascans=cols, field_mm=field)
            root = Path(tmp) / f"g{rows}x{cols}"
            write_dataset(root, n=n, seed=seed, config=cfg, volumes=False)
            samples = load_dataset(root, variant="P1", require_labels=True)
            value, src = auc(p, samples)
            line(f"{label}: automatic", value, src)
            line(f"{label}: none", auc(p, samples, input_scale=1.0)[0])
            print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="drive,stare,resized,oct")
    ap.add_argument("--model", default="iternet-fundus", help="fundus model (drive/stare/resized)")
    ap.add_argument("--oct-model", default="iternet-oct")
    ap.add_argument("--stare-scales", default="0.6,0.7,0.8,0.9,1.0")
    ap.add_argument("--factors", default="0.7,1.5,2.5")
    ap.add_argument("--n-resized", type=int, default=5)
    ap.add_argument("--n-phantoms", type=int, default=3)
    ap.add_argument("--seed", type=int, default=300)
    args = ap.parse_args()
    parts = args.parts.split(",")
    _ = InferenceConfig  # defaults only: fp32, auto method
    if "drive" in parts:
        part_drive(args.model)
    if "stare" in parts:
        part_stare(args.model, [float(v) for v in args.stare_scales.split(",")])
    if "resized" in parts:
        part_resized(args.model, [float(v) for v in args.factors.split(",")], args.n_resized)
    if "oct" in parts:
        part_oct(args.oct_model, args.n_phantoms, args.seed)


if __name__ == "__main__":
    main()
