"""One self-contained HTML report of a training run, an evaluation or a cross-validation.

``octvessel report DIR`` recognises the folder by its files:

- a cross-validation (``octvessel cv``): ``cv.json`` and ``splits.json``;
- an evaluation (``octvessel evaluate``): ``metrics.json``;
- a training run (``octvessel train``): ``train_config.json``.

The report holds the metrics tables, ROC and precision-recall curves (per fold or per
image, and pooled), the training curves from ``log.csv``, one row per test image of
image / label / probability / error map (TP white, FP red, FN blue, TN black), and the
configuration, seed and versions. Every picture is a base64 PNG inside the file: no
external asset, script or style sheet, so the file can be mailed or archived alone.

Curves and image rows need the dataset (its path is recorded in the folder) and the saved
probability maps; when the dataset is gone the report says so and embeds the curve PNGs
the folder holds instead.

:func:`screenshot` renders a report in headless Chromium (used by the tests and
``benchmarks/report_screenshot.py``).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from octvessel import __version__, atomic
from octvessel.config import JsonConfig
from octvessel.errors import InputError, UsageError
from octvessel.metrics import METRICS, curves

REPORT_NAME = "report.html"
KINDS = ("cv", "evaluation", "run")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


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
        if (
            isinstance(self.max_images, bool)
            or not isinstance(self.max_images, int)
            or self.max_images < 0
        ):
            raise UsageError(f"max_images={self.max_images!r}: expected an integer >= 0")
        if (
            isinstance(self.panel_width, bool)
            or not isinstance(self.panel_width, int)
            or self.panel_width < 32
        ):
            raise UsageError(f"panel_width={self.panel_width!r}: expected an integer >= 32")


def detect_kind(path: str | Path) -> str:
    """``"cv"``, ``"evaluation"`` or ``"run"``: what the folder holds (see module docstring)."""
    p = Path(path)
    if not p.is_dir():
        raise InputError("expected a run, evaluation or cross-validation folder", p)
    if (p / "cv.json").is_file() and (p / "splits.json").is_file():
        return "cv"
    if (p / "metrics.json").is_file():
        return "evaluation"
    if (p / "train_config.json").is_file():
        return "run"
    raise InputError(
        "not a training run (train_config.json), an evaluation (metrics.json) or a "
        "cross-validation (cv.json + splits.json) folder",
        p,
    )


# ----------------------------------------------------------------------------- pieces


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 H x W x 3 (or H x W) -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig) -> bytes:  # noqa: ANN001 (matplotlib Figure)
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read ({exc})", path) from None


def read_log(path: Path) -> list[dict[str, Any]]:
    """A trainer's ``log.csv`` as rows of numbers (``epoch``/``steps`` int, empty -> None)."""
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.append(
                    {
                        k: None
                        if v in ("", None)
                        else (int(float(v)) if k in ("epoch", "steps") else float(v))
                        for k, v in row.items()
                    }
                )
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the training log ({exc})", path) from None
    return rows


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4f}" if np.isfinite(v) else "n/a"
    return str(v)


def _is_text(v: Any) -> bool:
    """A table cell that reads as words (left-aligned) rather than a number."""
    return isinstance(v, str) and not v.replace(".", "").replace(" ± ", "").strip().isdigit()


class Page:
    """An HTML page built from escaped pieces; images are inlined as base64 PNG."""

    CSS = """
    body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
         color:#1d2330;background:#fff;max-width:1400px}
    h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid #dde3ee;
         padding-bottom:4px} h3{font-size:16px;margin:18px 0 6px}
    .sub{color:#5a6478;margin:0 0 12px}
    table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
    th,td{border:1px solid #d5dbe6;padding:3px 8px;text-align:right}
    th{background:#eef2f8} td.l,th.l{text-align:left}
    tr.hl td{background:#f6f9e8;font-weight:600}
    img{max-width:100%;display:block} figure{margin:8px 0 14px;display:inline-block;vertical-align:top}
    figcaption{font-size:12px;color:#5a6478;margin-top:3px}
    .legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;border:1px solid #888;
         vertical-align:middle}
    pre{background:#f5f7fa;border:1px solid #dde3ee;padding:8px;font-size:12px;overflow:auto;max-height:420px}
    .note{color:#8a5a00}
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []

    def add(self, raw: str) -> None:
        self.parts.append(raw)

    def h(self, level: int, text: str) -> None:
        self.add(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self.add(f"<p{c}>{html.escape(text)}</p>")

    def table(
        self,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        highlight: Iterable[int] = (),
    ) -> None:
        hl = set(highlight)
        out = ["<table><tr>"]
        out += [
            f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>'
            for i, h in enumerate(header)
        ]
        out.append("</tr>")
        for r, row in enumerate(rows):
            out.append('<tr class="hl">' if r in hl else "<tr>")
            out += [
                f'<td class="{"l" if i == 0 or _is_text(v) else ""}">{html.escape(_num(v))}</td>'
                for i, v in enumerate(row)
            ]
            out.append("</tr>")
        out.append("</table>")
        self.add("".join(out))

    def image(self, png: bytes, alt: str, caption: str | None = None) -> None:
        data = base64.b64encode(png).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.add(
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
        )

    def pre(self, text: str) -> None:
        self.add(f"<pre>{html.escape(text)}</pre>")

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{self.CSS}</style></head><body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )


# ----------------------------------------------------------------------------- sections


def _metric_rows(named: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    return [[label, *(values.get(m) for m in METRICS)] for label, values in named]


def _versions_section(page: Page, facts: dict[str, Any]) -> None:
    page.h(2, "Configuration, seed and versions")
    page.table(
        ["item", "value"],
        [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in facts.items()],
    )


def _legend(page: Page) -> None:
    from octvessel.visualize import FN_COLOR, FP_COLOR, TP_COLOR

    def sw(c: tuple[int, int, int]) -> str:
        return f'<span style="background:rgb{c}"></span>'

    page.add(
        '<p class="legend">Each row: image | label | probability | error map at the threshold:'
        f"{sw(TP_COLOR)}true positive{sw(FP_COLOR)}false positive{sw(FN_COLOR)}false negative"
        f"{sw((0, 0, 0))}true negative{sw((40, 40, 40))}outside the FOV</p>"
    )


@dataclass
class _ImageData:
    """What one image row needs (arrays at the label's grid)."""

    name: str
    image: np.ndarray  # float32 H x W x C in [0, 1]
    label: np.ndarray  # bool H x W
    fov: np.ndarray  # bool H x W
    prob: np.ndarray  # float32 H x W in [0, 1]


def _load_images(
    dataset: str | None,
    fmt: str,
    observer: int,
    variant: str,
    pred_dir: Path | None,
    names: Sequence[str],
) -> tuple[list[_ImageData], str | None]:
    """The images, labels and saved probabilities of ``names``; or ([], why not)."""
    from octvessel.data.datasets import index_dataset
    from octvessel.evaluation import find_prediction, read_probability
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
        path = find_prediction(pred_dir, [name])
        if name not in refs or path is None:
            return [], f"image or prediction of {name} missing: curves and image rows left out"
        s = refs[name].load()
        prob = read_probability(path)
        if prob.shape != s.label.shape:
            prob = resample(prob, s.label.shape)
        out.append(_ImageData(name, s.image, s.label, s.fov, np.clip(prob, 0.0, 1.0)))
    return out, None


def _image_rows(
    page: Page,
    images: Sequence[_ImageData],
    threshold: float,
    config: ReportConfig,
    captions: dict[str, str] | None = None,
) -> None:
    from octvessel.visualize import error_map, panel_row, to_rgb8

    if config.max_images == 0 or not images:
        return
    _legend(page)
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


def _curves_section(
    page: Page,
    groups: Sequence[tuple[str, Sequence[_ImageData]]],
    pooled_values: dict[str, float],
    per_image: bool,
    title: str,
) -> None:
    """ROC and PR of each group (fold) and pooled; ``per_image`` draws images instead."""
    from octvessel.metrics import auc_pr, auc_roc
    from octvessel.visualize import fold_curves_figure, pr_figure, roc_figure

    def flat(ims: Sequence[_ImageData]) -> tuple[np.ndarray, np.ndarray]:
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


def _embed_existing(page: Page, folder: Path, names: Sequence[str]) -> None:
    for n in names:
        if (folder / n).is_file():
            page.image((folder / n).read_bytes(), n, f"{n} (as saved in {folder.name})")


def _training_section(
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


def _run_facts(run_dir: Path) -> dict[str, Any]:
    """Recipe, seed and versions of a training run folder."""
    facts: dict[str, Any] = {}
    if (run_dir / "train_config.json").is_file():
        cfg = read_json(run_dir / "train_config.json")
        facts["seed"] = cfg.get("seed")
        facts["recipe (train_config.json)"] = cfg
    if (run_dir / "config.json").is_file():
        bundle = read_json(run_dir / "config.json")
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


def _generator_facts() -> dict[str, Any]:
    return {
        "report generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "report by": f"octvessel {__version__}, python {platform.python_version()}",
    }


# ----------------------------------------------------------------------------- kinds


def _run_report(d: Path, page: Page, config: ReportConfig) -> None:
    log = read_log(d / "log.csv")
    facts = _run_facts(d)
    page.h(1, config.title or f"Training run {d.name}")
    page.p(
        f"{d.resolve()} · model {facts.get('model', '?')} · seed {facts.get('seed', '?')}", "sub"
    )
    page.h(2, "Metrics")
    if log:
        keys = [k for k in ("epoch", "loss", "val_auc", "val_loss", "lr", "seconds") if k in log[0]]
        best = facts.get("best_epoch")
        page.table(
            keys,
            [[r.get(k) for k in keys] for r in log],
            highlight=[i for i, r in enumerate(log) if r["epoch"] == best],
        )
        page.p(
            f"Highlighted: the epoch whose weights are best.safetensors ({facts.get('best_metric', 'best metric')})."
        )
    page.p(
        "A training run holds no test metrics: score it with `octvessel evaluate -m RUN -d DATASET -o DIR` "
        "and report that folder, or cross-validate with `octvessel cv`.",
        "note",
    )
    page.h(2, "Training curves")
    _training_section(page, [("", log)], d.name)
    if (d / "splits.json").is_file():
        page.h(2, "Images")
        page.pre(json.dumps(read_json(d / "splits.json"), indent=1))
    _versions_section(page, {**facts, **_generator_facts()})


def _evaluation_report(d: Path, page: Page, config: ReportConfig) -> None:
    m = read_json(d / "metrics.json")
    source = m.get("source", {})
    page.h(1, config.title or f"Evaluation {d.name}")
    page.p(
        f"{d.resolve()} · dataset {m.get('dataset')} (split {m.get('split') or 'all'}) · "
        f"{m.get('n_images')} images · {source.get('model') or source.get('predictions')}",
        "sub",
    )
    page.h(2, "Metrics")
    page.table(
        ["", *METRICS],
        _metric_rows([("pooled", m["pooled"]), ("mean", m["mean"]), ("std", m["std"])]),
        highlight=[0],
    )
    page.p(
        f"Pooled: all FOV pixels of the {m['n_images']} images ({m['n_pixels']:,} pixels) at threshold "
        f"{m['threshold']}; mean and std over images."
    )
    page.h(3, "Per image")
    page.table(["image", *METRICS], _metric_rows([(r["name"], r) for r in m["per_image"]]))
    pred_dir = (
        d / "predictions"
        if (d / "predictions").is_dir()
        else (Path(source["predictions"]) if source.get("predictions") else None)
    )
    names = [r["name"] for r in m["per_image"]]
    images, why = _load_images(
        m.get("dataset"), "auto", m.get("observer", 1), m.get("variant", "P1"), pred_dir, names
    )
    page.h(2, "ROC and precision-recall curves")
    if images:
        _curves_section(page, [("all", images)], m["pooled"], True, d.name)
    else:
        page.p(why or "", "note")
        _embed_existing(page, d, ["roc.png", "pr.png"])
    model_dir = (
        Path(source["model"])
        if isinstance(source.get("model"), str) and Path(source["model"]).is_dir()
        else None
    )
    if model_dir is not None:
        page.h(2, "Training curves")
        _training_section(page, [("", read_log(model_dir / "log.csv"))], model_dir.name)
    page.h(2, "Images")
    if images:
        caps = {
            r[
                "name"
            ]: f"{r['name']}: F1 {_num(r['f1'])}, AUC {_num(r['auc_roc'])}, accuracy {_num(r['accuracy'])}"
            for r in m["per_image"]
        }
        _image_rows(page, images, m["threshold"], config, caps)
    else:
        page.p(why or "", "note")
    facts = {"threshold": m["threshold"], "source": source, "notes": m.get("notes")}
    if model_dir is not None:
        facts.update(_run_facts(model_dir))
    _versions_section(page, {**facts, **_generator_facts()})


def _cv_report(d: Path, page: Page, config: ReportConfig) -> None:
    from octvessel.cv import CV_METRICS_JSON, FOLD_DONE_NAME, read_splits

    info = read_json(d / "cv.json")
    folds = read_splits(d / "splits.json")
    splits_doc = read_json(d / "splits.json")
    cfg = info.get("config", {})
    threshold = cfg.get("threshold", 0.5)
    page.h(1, config.title or f"Cross-validation {d.name}")
    page.p(
        f"{d.resolve()} · dataset {info.get('dataset')} ({info.get('format')}) · {len(folds)} folds over "
        f"{splits_doc.get('n_images')} images · {splits_doc.get('method')}",
        "sub",
    )
    arms = []
    for a in info.get("arms", []):
        path = d / a["name"] / CV_METRICS_JSON
        arms.append({**a, "metrics": read_json(path) if path.is_file() else None})
    done = [a for a in arms if a["metrics"] is not None]
    page.h(2, "Metrics")
    if not done:
        page.p(
            "No arm has finished all its folds yet: run the same `octvessel cv` command again.",
            "note",
        )
    if len(done) > 1:
        page.h(3, "Comparison (pooled pixels of all folds' test images; fold mean ± std below)")
        rows = []
        for a in done:
            g = a["metrics"]
            rows.append([a["name"], *(g["pooled"][m] for m in METRICS)])
            rows.append(
                [
                    "  fold mean ± std",
                    *(f"{_num(g['fold_mean'][m])} ± {_num(g['fold_std'][m])}" for m in METRICS),
                ]
            )
        page.table(["arm", *METRICS], rows, highlight=range(0, len(rows), 2))
    page.h(3, "Folds")
    page.table(
        ["fold", "test images", "n"],
        [[f"fold {f.index}", ", ".join(f.test), len(f.test)] for f in folds],
    )
    for a in arms:
        g = a["metrics"]
        page.h(
            2,
            f"{a['name']}: {a['model']}"
            + (
                f", variant {a['variant']}"
                if a["variant"] != "P1" or a["name"] != a["model"]
                else ""
            ),
        )
        if g is None:
            page.p("Not finished: rerun the cv command to complete it.", "note")
            continue
        named = [(f"fold {f['fold']}", f["pooled"]) for f in g["folds"]]
        named += [
            ("pooled", g["pooled"]),
            ("fold mean", g["fold_mean"]),
            ("fold std", g["fold_std"]),
            ("image mean", g["image_mean"]),
            ("image std", g["image_std"]),
        ]
        page.table(["", *METRICS], _metric_rows(named), highlight=[len(g["folds"])])
        page.p(
            f"Pooled: all FOV pixels of the {g['n_images']} test images of all folds ({g['n_pixels']:,} pixels), "
            f"threshold {g['threshold']}; fold mean/std: over the folds' pooled values; image mean/std: over test images."
        )
        arm_dir = d / a["name"]
        by_fold = []
        why = None
        for f in folds:
            ims, why = _load_images(
                info.get("dataset"),
                info.get("format", "auto"),
                cfg.get("observer", 1),
                a["variant"],
                arm_dir / f"fold_{f.index}" / "eval" / "predictions",
                f.test,
            )
            if why:
                break
            by_fold.append((f"fold {f.index}", ims))
        page.h(3, "ROC and precision-recall curves")
        if not why:
            _curves_section(page, by_fold, g["pooled"], False, a["name"])
        else:
            page.p(why, "note")
            _embed_existing(page, arm_dir, ["roc.png", "pr.png"])
        page.h(3, "Training curves")
        _training_section(
            page,
            [
                (f"fold {f.index}", read_log(arm_dir / f"fold_{f.index}" / "run" / "log.csv"))
                for f in folds
            ],
            a["name"],
        )
        page.h(3, "Test images")
        if not why:
            rows = {r["name"]: r for r in g["per_image"]}
            caps = {
                n: f"fold {r['fold']} · {n}: F1 {_num(r['f1'])}, AUC {_num(r['auc_roc'])}, accuracy {_num(r['accuracy'])}"
                for n, r in rows.items()
            }
            _image_rows(page, [i for _, ims in by_fold for i in ims], threshold, config, caps)
        else:
            page.p(why, "note")
        fold_records = [arm_dir / f"fold_{f.index}" / FOLD_DONE_NAME for f in folds]
        epochs = [read_json(p).get("epochs") for p in fold_records if p.is_file()]
        page.h(3, "Recipe")
        page.pre(json.dumps(a.get("recipe", {}), indent=1))
        page.p(
            f"Seed {a.get('recipe', {}).get('seed')}; epochs trained per fold: {epochs}; weights scored: best.safetensors of each fold."
        )
    facts = {
        "cross-validation": cfg,
        "splits": {
            k: splits_doc.get(k) for k in ("method", "shuffle", "seed", "group_by", "fold_sizes")
        },
        "command": info.get("command"),
        "versions": info.get("versions"),
        "started": info.get("started"),
    }
    _versions_section(page, {**facts, **_generator_facts()})


def build_report(path: str | Path, config: ReportConfig | None = None) -> str:
    """The HTML text of the report of a run, evaluation or cv folder."""
    config = config or ReportConfig()
    d = Path(path)
    kind = detect_kind(d)
    page = Page(config.title or f"octvessel {kind} report: {d.resolve().name}")
    {"cv": _cv_report, "evaluation": _evaluation_report, "run": _run_report}[kind](d, page, config)
    return page.render()


def write_report(
    path: str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    config: ReportConfig | None = None,
) -> Path:
    """Write the report of ``path`` to ``out`` (default ``path/report.html``) atomically.

    Raises:
        InputError: not a known folder, unreadable files, ``out`` exists and not ``overwrite``.
    """
    target = Path(out) if out is not None else Path(path) / REPORT_NAME
    detect_kind(path)
    atomic.check_writable(target, overwrite)  # refuse before the work
    text = build_report(path, config)
    return atomic.write_text(target, text, overwrite=overwrite)


# ----------------------------------------------------------------------------- browser


def find_chromium() -> str | None:
    """A headless-capable Chromium/Chrome: ``$OCTVESSEL_CHROMIUM`` or one on PATH, or None."""
    env = os.environ.get("OCTVESSEL_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html_path: str | Path,
    png_path: str | Path,
    *,
    width: int = 1280,
    height: int = 2000,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> Path:
    """Render ``html_path`` in headless Chromium into ``png_path`` (width x height pixels).

    Raises:
        InputError: no Chromium found, the HTML file missing, or Chromium failing.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise InputError(
            f"no Chromium found (tried $OCTVESSEL_CHROMIUM, {', '.join(CHROMIUM_NAMES)})"
        )
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    if not html_path.is_file():
        raise InputError("no such HTML file", html_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="octvessel-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"Chromium did not finish within {timeout:g} s", html_path) from None
    if proc.returncode != 0 or not png_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"Chromium failed (exit {proc.returncode}): {tail[0]}", html_path)
    return png_path


def image_stats(png_path: str | Path) -> dict[str, float]:
    """How much a screenshot shows: ``colors`` (distinct), ``std`` (of the gray levels,
    0-255), ``non_white`` (share of pixels that are not near-white) and ``rows_used``
    (share of pixel rows that hold something other than the background)."""
    from PIL import Image

    arr = np.asarray(Image.open(png_path).convert("RGB"))
    gray = arr.mean(axis=2)
    flat = arr.reshape(-1, 3)
    colors = len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))
    return {
        "width": float(arr.shape[1]),
        "height": float(arr.shape[0]),
        "colors": float(colors),
        "std": float(gray.std()),
        "non_white": float((gray < 245).mean()),
        "rows_used": float(((gray < 245).any(axis=1)).mean()),
    }


__all__ = [
    "KINDS",
    "REPORT_NAME",
    "ReportConfig",
    "build_report",
    "detect_kind",
    "find_chromium",
    "image_stats",
    "screenshot",
    "write_report",
]
