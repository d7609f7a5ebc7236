"""The ``octvessel`` command line: argument parsing only; the work is done by the API.

Exit codes: 0 success, 2 bad usage or bad input (one line naming the file and the
problem; ``--debug`` shows the traceback), 1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from octvessel import __version__
from octvessel.errors import NotImplementedYet, OctvesselError


def _not_yet(verb: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise NotImplementedYet(
            f"'octvessel {verb}' is not implemented in octvessel {__version__} yet"
        )

    return handler


def cmd_models(args: argparse.Namespace) -> int:
    from octvessel.models import create_model, get_spec, list_models, list_shipped

    print("architectures (octvessel train --model NAME):")
    for name in list_models():
        spec = get_spec(name)
        n = create_model(name).count_parameters() if args.count else None
        count = f" [{n:,} parameters]" if n is not None else ""
        print(f"  {name:<10} {spec.description}{count}")
    shipped = list_shipped()
    print("shipped weights (-m NAME):")
    if not shipped:
        print("  none in this version")
    for name, folder in shipped.items():
        print(f"  {name:<16} {folder}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from octvessel.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        steps=args.steps,
        seed=args.seed,
        n_train=args.n_train,
        n_test=args.n_test,
        bf16=not args.no_bf16,
    )
    run_demo(args.output, cfg, overwrite=args.overwrite, progress=not args.no_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="octvessel",
        description="Retinal vessel segmentation for OCT fundus reconstructions and fundus photographs.",
    )
    parser.add_argument("--version", action="version", version=f"octvessel {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(
        name: str, help_: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )
        p.set_defaults(handler=handler)
        return p

    p = verb(
        "reconstruct",
        "OCT volume(s) -> en-face image(s) (not implemented yet)",
        _not_yet("reconstruct"),
    )
    p.add_argument("-i", "--input", required=True, help="volume file or folder")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--variant", default="P1,P2,P3", help="comma-separated variants")
    p.add_argument(
        "--isotropic", action="store_true", help="resample the slow axis to the physical spacing"
    )

    p = verb(
        "phantom",
        "write synthetic OCT volumes and a CAVRI-C-style dataset (not implemented yet)",
        _not_yet("phantom"),
    )
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)

    p = verb("train", "train one model (not implemented yet)", _not_yet("train"))
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("-o", "--output", required=True, help="run folder")
    p.add_argument("--model", default="iternet")
    p.add_argument("--preset")
    p.add_argument("--config", help="TOML recipe file")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))

    p = verb(
        "predict",
        "vessel maps for images, no labels needed (not implemented yet)",
        _not_yet("predict"),
    )
    p.add_argument("-i", "--input", required=True, help="image, folder or dataset")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-m", "--model", required=True, help="shipped name, run folder or .safetensors")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--tile", type=int)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--tta", action="store_true")
    p.add_argument("--overwrite", action="store_true")

    p = verb(
        "evaluate",
        "metrics of predictions or of a model against labels (not implemented yet)",
        _not_yet("evaluate"),
    )
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("--split")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-p", "--predictions")
    g.add_argument("-m", "--model")
    p.add_argument("-o", "--output", required=True)

    p = verb("cv", "k-fold cross-validation (not implemented yet)", _not_yet("cv"))
    p.add_argument("-d", "--dataset", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--model", default="iternet")

    p = verb(
        "report",
        "self-contained HTML report of a run, evaluation or cv (not implemented yet)",
        _not_yet("report"),
    )
    p.add_argument("run_dir")
    p.add_argument("-o", "--output")

    p = verb("models", "list model architectures and shipped weights", cmd_models)
    p.add_argument("--count", action="store_true", help="also count each architecture's parameters")

    p = verb(
        "demo",
        "the main job on embedded defaults: synthetic data -> train -> predict -> metrics",
        cmd_demo,
    )
    p.add_argument(
        "-o", "--output", default="demo-output", help="output folder (default: ./demo-output)"
    )
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--n-train", type=int, default=12, help="synthetic training images")
    p.add_argument("--n-test", type=int, default=4, help="synthetic test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-bf16", action="store_true", help="train and predict in float32")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--overwrite", action="store_true", help="redo a finished demo in the same folder"
    )

    p = verb("export", "ONNX export of a model (not implemented yet)", _not_yet("export"))
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-o", "--output", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except OctvesselError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"octvessel {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"octvessel {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: say so plainly, traceback on --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"octvessel {args.verb}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
