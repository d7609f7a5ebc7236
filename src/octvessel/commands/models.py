"""``octvessel models``: list architectures and shipped weights."""

from __future__ import annotations

import argparse

HELP = "list model architectures and shipped weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", action="store_true", help="also count each architecture's parameters")


def run(args: argparse.Namespace) -> int:
    from octvessel.models import create_model, get_spec, list_models, list_shipped

    print("architectures (octvessel train --model NAME):")
    for name in list_models():
        count = f" [{create_model(name).count_parameters():,} parameters]" if args.count else ""
        print(f"  {name:<10} {get_spec(name).description}{count}")
    shipped = list_shipped()
    print("shipped weights (-m NAME):")
    if not shipped:
        print("  none in this version")
    for name, folder in shipped.items():
        print(f"  {name:<16} {folder}")
    return 0
