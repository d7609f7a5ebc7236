"""Report sections shared by the run, evaluation and cross-validation reports."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__, layout
from octvessel.config import JsonConfig, check_int
from octvessel.errors import InputError
from octvessel.metrics import METRICS, curves
from octvessel.report.page import Page, figure_png, png_bytes, read_json


@dataclass(frozen=True)
class ReportConfig(JsonConfig):
    """How much goes into a report.

    Attributes:
        max_images: at most this many image rows per section (0: none).
        panel_width: each of the four panels of an image row is at most this wide (px).
        title: the page title (default: from the folder).
    """

    max_images: int = 48
    panel_width: int = 320
    title: str | None = None

    def __post_init__(self) -> None:
        check_int("max_images", self.max_images, minimum=0)
        check_int("panel_width", self.panel_width, minimum=32)


def metric_rows(named: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    return [[label, *(values.get(m) for m in METRICS)] for label, values in named]


def versions_section(page: Page, facts: dict[str, Any]) -> None:
    page.h(2, "Configuration, seed and versions")
    page.table(
        ["item", "value"],
        [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in facts.items()],
    )


def legend(page: Page) -> None:
    from octvessel.visualize import FN_COLOR, FP_COLOR, TP_COLOR

    def sw(c: tuple[int, int, int]) -> str:
        return f'<span style="background:rgb{c}"></span>'

    page.add(
        '<p class="legend">Each row: image | label | probability | error map at the threshold:'
        f"{sw(TP_COLOR)}true positive{sw(FP_COLOR)}false positive{sw(FN_COLOR)}false negative"
        f"{sw((0, 0, 0))}true negative{sw((40, 40, 40))}outside the FOV</p>"
    )


@dataclass
class ImageData:
    """What one image row needs (arrays at the label's grid)."""

    name: str
    image: np.ndarray  # float32 H x W x C in [0, 1]
    label: np.ndarray  # bool H x W
    fov: np.ndarray  # bool H x W
    prob: np.ndarray  # float32 H x W in [0, 1]


def load_images(
    dataset: str | None,
    fmt: str,
    observer: int,
    variant: str,
    pred_dir: Path | None,
    names: Sequence[str],
) -> tuple[list[ImageData], str | None]:
    """The images, labels and saved probabilities of ``names``; or ([], why not)."""
    from octvessel.data.datasets import index_dataset
    from octvessel.evaluation import find_prediction, read_probability
    from octvessel.evaluation.dataset import prediction_names
    from octvessel.inference import resample

    if not dataset or not Path(dataset).is_dir():
        return [], f"the dataset ({dataset}) is not found: curves and image rows left out"
    if pred_dir is None or not pred_dir.is_dir():
        return [], "no saved probability maps: curves and image rows left out"
    try:
        refs = {
            r.name: r
            for r in index_dataset(
                dataset, fmt, None, observer=observer, variant=variant, require_labels=True
            )
        }
    except InputError as exc:
        return [], f"the dataset cannot be read ({exc}): curves and image rows left out"
    out = []
    for name in names:
        path = find_prediction(pred_dir, prediction_names(refs[name])) if name in refs else None
        if path is None:
            return [], f"image or prediction of {name} missing: curves and image rows left out"
        s = refs[name].load()
        prob = read_probability(path)
        if prob.shape != s.label.shape:
            prob = resample(prob, s.label.shape)
        out.append(ImageData(name, s.image, s.label, s.fov, np.clip(prob, 0.0, 1.0)))
    return out, None


def image_rows(
    page: Page,
    images: Sequence[ImageData],
    threshold: float,
    config: ReportConfig,
    captions: dict[str, str] | None = None,
) -> None:
    from octvessel.visualize import error_map, panel_row, to_rgb8

    if config.max_images == 0 or not images:
        return
    legend(page)
    for im in images[: config.max_images]:
        row = panel_row(
            [
                to_rgb8(im.image),
                to_rgb8(im.label.astype(np.float32)),
                to_rgb8(im.prob),
                error_map(im.prob >= threshold, im.label, im.fov),
            ],
            max_panel_width=config.panel_width,
            min_panel_width=min(192, config.panel_width),
        )
        page.image(
            png_bytes(row),
            f"{im.name}: image, label, probability, errors",
            (captions or {}).get(im.name, im.name),
        )
    if len(images) > config.max_images:
        page.p(
            f"{len(images) - config.max_images} more image(s) not shown (max_images={config.max_images})."
        )


def curves_section(
    page: Page,
    groups: Sequence[tuple[str, Sequence[ImageData]]],
    pooled_values: dict[str, float],
    per_image: bool,
    title: str,
) -> None:
    """ROC and PR of each group (fold) and pooled; ``per_image`` draws images instead."""
    from octvessel.metrics import auc_pr, auc_roc
    from octvessel.visualize import fold_curves_figure, pr_figure, roc_figure

    def flat(ims: Sequence[ImageData]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([i.prob[i.fov] for i in ims]),
            np.concatenate([i.label[i.fov] for i in ims]),
        )

    all_ims = [i for _, ims in groups for i in ims]
    p_all, l_all = flat(all_ims)
    pooled = curves(p_all, l_all)
    if pooled is None:
        page.p("The test pixels hold one class only: ROC and PR curves are undefined.", "note")
        return
    roc_v, pr_v = (
        pooled_values.get("auc_roc") or auc_roc(p_all, l_all),
        pooled_values.get("auc_pr") or auc_pr(p_all, l_all),
    )
    if per_image:
        per = [curves(i.prob[i.fov], i.label[i.fov]) for i in all_ims]
        figs = [
            roc_figure(pooled, roc_v, per_image=per, title=f"ROC: {title}"),
            pr_figure(pooled, pr_v, per_image=per, title=f"precision-recall: {title}"),
        ]
    else:
        parts = []
        for label, ims in groups:
            p, lab = flat(ims)
            parts.append((label, curves(p, lab), auc_roc(p, lab), auc_pr(p, lab)))
        figs = [
            fold_curves_figure(
                "roc", pooled, roc_v, [(a, c, r) for a, c, r, _ in parts], title=f"ROC: {title}"
            ),
            fold_curves_figure(
                "pr",
                pooled,
                pr_v,
                [(a, c, ap) for a, c, _, ap in parts],
                title=f"precision-recall: {title}",
            ),
        ]
    page.image(
        figure_png(figs[0]),
        "ROC curves",
        "ROC: thin per " + ("image" if per_image else "fold") + ", bold pooled",
    )
    page.image(
        figure_png(figs[1]),
        "precision-recall curves",
        "precision-recall: thin per " + ("image" if per_image else "fold") + ", bold pooled",
    )


def embed_existing(page: Page, folder: Path, names: Sequence[str]) -> None:
    for n in names:
        if (folder / n).is_file():
            page.image((folder / n).read_bytes(), n, f"{n} (as saved in {folder.name})")


def training_section(
    page: Page, histories: list[tuple[str, list[dict[str, Any]]]], title: str
) -> None:
    from octvessel.visualize import training_curves_figure

    histories = [(label, rows) for label, rows in histories if rows]
    if not histories:
        page.p("No training log (log.csv) found.", "note")
        return
    page.image(
        figure_png(training_curves_figure(histories, title=title)),
        "training curves",
        "training loss per epoch"
        + (
            " and validation AUC-ROC"
            if any(r.get("val_auc") is not None for _, rows in histories for r in rows)
            else ""
        ),
    )


def run_facts(run_dir: Path) -> dict[str, Any]:
    """Recipe, seed and versions of a training run folder."""
    facts: dict[str, Any] = {}
    if (run_dir / layout.TRAIN_CONFIG).is_file():
        cfg = read_json(run_dir / layout.TRAIN_CONFIG)
        facts["seed"] = cfg.get("seed")
        facts["recipe (train_config.json)"] = cfg
    if (run_dir / layout.BUNDLE_CONFIG).is_file():
        bundle = read_json(run_dir / layout.BUNDLE_CONFIG)
        meta = bundle.get("metadata", {})
        facts["model"] = bundle.get("model")
        facts["model_config"] = bundle.get("model_config")
        facts["preprocessing"] = bundle.get("preprocessing")
        for k in (
            "dataset",
            "fingerprint",
            "n_train",
            "n_val",
            "steps_per_epoch",
            "world_size",
            "hardware",
            "command",
            "octvessel_version",
            "torch_version",
            "best_metric",
            "best",
            "best_epoch",
        ):
            if k in meta:
                facts[k] = meta[k]
    return facts


def generator_facts() -> dict[str, Any]:
    return {
        "report generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "report by": f"octvessel {__version__}, python {platform.python_version()}",
    }
