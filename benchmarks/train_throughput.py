"""Training throughput: patches per second and the share of time spent waiting for data.

Runs a few optimiser steps of the real training loop (CropDataset with the reference
augmentation -> DataLoader -> IterNet -> summed BCE -> Adam) for several settings and
prints one line per setting, plus ratios against the fp32/contiguous baseline measured in
the same run. Uses DRIVE training images from ../shared/data when present, synthetic
images otherwise.

    python benchmarks/train_throughput.py [--steps 8] [--crop 128] [--images 8] [--crops 4]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from octvessel.data import load_dataset
from octvessel.data.augment import AugmentConfig
from octvessel.data.sample import Sample
from octvessel.models import create_model
from octvessel.preprocessing import Preprocessing
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training.data import CropDataset, build_loader
from octvessel.training.trainer import autocast_for, output_losses

DRIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "DRIVE"


def samples() -> tuple[list[Sample], str]:
    if DRIVE.is_dir():
        return load_dataset(DRIVE, split="training"), "DRIVE training (20 images, 565x584)"
    out = []
    for i in range(8):
        im, lab, fov = render_image(VesselTreeConfig(height=584, width=565), seed=i, style="fundus")
        out.append(Sample(image=im, label=lab, fov=fov, name=str(i), path=None))
    return out, "synthetic fundus-like images (8, 565x584)"


def measure(data, args, precision: str, channels_last: bool, workers: int) -> dict:
    torch.manual_seed(0)
    model = create_model("iternet")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    ds = CropDataset(
        data,
        Preprocessing("rgb"),
        args.crop,
        args.crops,
        AugmentConfig(),
        0,
        length=(args.steps + 1) * args.images,
    )
    loader = build_loader(ds, args.steps + 1, args.images, workers, 0, 1)
    data_s = compute_s = 0.0
    patches = 0
    t_fetch = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        t_data = time.perf_counter() - t_fetch
        t0 = time.perf_counter()
        x = x.contiguous(memory_format=fmt)
        with autocast_for(torch.device("cpu"), precision):
            loss = sum(output_losses(model(x), y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i > 0:  # the first step warms up allocators and kernels
            data_s += t_data
            compute_s += time.perf_counter() - t0
            patches += x.shape[0]
        t_fetch = time.perf_counter()
    total = data_s + compute_s
    return {
        "patches_per_s": patches / total,
        "data_share": data_s / total,
        "s_per_step": total / args.steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--crops", type=int, default=4)
    args = ap.parse_args()
    data, what = samples()
    print(
        f"octvessel training throughput: IterNet (8,244,356 params), batch {args.images}x{args.crops} crops of {args.crop}^2, {args.steps} timed steps"
    )
    print(
        f"data: {what}; machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    settings = [("fp32", False, 0), ("fp32", True, 0), ("bf16", True, 0), ("bf16", True, 1)]
    base = None
    for precision, cl, workers in settings:
        r = measure(data, args, precision, cl, workers)
        base = base or r["patches_per_s"]
        print(
            f"{precision:5s} channels_last={str(cl):5s} workers={workers}: {r['patches_per_s']:7.1f} patches/s "
            f"({r['s_per_step']:.2f} s/step), waiting for data {100 * r['data_share']:4.1f} %, x{r['patches_per_s'] / base:.2f} vs fp32 contiguous"
        )


if __name__ == "__main__":
    main()
