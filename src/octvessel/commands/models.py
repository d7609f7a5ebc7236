"""``octvessel models``: list architectures and shipped weights."""

from __future__ import annotations

import argparse

HELP = "list model architectures and shipped weights (with their measured metrics)"
SHOWN = (("auc_roc", "AUC"), ("f1", "F1"), ("accuracy", "acc"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", action="store_true", help="also count each architecture's parameters")


def run(args: argparse.Namespace) -> int:
    from octvessel.models import create_model, get_spec, list_models, list_shipped
    from octvessel.models.card import scale_text
    from octvessel.models.pretrained import CONFIG_NAME, BundleConfig

    print("architectures (octvessel train --model NAME):")
    for name in list_models():
        count = f" [{create_model(name).count_parameters():,} parameters]" if args.count else ""
        print(f"  {name:<10} {get_spec(name).description}{count}")
    shipped = list_shipped()
    print("shipped weights (-m NAME):")
    if not shipped:
        print("  none in this version")
    for name, folder in shipped.items():
        config = BundleConfig.from_file(folder / CONFIG_NAME)
        meta = config.metadata
        print(f"  {name:<16} {config.model}: {meta.get('summary', '')}")
        print(f"  {'':<16}   trained at: {scale_text(config.scale)}")
        for data, m in meta.get("metrics", {}).items():
            scores = ", ".join(
                f"{label} {m[key]:.4f}" for key, label in SHOWN if isinstance(m.get(key), float)
            )
            print(f"  {'':<16}   {data}: {scores}")
        print(f"  {'':<16}   card: {folder / 'README.md'}")
    return 0
