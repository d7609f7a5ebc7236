"""Inference speed and accuracy: the reference patch scheme vs tiles vs the whole image.

With one set of weights on the DRIVE test images it prints, per method, seconds per image
and AUC-ROC (pooled FOV pixels, native grid):

(a) ``patches``: the reference IterNet scheme, every 128 x 128 crop at stride 3 (~22,500
    forward passes per DRIVE image). Its time is measured on a sub-region and
    extrapolated to the whole image by the window count (labelled "extrapolated"); its
    AUC is computed exactly on a sub-region (``--patch-region``) of one image, where the
    patch scheme's probabilities equal what the whole-image run would give, and compared
    with (b) and (c) on the same pixels. ``--patch-full`` runs it on whole images instead.
(b) ``tiles``: 512 x 512 tiles, 25 % overlap, gaussian blending.
(c) ``whole``: one pass over the whole image.

Also: the ratio (a) / (c), the GFLOP/s of the whole-image pass (FLOPs counted by
``torch.utils.flop_counter``, two per multiply-add), and optionally (``--hrf-rss``) the
peak resident memory of tiled inference on a 3504 x 2336 (HRF-sized) image, measured in a
fresh process.

    python benchmarks/inference.py -m RUN_DIR --data ../shared/data/DRIVE
    python benchmarks/inference.py -m /tmp/bench-model --quick-train 300   # make a model first

Any bundle works (a random-init one gives AUC ~0.5: the timings are still right).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from octvessel.data import load_dataset
from octvessel.inference import InferenceConfig, predict_image
from octvessel.inference.sliding_window import count_windows, window_starts
from octvessel.metrics import auc_roc
from octvessel.models import load_model
from octvessel.runtime import reuse_freed_memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", required=True, help="run folder, bundle or .safetensors")
    p.add_argument("--data", default="../shared/data/DRIVE", help="DRIVE folder")
    p.add_argument("--images", type=int, default=20, help="how many test images (default 20)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="timed whole-image runs per image (min)")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--crop", type=int, default=128, help="reference patch side (128)")
    p.add_argument("--stride", type=int, default=3, help="reference patch stride (3)")
    p.add_argument(
        "--patch-region",
        type=int,
        default=24,
        help="side of the square (inside the FOV of image 1, vessel fraction close to the "
        "image's) on which the patch scheme's AUC is computed exactly (default 24: ~2,500 "
        "windows; 0 skips it)",
    )
    p.add_argument(
        "--patch-timing-windows",
        type=int,
        default=8,
        help="the timing run covers k x k windows (default 8: 64 windows)",
    )
    p.add_argument(
        "--patch-full", action="store_true", help="run the patch scheme on whole images (hours)"
    )
    p.add_argument("--bf16", action="store_true", help="also time the whole image under bf16")
    p.add_argument("--hrf-rss", action="store_true", help="peak RSS of tiles on 3504 x 2336")
    p.add_argument(
        "--quick-train",
        type=int,
        metavar="STEPS",
        help="if MODEL does not exist: train a fresh IterNet on DRIVE training for STEPS "
        "steps (bf16, 96-pixel crops) and save it there first",
    )
    p.add_argument(
        "--no-malloc-tuning",
        action="store_true",
        help="leave glibc's allocator alone (default: reuse freed memory, as predict does)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- helpers


def fov_auc(probs: list[np.ndarray], samples: list) -> float:
    p = np.concatenate([pr[s.fov] for pr, s in zip(probs, samples, strict=True)])
    lab = np.concatenate([s.label[s.fov] for s in samples])
    return auc_roc(p, lab)


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def count_flops(model: torch.nn.Module, shape: tuple[int, ...], device: str) -> float:
    x = torch.rand(*shape, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def vm_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def aligned_crop(lo: int, hi: int, size: int, crop: int, stride: int) -> tuple[int, int]:
    """The image rows [a, b) whose patch windows are exactly those covering rows [lo, hi).

    Windows start at multiples of ``stride`` from 0 (the reference grid); the ones that
    touch [lo, hi) start in [lo - crop + 1, hi - 1]. Cropping there keeps the grid (a is a
    multiple of the stride) and, inside the image, needs no padding; at the image's end the
    crop pads exactly as the whole image would.
    """
    starts = window_starts(size, crop, stride, "grid")
    touching = [s for s in starts if s + crop > lo and s < hi]
    return touching[0], min(touching[-1] + crop, size)


def pick_region(sample, r: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns of an r x r square inside the FOV whose vessel fraction is closest
    to the image's (so both classes are present); scanned on a grid of step r / 2."""
    h, w = sample.shape
    target = sample.label[sample.fov].mean()
    best, where = math.inf, ((h - r) // 2, (w - r) // 2)
    step = max(1, r // 2)
    for y in range(0, h - r + 1, step):
        for x in range(0, w - r + 1, step):
            if not sample.fov[y : y + r, x : x + r].all():
                continue
            frac = sample.label[y : y + r, x : x + r].mean()
            if 0 < frac < 1 and abs(frac - target) < best:
                best, where = abs(frac - target), (y, x)
    (y, x) = where
    return (y, y + r), (x, x + r)


class Precomputed:
    """A preprocessing for input that is preprocessed already: H x W x C -> C x H x W."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def maybe_train(path: Path, steps: int, data: Path) -> None:
    from octvessel.models import create_model
    from octvessel.preprocessing import Preprocessing
    from octvessel.training import CropRecipe, train_on_crops

    train = load_dataset(data, split="training", require_labels=True)
    torch.manual_seed(0)
    model = create_model("iternet")
    pre = Preprocessing("rgb")
    t0 = time.perf_counter()
    recipe = CropRecipe(steps=steps, crop=96, batch=8, lr=1e-3, bf16=True)
    train_on_crops(model, train, recipe, pre, progress=True)
    seconds = time.perf_counter() - t0
    model.save_pretrained(
        path,
        preprocessing=pre,
        metadata={
            "title": f"IterNet briefly trained on DRIVE ({steps} steps; for benchmarks only)",
            "training seconds": round(seconds),
        },
    )
    print(f"trained {steps} steps in {seconds:.0f} s -> {path}")


# -------------------------------------------------------------------------- HRF memory


def rss_child(args: argparse.Namespace) -> None:
    """Run in a fresh process: tiles over a random 2336 x 3504 RGB image; print peak RSS."""
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model, args.device)
    image = np.random.default_rng(0).random((2336, 3504, 3), dtype=np.float32)
    cfg = InferenceConfig(method="auto", tile=args.tile, overlap=args.overlap)
    base = vm_kib("VmRSS")
    t0 = time.perf_counter()
    prob = predict_image(model, image, config=cfg)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "peak_rss_mb": vm_kib("VmHWM") / 1024,
                "rss_before_mb": base / 1024,
                "seconds": seconds,
                "shape": list(prob.shape),
            }
        )
    )


def hrf_rss(args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "-m",
        args.model,
        "--rss-child",
        "--threads",
        str(args.threads),
    ]
    cmd += ["--tile", str(args.tile), "--overlap", str(args.overlap), "--device", args.device]
    cmd += ["--no-malloc-tuning"] if args.no_malloc_tuning else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    tuned = False if args.no_malloc_tuning else reuse_freed_memory()
    if args.rss_child:
        rss_child(args)
        return {}
    torch.set_num_threads(args.threads)
    model_path = Path(args.model)
    if args.quick_train and not model_path.exists():
        maybe_train(model_path, args.quick_train, Path(args.data))
    model, bundle = load_model(args.model, args.device)
    model = model.to(memory_format=torch.channels_last)
    samples = load_dataset(args.data, split="test", require_labels=True)[: args.images]
    n = len(samples)
    shape = samples[0].shape
    whole_cfg = InferenceConfig(method="whole")
    tiles_cfg = InferenceConfig(method="tiles", tile=args.tile, overlap=args.overlap)
    patch_cfg = InferenceConfig(method="patches", crop=args.crop, stride=args.stride)
    print(
        f"model {args.model}: {bundle.model} {json.dumps(bundle.model_config)}, "
        f"{model.count_parameters():,} parameters; {n} DRIVE test images {shape[1]}x{shape[0]}; "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, {args.device}"
    )
    res: dict = {
        "model": args.model,
        "images": n,
        "threads": torch.get_num_threads(),
        "malloc_tuning": tuned,
    }

    # FLOPs of one whole-image pass and of one patch
    c = model.config.in_channels
    flops_whole = count_flops(model, (1, c, *shape), args.device)
    flops_patch = count_flops(model, (1, c, args.crop, args.crop), args.device)

    # (c) whole and (b) tiles on every image
    predict_image(model, samples[0].image, config=whole_cfg)  # warm-up
    t_whole, t_tiles, p_whole, p_tiles = [], [], [], []
    for s in samples:
        t, p = timed(lambda s=s: predict_image(model, s.image, config=whole_cfg), args.repeat)
        t_whole.append(t)
        p_whole.append(p)
        t, p = timed(lambda s=s: predict_image(model, s.image, config=tiles_cfg))
        t_tiles.append(t)
        p_tiles.append(p)
        print(f"  image {s.name}: whole {t_whole[-1]:.2f} s, tiles {t_tiles[-1]:.2f} s", flush=True)
    res["whole"] = {
        "seconds_per_image": float(np.median(t_whole)),
        "auc": fov_auc(p_whole, samples),
    }
    res["tiles"] = {
        "seconds_per_image": float(np.median(t_tiles)),
        "auc": fov_auc(p_tiles, samples),
    }
    res["whole"]["gflop"] = flops_whole / 1e9
    res["whole"]["gflop_per_s"] = flops_whole / 1e9 / res["whole"]["seconds_per_image"]
    if args.bf16:
        bf = whole_cfg.replace(bf16=True)
        predict_image(model, samples[0].image, config=bf)
        t = [
            timed(lambda s=s: predict_image(model, s.image, config=bf), args.repeat)[0]
            for s in samples
        ]
        p = [predict_image(model, s.image, config=bf) for s in samples]
        res["whole_bf16"] = {"seconds_per_image": float(np.median(t)), "auc": fov_auc(p, samples)}

    # (a) the reference patch scheme
    n_windows = count_windows(shape, args.crop, args.stride, "grid")
    res["patches"] = {"windows_per_image": n_windows, "gflop": flops_patch * n_windows / 1e9}
    if args.patch_full:
        t_p, p_p = [], []
        for s in samples:
            t, p = timed(lambda s=s: predict_image(model, s.image, config=patch_cfg))
            t_p.append(t)
            p_p.append(p)
            print(f"  image {s.name}: patches {t:.0f} s", flush=True)
        res["patches"].update(
            seconds_per_image=float(np.median(t_p)), auc=fov_auc(p_p, samples), extrapolated=False
        )
    else:
        # timing: k x k windows from the image's centre
        k = args.patch_timing_windows
        side = args.crop + (k - 1) * args.stride
        y0, x0 = (shape[0] - side) // 2 // args.stride * args.stride, (shape[1] - side) // 2
        sub = samples[0].image[y0 : y0 + side, x0 : x0 + side]
        predict_image(model, sub[: args.crop, : args.crop], config=patch_cfg)  # warm-up
        t, _ = timed(lambda: predict_image(model, sub, config=patch_cfg))
        per_window = t / (k * k)
        res["patches"].update(
            seconds_per_image=per_window * n_windows, extrapolated=True, timed_windows=k * k
        )
    if not args.patch_full and args.patch_region > 0:
        # accuracy: an exact patch-scheme probability on a square of the first image
        r = args.patch_region
        s = samples[0]
        ys, xs = pick_region(s, r)
        (a0, a1), (b0, b1) = (
            aligned_crop(*ys, shape[0], args.crop, args.stride),
            aligned_crop(*xs, shape[1], args.crop, args.stride),
        )
        m_win = count_windows((a1 - a0, b1 - b0), args.crop, args.stride, "grid")
        print(
            f"  patch scheme on a {r}x{r} region of image {s.name} ({m_win} windows; "
            f"~{m_win * per_window:.0f} s) ...",
            flush=True,
        )
        # preprocess the whole image first (min-max, CLAHE ... depend on the whole image),
        # then cut the crop out of the network input, as the whole-image patch run would see it
        net_input = bundle.preprocessing(s.image).transpose(1, 2, 0)[a0:a1, b0:b1]
        t_region, prob_crop = timed(
            lambda: predict_image(model, net_input, config=patch_cfg, preprocessing=Precomputed())
        )
        if m_win > res["patches"]["timed_windows"]:  # the longer run is the better estimate
            res["patches"].update(
                seconds_per_image=t_region / m_win * n_windows, timed_windows=m_win
            )
        region = (slice(ys[0], ys[1]), slice(xs[0], xs[1]))
        p_patch = prob_crop[ys[0] - a0 : ys[1] - a0, xs[0] - b0 : xs[1] - b0]
        fov, lab = s.fov[region], s.label[region]
        aucs = {
            "patches": auc_roc(p_patch[fov], lab[fov]),
            "whole": auc_roc(p_whole[0][region][fov], lab[fov]),
            "tiles": auc_roc(p_tiles[0][region][fov], lab[fov]),
        }
        res["patches"].update(
            region={
                "image": s.name,
                "rows": list(ys),
                "cols": list(xs),
                "fov_pixels": int(fov.sum()),
                "vessel_pixels": int(lab[fov].sum()),
                "auc": aucs,
                "max_abs_prob_diff_whole_vs_patches": float(
                    np.abs(p_patch - p_whole[0][region]).max()
                ),
                "seconds": t_region,
            },
        )
    res["ratio_patches_to_whole"] = (
        res["patches"]["seconds_per_image"] / res["whole"]["seconds_per_image"]
    )
    report(res)
    if args.hrf_rss:
        res["hrf_tiles"] = hrf_rss(args)
        h = res["hrf_tiles"]
        print(
            f"HRF-sized 3504x2336 image, auto -> tiles {args.tile} (overlap {args.overlap}): "
            f"{h['seconds']:.1f} s, peak RSS {h['peak_rss_mb']:.0f} MB "
            f"(process with model loaded: {h['rss_before_mb']:.0f} MB)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


def report(res: dict) -> None:
    pa, ti, wh = res["patches"], res["tiles"], res["whole"]
    ext = pa.get("extrapolated")
    star = "*" if ext else ""
    print()
    print(f"{'method':<28} {'s/image':>10} {'AUC (all images)':>17}  AUC (region)")
    reg = pa.get("region", {}).get("auc", {})

    def region(key: str) -> str:
        return f"{reg[key]:.4f}" if key in reg else "-"

    pa_auc = f"{pa['auc']:.4f}" if "auc" in pa else "-"
    print(
        f"{'(a) patches 128/3 (ref.)':<28} {pa['seconds_per_image']:>9.1f}{star} {pa_auc:>17}  {region('patches')}"
    )
    print(
        f"{'(b) tiles':<28} {ti['seconds_per_image']:>10.2f} {ti['auc']:>17.4f}  {region('tiles')}"
    )
    print(
        f"{'(c) whole image':<28} {wh['seconds_per_image']:>10.2f} {wh['auc']:>17.4f}  {region('whole')}"
    )
    if "whole_bf16" in res:
        b = res["whole_bf16"]
        print(f"{'    whole image, bf16':<28} {b['seconds_per_image']:>10.2f} {b['auc']:>17.4f}")
    if ext:
        print(
            f"* extrapolated: {pa['windows_per_image']:,} windows per image x the time per window "
            f"measured on {pa['timed_windows']:,} windows"
        )
    if "region" in pa:
        r = pa["region"]
        print(
            f"  region AUC: image {r['image']} rows {r['rows']} cols {r['cols']}, {r['fov_pixels']} "
            f"FOV pixels ({r['vessel_pixels']} vessel), exact patch-scheme probabilities "
            f"({r['seconds']:.0f} s); max |p_whole - p_patches| = "
            f"{r['max_abs_prob_diff_whole_vs_patches']:.4f}"
        )
    print(
        f"ratio (a)/(c): {res['ratio_patches_to_whole']:,.0f}x{' (extrapolated)' if ext else ''}; "
        f"FLOP ratio {pa['gflop'] / wh['gflop']:,.0f}x"
    )
    print(
        f"whole-image pass: {wh['gflop']:.1f} GFLOP in {wh['seconds_per_image']:.2f} s = "
        f"{wh['gflop_per_s']:.1f} GFLOP/s (fp32, channels_last, {res['threads']} threads, "
        f"malloc tuning {'on' if res['malloc_tuning'] else 'off'})"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
