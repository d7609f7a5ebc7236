"""Training throughput against inference, in one run: thousands of pixels per second.

Runs a few optimiser steps of the real training loop (CropDataset with the reference
augmentation -> DataLoader -> IterNet -> summed BCE -> Adam, bf16/channels_last as the
trainer does) and, in the same process, the whole-image inference forward on a DRIVE image
(eval mode, no grad). Prints training and inference kilo-pixels/s, their ratio (a training
step's forward + backward costs ~3 forwards, so ~0.33 is the arithmetic ceiling) and the
share of training time spent waiting for data. Settings: the old dropout (``nn.Dropout``,
one random number per element, after a separate ReLU), the new one
(:mod:`octvessel.models.dropout`: cheap bits, fused with the ReLU) and, for reference, no
dropout at all (p = 0: the ceiling any dropout can reach), and the new dropout with plain
``nn.ConvTranspose2d`` upsampling instead of :class:`octvessel.models.layers.UpConv2x2`
(the trainer before it); ``--compile`` adds
``torch.compile`` of the training model (its compile time printed). Like ``octvessel train``
and ``predict`` on CPU, the process keeps freed memory for reuse
(:func:`octvessel.runtime.reuse_freed_memory`); ``--malloc default`` leaves glibc's
defaults (the trainer before that change) for both training and inference.
Uses DRIVE training images from ../shared/data when present, synthetic images otherwise.

    python benchmarks/train_throughput.py [--steps 4] [--crop 128] [--images 8] [--crops 4]
        [--compile] [--malloc reuse|default]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from octvessel.data import load_dataset
from octvessel.data.augment import AugmentConfig
from octvessel.data.sample import Sample
from octvessel.models import create_model
from octvessel.models import dropout as cheap_dropout
from octvessel.models.dropout import Dropout
from octvessel.models.layers import UpConv2x2
from octvessel.precision import autocast_for, resolve_precision
from octvessel.preprocessing import Preprocessing
from octvessel.runtime import reuse_freed_memory
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training.data import CropDataset, build_loader
from octvessel.training.trainer import output_losses

DRIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "DRIVE"
CPU = torch.device("cpu")


def samples() -> tuple[list[Sample], str]:
    if DRIVE.is_dir():
        return load_dataset(DRIVE, split="training"), "DRIVE training (20 images, 565x584)"
    out = []
    for i in range(8):
        im, lab, fov = render_image(VesselTreeConfig(height=584, width=565), seed=i, style="fundus")
        out.append(Sample(image=im, label=lab, fov=fov, name=str(i), path=None))
    return out, "synthetic fundus-like images (8, 565x584)"


def replace_modules(model: nn.Module, kind: type, make) -> None:
    """Replace every submodule of type ``kind`` by ``make(it)``, at any depth."""
    for name, child in model.named_children():
        if isinstance(child, kind):
            setattr(model, name, make(child))
        else:
            replace_modules(child, kind, make)


def use_old_dropout(model: nn.Module) -> None:
    """Swap every cheap Dropout for torch's ``nn.Dropout`` (the trainer before this change)."""
    replace_modules(model, Dropout, lambda d: nn.Dropout(d.p))


def _plain_transposed(up: UpConv2x2) -> nn.ConvTranspose2d:
    plain = nn.ConvTranspose2d(up.in_channels, up.out_channels, 2, stride=2)
    plain.load_state_dict(up.state_dict())
    return plain


def use_transposed_upsampling(model: nn.Module) -> None:
    """Swap every UpConv2x2 for a plain ``nn.ConvTranspose2d`` (the trainer before it)."""
    replace_modules(model, UpConv2x2, _plain_transposed)


def no_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, Dropout):
            module.p = 0.0


def train_rate(data, args, precision: str, setting: str, compile_: bool) -> dict:
    """Training kpixels/s (crop pixels), data-wait share and compile seconds."""
    torch.manual_seed(0)
    model = create_model("iternet")
    if setting == "old":
        use_old_dropout(model)
    elif setting == "transposed":
        use_transposed_upsampling(model)
    elif setting == "off":
        no_dropout(model)
    model.to(memory_format=torch.channels_last).train()
    net = torch.compile(model) if compile_ else model
    # the trainer's fused Adam (octvessel.training.build.make_optimizer); "loop-adam": the
    # per-tensor loop it used before 2026-12-06
    opt = torch.optim.Adam(model.parameters(), 1e-3, fused=setting != "loop-adam")
    bits_before = cheap_dropout.BITS
    if setting == "bits16":  # 16-bit random values, p at 1/65536 (before 2026-12-06)
        cheap_dropout.BITS = 16
    ds = CropDataset(
        data, Preprocessing("rgb"), args.crop, args.crops, AugmentConfig(), 0,
        length=(args.steps + 1) * args.images,
    )  # fmt: skip
    loader = build_loader(ds, args.steps + 1, args.images, 0, 0, 1)
    data_s = compute_s = first_s = 0.0
    pixels = 0
    t_fetch = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        t_data = time.perf_counter() - t_fetch
        t0 = time.perf_counter()
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(CPU, precision):
            loss = sum(output_losses(net(x), y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == 0:  # warm-up (and compilation): not timed
            first_s = time.perf_counter() - t0
        else:
            data_s += t_data
            compute_s += time.perf_counter() - t0
            pixels += x.shape[0] * args.crop**2
        t_fetch = time.perf_counter()
    cheap_dropout.BITS = bits_before
    total = data_s + compute_s
    return {"kpx_s": pixels / total / 1e3, "data_share": data_s / total, "first_s": first_s}


def inference_rate(image: np.ndarray, precision: str, reps: int) -> float:
    """Whole-image forward kpixels/s (eval, inference mode, channels_last)."""
    torch.manual_seed(0)
    model = create_model("iternet").to(memory_format=torch.channels_last).eval()
    x = torch.from_numpy(Preprocessing("rgb")(image))[None].contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode(), autocast_for(CPU, precision):
        model(x)
        model(x)  # two warm-up passes (allocator, oneDNN primitives)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        dt = (time.perf_counter() - t0) / reps
    return x.shape[-2] * x.shape[-1] / dt / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per setting")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--crops", type=int, default=4)
    ap.add_argument("--infer-reps", type=int, default=3)
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    ap.add_argument("--no-old", action="store_true", help="skip the old-dropout setting")
    ap.add_argument(
        "--no-transposed", action="store_true", help="skip the plain ConvTranspose2d setting"
    )
    ap.add_argument("--no-off", action="store_true", help="skip the no-dropout reference")
    ap.add_argument(
        "--no-before",
        action="store_true",
        help="skip the 2026-12-06 settings before: 16-bit dropout values, per-tensor Adam",
    )
    ap.add_argument(
        "--malloc",
        choices=("reuse", "default"),
        default="reuse",
        help="reuse (as train/predict on CPU: keep freed memory) or glibc's default",
    )
    args = ap.parse_args()
    reuse = reuse_freed_memory() if args.malloc == "reuse" else False
    precision = resolve_precision(args.precision, CPU)
    data, what = samples()
    load0 = os.getloadavg()
    print(
        f"octvessel training vs inference throughput: IterNet (3 input channels), precision {precision} "
        f"({args.precision}), channels_last; training batch {args.images}x{args.crops} crops of "
        f"{args.crop}^2, {args.steps} timed steps after one warm-up"
    )
    print(
        f"data: {what}; machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, torch {torch.__version__}; "
        f"load average {load0[0]:.2f} at the start; freed memory "
        f"{'kept for reuse' if reuse else 'returned (glibc default)'}"
    )
    h, w = data[0].image.shape[:2]
    settings = [("new dropout (fused)", "new", False)]
    if not args.no_before:
        settings.insert(0, ("16-bit dropout values", "bits16", False))
        settings.insert(0, ("per-tensor Adam loop", "loop-adam", False))
    if not args.no_transposed:
        settings.insert(0, ("new dropout, ConvTranspose2d", "transposed", False))
    if not args.no_old:
        settings.insert(0, ("old nn.Dropout", "old", False))
    if not args.no_off:
        settings.append(("no dropout (reference)", "off", False))
    if args.compile:
        settings.append(("new dropout + torch.compile", "new", True))
    # inference is measured before and after every training setting; each ratio uses the
    # mean of the two measurements beside it (the machine is shared: load drifts)
    infer = [inference_rate(data[0].image, precision, args.infer_reps)]
    print(f"inference forward, whole {h}x{w} image: {infer[0]:8.1f} kpixels/s")
    for name, setting, comp in settings:
        r = train_rate(data, args, precision, setting, comp)
        infer.append(inference_rate(data[0].image, precision, args.infer_reps))
        beside = (infer[-2] + infer[-1]) / 2
        extra = f", first step (compile) {r['first_s']:.1f} s" if comp else ""
        print(
            f"training, {name:28s}: {r['kpx_s']:8.1f} kpixels/s, ratio to inference "
            f"{r['kpx_s'] / beside:.3f} (inference beside it {beside:.0f} kpixels/s), "
            f"waiting for data {100 * r['data_share']:4.1f} %{extra}"
        )
    load1 = os.getloadavg()
    print(
        f"inference forward over the run: {', '.join(f'{v:.0f}' for v in infer)} kpixels/s; "
        f"load average {load1[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
