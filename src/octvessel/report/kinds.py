"""The reports of a training run, an evaluation, a cross-validation and a demo; writing one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from octvessel import atomic, layout
from octvessel.errors import InputError
from octvessel.metrics import METRICS
from octvessel.report.page import Page, fmt_cell, read_json, read_log
from octvessel.report.sections import (
    ImageData,
    ReportConfig,
    curves_section,
    embed_existing,
    generator_facts,
    image_rows,
    load_images,
    metric_rows,
    run_facts,
    training_section,
    versions_section,
)

REPORT_NAME = layout.REPORT
VIEWER_FRAGMENT = "viewer.html"  # the linked OCT viewer a demo writes (report/viewer.py)
KINDS = ("cv", "evaluation", "variants", "run", "demo", "oct", "measure")


def detect_kind(path: str | Path) -> str:
    """What the folder holds: ``"cv"``, ``"evaluation"``, ``"variants"``, ``"run"``, ``"demo"``, ``"oct"``
    or ``"measure"``.

    cv: ``cv.json`` + ``splits.json``; evaluation: ``metrics.json`` of ``octvessel
    evaluate`` (pooled and per-image values); demo: ``metrics.json`` of ``octvessel demo``;
    run: ``train_config.json``; measure: ``measurements.json`` of ``octvessel measure``;
    oct: reconstruction sidecars.
    """
    p = Path(path)
    if not p.is_dir():
        raise InputError("expected a run, evaluation or cross-validation folder", p)
    if (p / layout.CV_CONFIG).is_file() and (p / layout.SPLITS).is_file():
        return "cv"
    if (p / layout.EVALUATION_VARIANTS).is_file() and not (p / layout.METRICS_JSON).is_file():
        return "variants"
    from octvessel.morphometry.report_section import is_measure_folder  # morphometry hook

    if is_measure_folder(p):
        return "measure"
    if (p / layout.METRICS_JSON).is_file():
        m = read_json(p / layout.METRICS_JSON)
        if isinstance(m, dict) and "pooled" in m and "per_image" in m:
            return "evaluation"
        if isinstance(m, dict) and "demo" in m and isinstance(m.get("metrics"), dict):
            return "demo"
        if not (p / layout.TRAIN_CONFIG).is_file():
            raise InputError(
                "metrics.json is neither an `octvessel evaluate` output (pooled, per_image) "
                "nor an `octvessel demo` one",
                p / layout.METRICS_JSON,
            )
    if (p / layout.TRAIN_CONFIG).is_file():
        return "run"
    from octvessel.report.oct_folder import sidecars

    if sidecars(p):
        return "oct"
    raise InputError(
        "not a training run (train_config.json), an evaluation (metrics.json) or a "
        "cross-validation (cv.json + splits.json) folder",
        p,
    )


def _demo_report(d: Path, page: Page, config: ReportConfig) -> None:
    """``octvessel demo``: phantom volume -> P1/P2/P3 -> vessel maps, scored on all pixels."""
    from octvessel.data import read_image, read_mask
    from octvessel.evaluation import read_probability

    m = read_json(d / layout.METRICS_JSON)
    demo = m.get("demo", {})
    threshold = float(demo.get("threshold", 0.5))
    page.h(1, config.title or f"Demo {d.name}")
    page.p(
        f"{d.resolve()} · synthetic OCT phantom (seed {demo.get('seed')}) · model "
        f"{m.get('model', {}).get('reference')} · all pixels scored, threshold {threshold}",
        "sub",
    )
    page.h(2, "Metrics")
    page.table(["variant", *METRICS], metric_rows(list(m["metrics"].items())))
    errors = m.get("boundary_errors_px") or {}
    if errors:
        page.h(3, "Detected layer boundaries against the phantom's truth (pixels)")
        keys = sorted({k for e in errors.values() for k in e})
        page.table(["boundary", *keys], [[b, *(e.get(k) for k in keys)] for b, e in errors.items()])
    from octvessel.morphometry.report_section import morphometry_section  # morphometry hook

    morphometry_section(page, d)
    if (d / VIEWER_FRAGMENT).is_file():
        page.add((d / VIEWER_FRAGMENT).read_text(encoding="utf-8"))
    if (d / layout.DEMO_SUMMARY).is_file():
        page.h(2, "Summary")
        page.image((d / layout.DEMO_SUMMARY).read_bytes(), "summary", layout.DEMO_SUMMARY)
    page.h(2, "Images")
    truth = d / layout.RECONSTRUCTIONS_DIR / layout.PHANTOM_TRUTH
    images = []
    for v in m["metrics"]:
        img = d / layout.RECONSTRUCTIONS_DIR / f"phantom_{v}.png"
        prob = d / layout.PREDICTIONS_DIR / f"phantom_{v}_prob.png"
        if img.is_file() and prob.is_file() and truth.is_file():
            label = read_mask(truth)
            images.append(
                ImageData(v, read_image(img), label, np.ones_like(label), read_probability(prob))
            )
    if images:
        image_rows(page, images, threshold, config, {i.name: f"variant {i.name}" for i in images})
    else:
        page.p("The reconstructions or probability maps are missing.", "note")
    facts = {"demo": demo, "model": m.get("model"), "timing_s": m.get("timing")}
    facts["octvessel"] = m.get("octvessel_version")
    versions_section(page, {**facts, **generator_facts()})


def _run_report(d: Path, page: Page, config: ReportConfig) -> None:
    log = read_log(d / layout.TRAIN_LOG)
    facts = run_facts(d)
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
    training_section(page, [("", log)], d.name)
    if (d / layout.SPLITS).is_file():
        page.h(2, "Images")
        page.pre(json.dumps(read_json(d / layout.SPLITS), indent=1))
    versions_section(page, {**facts, **generator_facts()})


def _evaluation_report(d: Path, page: Page, config: ReportConfig) -> None:
    m = read_json(d / layout.METRICS_JSON)
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
        metric_rows([("pooled", m["pooled"]), ("mean", m["mean"]), ("std", m["std"])]),
        highlight=[0],
    )
    page.p(
        f"Pooled: all FOV pixels of the {m['n_images']} images ({m['n_pixels']:,} pixels) at threshold "
        f"{m['threshold']}; mean and std over images."
    )
    page.h(3, "Per image")
    page.table(["image", *METRICS], metric_rows([(r["name"], r) for r in m["per_image"]]))
    pred_dir = (
        d / layout.PREDICTIONS_DIR
        if (d / layout.PREDICTIONS_DIR).is_dir()
        else (Path(source["predictions"]) if source.get("predictions") else None)
    )
    names = [r["name"] for r in m["per_image"]]
    images, why = load_images(
        m.get("dataset"), "auto", m.get("observer", 1), m.get("variant", "P1"), pred_dir, names
    )
    page.h(2, "ROC and precision-recall curves")
    if images:
        curves_section(page, [("all", images)], m["pooled"], True, d.name)
    else:
        page.p(why or "", "note")
        embed_existing(page, d, [layout.ROC_FIGURE, layout.PR_FIGURE])
    model_ref = source.get("model_path") or source.get("model")  # absolute since issue 16
    model_dir = Path(model_ref) if isinstance(model_ref, str) and Path(model_ref).is_dir() else None
    if model_dir is not None:
        page.h(2, "Training curves")
        training_section(page, [("", read_log(model_dir / layout.TRAIN_LOG))], model_dir.name)
    page.h(2, "Images")
    if images:
        caps = {
            r[
                "name"
            ]: f"{r['name']}: F1 {fmt_cell(r['f1'])}, AUC {fmt_cell(r['auc_roc'])}, accuracy {fmt_cell(r['accuracy'])}"
            for r in m["per_image"]
        }
        image_rows(page, images, m["threshold"], config, caps)
    else:
        page.p(why or "", "note")
    facts = {"threshold": m["threshold"], "source": source, "notes": m.get("notes")}
    if model_dir is not None:
        facts.update(run_facts(model_dir))
    versions_section(page, {**facts, **generator_facts()})


def _variants_report(d: Path, page: Page, config: ReportConfig) -> None:
    """``octvessel evaluate`` of several variants: their numbers side by side, then each."""
    from dataclasses import replace

    summary = read_json(d / layout.EVALUATION_VARIANTS)
    variants = summary.get("variants") or {}
    page.h(1, config.title or f"Evaluation {d.name}: variants {', '.join(variants)}")
    page.p(
        f"{d.resolve()} · dataset {summary.get('dataset')} (split {summary.get('split') or 'all'})"
        f" · threshold {summary.get('threshold')}",
        "sub",
    )
    page.h(2, "Variants side by side (pooled pixels)")
    page.table(
        ["variant", *METRICS],
        metric_rows([(v, e.get("pooled") or {}) for v, e in variants.items()]),
    )
    page.table(
        ["variant (mean over images)", *METRICS],
        metric_rows([(v, e.get("mean") or {}) for v, e in variants.items()]),
    )
    for v, entry in variants.items():
        sub = d / str(entry.get("folder", v))
        if (sub / layout.METRICS_JSON).is_file():
            _evaluation_report(sub, page, replace(config, title=f"Variant {v}"))
        else:
            page.p(f"{sub}: metrics.json is missing", "note")


def _cv_report(d: Path, page: Page, config: ReportConfig) -> None:
    from octvessel.cv import CV_METRICS_JSON, FOLD_DONE_NAME, read_splits

    info = read_json(d / layout.CV_CONFIG)
    folds = read_splits(d / layout.SPLITS)
    splits_doc = read_json(d / layout.SPLITS)
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
                    *(
                        f"{fmt_cell(g['fold_mean'][m])} ± {fmt_cell(g['fold_std'][m])}"
                        for m in METRICS
                    ),
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
        page.table(["", *METRICS], metric_rows(named), highlight=[len(g["folds"])])
        page.p(
            f"Pooled: all FOV pixels of the {g['n_images']} test images of all folds ({g['n_pixels']:,} pixels), "
            f"threshold {g['threshold']}; fold mean/std: over the folds' pooled values; image mean/std: over test images."
        )
        arm_dir = d / a["name"]
        by_fold = []
        why = None
        for f in folds:
            ims, why = load_images(
                info.get("dataset"),
                info.get("format", "auto"),
                cfg.get("observer", 1),
                a["variant"],
                layout.fold_eval_dir(arm_dir, f.index) / layout.PREDICTIONS_DIR,
                f.test,
            )
            if why:
                break
            by_fold.append((f"fold {f.index}", ims))
        page.h(3, "ROC and precision-recall curves")
        if not why:
            curves_section(page, by_fold, g["pooled"], False, a["name"])
        else:
            page.p(why, "note")
            embed_existing(page, arm_dir, [layout.ROC_FIGURE, layout.PR_FIGURE])
        page.h(3, "Training curves")
        training_section(
            page,
            [
                (
                    f"fold {f.index}",
                    read_log(layout.fold_run_dir(arm_dir, f.index) / layout.TRAIN_LOG),
                )
                for f in folds
            ],
            a["name"],
        )
        page.h(3, "Test images")
        if not why:
            rows = {r["name"]: r for r in g["per_image"]}
            caps = {
                n: f"fold {r['fold']} · {n}: F1 {fmt_cell(r['f1'])}, AUC {fmt_cell(r['auc_roc'])}, accuracy {fmt_cell(r['accuracy'])}"
                for n, r in rows.items()
            }
            image_rows(page, [i for _, ims in by_fold for i in ims], threshold, config, caps)
        else:
            page.p(why, "note")
        fold_records = [layout.fold_dir(arm_dir, f.index) / FOLD_DONE_NAME for f in folds]
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
    versions_section(page, {**facts, **generator_facts()})


def _oct_report(d: Path, page: Page, config: ReportConfig) -> None:
    """``octvessel reconstruct`` (+ ``predict``) folder: the linked viewer per volume."""
    from octvessel.report.oct_folder import sidecars, viewer_data
    from octvessel.report.viewer import viewer_html

    page.h(1, config.title or f"OCT {d.name}")
    for sc in sidecars(d):
        page.h(2, sc.name.replace("_enface.json", ""))
        page.add(viewer_html(viewer_data(sc)))
    versions_section(page, generator_facts())


def _measure_report(d: Path, page: Page, config: ReportConfig) -> None:
    """``octvessel measure`` folder: the table (whole image and per sector) and pictures."""
    from octvessel.morphometry.report_section import measure_report

    page.h(1, config.title or f"Morphometry {d.name}")
    measure_report(page, d)
    versions_section(page, generator_facts())


def build_report(path: str | Path, config: ReportConfig | None = None) -> str:
    """The HTML text of the report of a run, evaluation or cv folder."""
    config = config or ReportConfig()
    d = Path(path)
    kind = detect_kind(d)
    page = Page(config.title or f"octvessel {kind} report: {d.resolve().name}")
    builders = {"cv": _cv_report, "evaluation": _evaluation_report, "run": _run_report}
    builders["demo"] = _demo_report
    builders["oct"] = _oct_report
    builders["variants"] = _variants_report
    builders["measure"] = _measure_report
    builders[kind](d, page, config)
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
