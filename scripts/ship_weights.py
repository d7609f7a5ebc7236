"""Package a finished training run as shipped weights inside the package.

    python scripts/ship_weights.py --run runs/drive-iternet-hour --name iternet-fundus \
        --eval "DRIVE test 01-20=eval/fundus-drive/metrics.json" \
        --prep "(none: DRIVE is read as it is)" --summary "IterNet for colour fundus photographs"

Writes ``src/octvessel/weights/NAME/``: ``model.safetensors`` (fp16, the run's best
weights), ``config.json`` (architecture, preprocessing, sha256, and metadata: the run's
training command and recipe, data and split, hardware, training time, measured metrics by
dataset) and a model card ``README.md``. Every number in the card is read from the run's
files and the evaluation files given; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

from octvessel import atomic
from octvessel.models import load_model, save_pretrained
from octvessel.models.card import ModelCard
from octvessel.models.pretrained import (
    CONFIG_NAME,
    SHIPPED_DIR,
    WEIGHTS_NAME,
    BundleConfig,
    resolve_weights,
)

HEADLINE = ("auc_roc", "auc_pr", "accuracy", "sensitivity", "specificity", "f1", "iou", "mcc")


def read_run(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    meta = config.get("metadata", {})
    with open(run / "log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    meta["train_seconds"] = sum(float(r["seconds"]) for r in log)
    meta["epochs_logged"] = len(log)
    meta["splits"] = json.loads((run / "splits.json").read_text())
    return meta


def lineage(init_from: str | None, depth: int = 0) -> list[dict]:
    """The training stages behind the starting weights, oldest first.

    Each entry: ``command``, ``train_seconds``, ``hardware``, ``ref`` (what was started from)
    and ``sha256``, read from the starting bundle's ``config.json`` metadata (and, in turn,
    from the bundle it started from, or that bundle's recorded ``earlier_stages`` when it
    is a shipped one whose own runs are gone). Empty for a random initialisation.
    """
    if not init_from or depth > 8:
        return []
    weights = resolve_weights(init_from)
    config = BundleConfig.from_file(weights.parent / CONFIG_NAME)
    meta = dict(config.metadata)
    if "train_seconds" not in meta and (weights.parent / "log.csv").is_file():
        meta.update(read_run(weights.parent))  # a run folder: its time is in its log
    stage = {
        "ref": init_from,
        "sha256": config.sha256.get(weights.name, "?"),
        "command": meta.get("command", "(unknown)"),
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "hardware": meta.get("hardware", "?"),
        "data_preparation": meta.get("data_preparation", []),
    }
    earlier = meta.get("earlier_stages")
    if isinstance(earlier, list):  # a shipped bundle records its own history
        return [dict(st) for st in earlier] + [stage]
    return lineage(meta.get("init_from"), depth + 1) + [stage]


def ship_command(stage: dict) -> str:
    """The ship_weights.py line that turns a stage's run into the bundle the next stage names."""
    words = stage["command"].split()
    run = words[words.index("-o") + 1] if "-o" in words[:-1] else "RUN_DIR"
    ref = Path(stage["ref"])
    where = f" --out {ref.parent}" if len(ref.parts) > 1 else ""
    return f"python scripts/ship_weights.py --run {run} --name {ref.name}{where} ..."


def shown(value, renames: list[tuple[str, str]]):
    """``value`` (str, list or dict, nested) with each recorded path prefix ``old`` written
    as ``new`` (``--show-path``; longest first), so that a card shows ``runs/...`` for run
    folders that lay outside the repository; config.json lists the renamings."""
    if isinstance(value, str):
        for old, new in sorted(renames, key=lambda r: -len(r[0])):
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [shown(v, renames) for v in value]
    if isinstance(value, dict):
        return {k: shown(v, renames) for k, v in value.items()}
    return value


def read_eval(spec: str) -> tuple[str, dict]:
    label, _, path = spec.partition("=")
    result = json.loads(Path(path).read_text())
    pooled = result["pooled"]
    entry = {k: pooled[k] for k in HEADLINE if k in pooled}
    entry["n_images"] = result.get("n_images")
    if "auc_roc" in result.get("mean", {}):
        entry["auc_roc_per_image_mean"] = result["mean"]["auc_roc"]
        entry["auc_roc_per_image_std"] = result["std"]["auc_roc"]
    return label, entry


def scale_fact(scale) -> list[str]:
    """The card's line on the pixel size the network was trained at (none if unrecorded)."""
    if scale is None:
        return []
    row, col = (1000 * v for v in scale.pixel_size_mm)
    fov = f", FOV {scale.fov_px:g} px wide" if scale.fov_px else ""
    note = f" ({scale.note})" if scale.note else ""
    return [
        f"trained at (config.json `scale`): {row:.1f} um per row x {col:.1f} um per column"
        f"{fov}{note}; images on other grids are resampled to it from their pixel size "
        "(`--spacing`, a reconstruction sidecar, dataset.json or a HEYEX XML; docs/scale.md)"
    ]


def card(
    name: str,
    summary: str,
    meta: dict,
    metrics: dict,
    prep: list[str],
    params: int,
    bundle,
    stages: list[dict],
    total_seconds: float,
) -> str:
    earlier = []
    for i, st in enumerate(stages, 1):
        earlier += [
            f"# stage {i}: {st['train_seconds'] / 60:.1f} min on {st['hardware']}; "
            f"its weights (sha256 {st['sha256'][:16]}...) are what stage {i + 1} starts from "
            f"as {st['ref']}",
            *st["data_preparation"],
            st["command"],
            ship_command(st),
        ]
    if stages:
        earlier.append(f"# stage {len(stages) + 1} (these weights):")
    init = (
        f"started from `{meta['init_from']}` (sha256 {meta.get('init_sha256', '?')[:16]}...), "
        "not from a random initialisation"
        if meta.get("init_from")
        else "started from a random (Glorot-uniform) initialisation"
    )
    card = ModelCard(name, summary)
    card.facts += [
        f"architecture: `{bundle.model}` {json.dumps(bundle.model_config)}, "
        f"{params:,} parameters; weights stored as float16 safetensors",
        f"input preprocessing (applied by octvessel from this config): "
        f"`{json.dumps(bundle.preprocessing.to_dict())}`",
        *scale_fact(bundle.scale),
        init,
        f"data: `{meta.get('dataset')}`; {meta.get('n_train')} training images, "
        f"{meta.get('n_val')} validation images (held out of training: "
        f"{', '.join(meta['splits'].get('validation', [])[:12])}"
        f"{' ...' if len(meta['splits'].get('validation', [])) > 12 else ''})",
        f"dataset fingerprint {meta.get('fingerprint')}; seed {meta.get('seed')}",
        f"trained for {meta['epochs_logged']} epochs x {meta.get('steps_per_epoch')} steps in "
        f"{meta['train_seconds'] / 60:.1f} min on {meta.get('hardware')} "
        f"(octvessel {meta.get('octvessel_version')}, torch {meta.get('torch_version')}); "
        f"kept: best validation AUC {meta.get('best')} (epoch {meta.get('best_epoch')})",
    ]
    reproduce = [
        "```",
        *earlier,
        *prep,
        meta.get("command", ""),
        f"python scripts/ship_weights.py --run RUN_DIR --name {name} ...",
        "```",
    ]
    table = [
        "| data | images | " + " | ".join(HEADLINE) + " |",
        "|---|---|" + "---|" * len(HEADLINE),
    ]
    for label, m in metrics.items():
        cells = " | ".join(f"{m[k]:.4f}" if k in m else "-" for k in HEADLINE)
        table.append(f"| {label} | {m.get('n_images')} | {cells} |")
    limits = [
        f"Trained in {total_seconds / 60:.0f} min in all"
        f"{f' over {len(stages) + 1} stages' if stages else ''} on "
        f"{meta.get('hardware')}, not with the paper's 200-epoch GPU recipe, whose "
        "published IterNet numbers are DRIVE AUC 0.9816, F1 0.816-0.821. No real OCT "
        "data with vessel labels exists in this project: any OCT number here comes from "
        "simulations (octified fundus photographs, synthetic phantoms), not from scans. "
        "Research use only; the training datasets' licences apply (DRIVE, STARE).",
        "",
        f"sha256 of `{WEIGHTS_NAME}` (checked on every load): {{sha256}}",
    ]
    card.section("Reproduce", reproduce)
    card.section("Measured (pooled pixels inside the FOV, native resolution, threshold 0.5)", table)
    card.section("Limits", limits)
    return card.render()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--summary", default="")
    ap.add_argument("--eval", action="append", default=[], help="LABEL=path/to/metrics.json")
    ap.add_argument("--prep", action="append", default=[], help="data preparation command")
    ap.add_argument("--out", type=Path, default=SHIPPED_DIR)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument(
        "--show-path",
        action="append",
        default=[],
        metavar="RECORDED=SHOWN",
        help="write a recorded path under another name in the card and config.json (e.g. "
        "a run folder outside the repository as runs/...); both list each renaming",
    )
    ap.add_argument("--scale-note", default="", help="replace the run's note on its pixel size")
    args = ap.parse_args()

    model, bundle = load_model(args.run)
    if args.scale_note and bundle.scale is not None:
        bundle = dataclasses.replace(
            bundle, scale=dataclasses.replace(bundle.scale, note=args.scale_note)
        )
    renames = [tuple(r.partition("=")[::2]) for r in args.show_path]
    meta = shown(read_run(args.run), renames)
    metrics = dict(read_eval(e) for e in args.eval)
    stages = shown(lineage(bundle.metadata.get("init_from")), renames)
    bundle_meta = shown(bundle.metadata, renames)
    total_seconds = meta["train_seconds"] + sum(st["train_seconds"] for st in stages)
    dest = args.out / args.name
    metadata = {
        **bundle_meta,
        **{k: meta[k] for k in ("train_seconds", "epochs_logged", "splits")},
        "name": args.name,
        "summary": args.summary,
        "metrics": metrics,
        "data_preparation": args.prep,
        "earlier_stages": stages,
        "total_train_seconds": total_seconds,
        **({"paths_shown_as": dict(renames)} if renames else {}),
    }
    text = card(
        args.name,
        args.summary,
        {**bundle_meta, **meta},
        metrics,
        args.prep,
        model.count_parameters(),
        bundle,
        stages,
        total_seconds,
    )
    save_pretrained(
        model,
        dest,
        preprocessing=bundle.preprocessing,
        metadata=metadata,
        dtype="float16",
        scale=bundle.scale,
        card=text,
        overwrite=args.overwrite,
    )
    sha = json.loads((dest / "config.json").read_text())["sha256"][WEIGHTS_NAME]
    if renames:
        listed = ", ".join(f"`{old}` as `{new}`" for old, new in renames)
        text += f"\nPaths in this card and config.json: recorded {listed}.\n"
    atomic.write_text(dest / "README.md", text.replace("{sha256}", sha), overwrite=True)
    size = (dest / WEIGHTS_NAME).stat().st_size
    print(f"shipped {args.name} -> {dest} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
