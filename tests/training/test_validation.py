"""Training validation runs through the inference engine: its AUC is evaluate's AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from octvessel.data import load_dataset
from octvessel.evaluation import evaluate_dataset
from octvessel.inference import InferenceConfig, Predictor
from octvessel.preprocessing import Preprocessing
from octvessel.training.validation import best_metric, improves, validate

pytestmark = pytest.mark.usefixtures("leave_the_allocator_alone")


def test_validation_auc_equals_evaluate_auc(generic_dataset, make_tiny_iternet):
    model = make_tiny_iternet(seed=3)
    pre = Preprocessing()
    samples = load_dataset(generic_dataset, split="test", require_labels=True)
    scores = validate(model, samples, pre, torch.device("cpu"), "fp32")
    predictor = Predictor(
        model, config=InferenceConfig(method="whole"), preprocessing=pre, device="cpu"
    )
    res = evaluate_dataset(generic_dataset, predictor=predictor, progress=False)
    assert math.isfinite(scores["val_auc"]) and 0.0 < scores["val_auc"] < 1.0
    assert scores["val_auc"] == res["pooled"]["auc_roc"]
    assert np.isfinite(scores["val_loss"]) and scores["val_loss"] > 0


def test_best_metric_is_named_and_fixed(generic_dataset):
    samples = load_dataset(generic_dataset, split="test", require_labels=True)
    assert best_metric(samples) == "val_auc"
    assert best_metric([]) == "train_loss"
    one_class = [s for s in samples]
    for s in one_class:
        s.label[...] = False
    assert best_metric(one_class) == "val_loss"
    assert improves("val_auc", 0.8, 0.7) and not improves("val_auc", 0.6, 0.7)
    assert improves("val_loss", 0.2, 0.3) and not improves("val_loss", 0.4, 0.3)
    assert improves("train_loss", 1.0, None) and not improves("val_auc", float("nan"), 0.5)
