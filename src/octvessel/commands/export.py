"""``octvessel export``: ONNX export of a model, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse

HELP = "ONNX export of a model (vessel probability), checked with ONNX Runtime"

EPILOG = """\
The graph takes the preprocessed image (float32 N x C x H x W; the bundle's preprocessing
is written to FILE.onnx.json and must be applied by the caller) and returns the vessel
probability (float32 N x 1 x H x W, sigmoid of the last output). Batch, height and width
are dynamic unless --static. Needs the onnx package; the check needs onnxruntime
(pip install "octvessel[onnx]"); without onnxruntime the export is written and the check
skipped. Exit 1 when the check finds a difference above --atol.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-m", "--model", required=True, help="shipped name, run/bundle folder or file")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--height", type=int, default=141, help="example/test height (default 141)")
    p.add_argument("--width", type=int, default=385, help="example/test width (default 385)")
    p.add_argument("--static", action="store_true", help="fix the input to 1 x C x HEIGHT x WIDTH")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--atol", type=float, default=1e-4, help="accepted max |difference| (1e-4)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime check")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")


def run(args: argparse.Namespace) -> int:
    import sys

    from octvessel.export import export_onnx

    result = export_onnx(
        args.model,
        args.output,
        height=args.height,
        width=args.width,
        dynamic=not args.static,
        opset=args.opset,
        overwrite=args.overwrite,
        verify=not args.no_verify,
        atol=args.atol,
    )
    size_mb = result.path.stat().st_size / 1e6
    shape = f"1 x C x {args.height} x {args.width}" if args.static else "dynamic N, H, W"
    print(
        f"exported {args.model} ({result.parameters:,} parameters) to {result.path} "
        f"({size_mb:.1f} MB, opset {args.opset}, {shape}) in {result.seconds:.1f} s; "
        f"preprocessing and layout in {result.sidecar}"
    )
    v = result.verification
    if v is None:
        print(f"check skipped: {result.skipped}")
        return 0
    print(f"check: {v.line()}")
    if not v.passed:
        print(
            f"octvessel export: error: the ONNX model differs from PyTorch by "
            f"{v.max_abs_diff:.2e} > {v.atol:.0e}",
            file=sys.stderr,
        )
        return 1
    return 0
