"""The weights inside the package agree with their own cards and with each other."""

from __future__ import annotations

import json

import pytest

from octvessel.models import load_model
from octvessel.models.pretrained import list_shipped, sha256_of

SHIPPED = list_shipped()


def test_both_models_of_the_issue_are_shipped() -> None:
    assert {"iternet-fundus", "iternet-oct"} <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_card_config_and_weights_agree(name: str) -> None:
    folder = SHIPPED[name]
    config = json.loads((folder / "config.json").read_text())
    sha = sha256_of(folder / "model.safetensors")
    assert config["sha256"]["model.safetensors"] == sha
    card = (folder / "README.md").read_text()
    assert sha in card
    meta = config["metadata"]
    assert meta["command"].startswith("octvessel train ") and meta["command"] in card
    assert meta["metrics"], "a shipped model must carry measured metrics"
    for label, metrics in meta["metrics"].items():
        assert 0.5 < metrics["auc_roc"] <= 1.0, label
        assert f"| {label} | {metrics['n_images']} | {metrics['auc_roc']:.4f} |" in card
    model, bundle = load_model(name)
    assert f"{model.count_parameters():,} parameters" in card
    assert bundle.metadata["seed"] == meta["train_config"]["seed"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_model_fine_tuned_from_a_shipped_one_started_from_the_weights_shipped_now(
    name: str,
) -> None:
    """The card's commands reproduce the weights only if the starting weights are the same."""
    meta = json.loads((SHIPPED[name] / "config.json").read_text())["metadata"]
    # this bundle's start and every earlier stage's: (what it started from, its sha256)
    starts = [(meta.get("init_from"), meta.get("init_sha256"))]
    starts += [(st["ref"], st["sha256"]) for st in meta.get("earlier_stages", [])]
    shipped = [(ref, sha) for ref, sha in starts if ref in SHIPPED and ref != name]
    if not shipped:
        pytest.skip(f"no stage of {name} starts from a shipped model")
    for ref, sha in shipped:
        assert sha == sha256_of(SHIPPED[ref] / "model.safetensors"), ref
