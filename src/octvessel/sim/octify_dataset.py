"""Writing octified datasets: :func:`octify_dataset` and its previews.

:mod:`octvessel.sim.octify` turns one labelled photograph into OCT-like samples; this
module writes a whole dataset of them in the CAVRI-C-style layout that
:func:`octvessel.data.load_dataset` reads back (atomically: a temporary sibling folder moved
into place), and draws :func:`write_preview` pictures.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError
from octvessel.sim.octify import GENERATOR, OctifyConfig, _gray, octify_sample

# ----------------------------------------------------------------------------- dataset


@dataclass
class _Plan:
    """Where the outputs go: split folders when the source splits are training/test."""

    folders: bool
    json_splits: dict[str, list[str]] = field(default_factory=dict)


def _sample_seed(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it is an octify output itself."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is a file; expected a folder for the octified dataset", out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise InputError("exists already; pass --overwrite to replace it", out)
    try:
        info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
        ours = info.get("generator", {}).get("what") == GENERATOR
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise InputError(
            "is not empty and not an octify output (no dataset.json from octvessel.sim.octify); "
            "--overwrite replaces only octify outputs: choose another folder",
            out,
        )


def octify_dataset(
    path: str | Path,
    out: str | Path,
    config: OctifyConfig | None = None,
    overwrite: bool = False,
    *,
    format: str = "auto",
    split: str | None = None,
    keep_splits: bool = True,
    observer: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Octify every labelled image of a dataset into a CAVRI-C-style dataset at ``out``.

    Layout (``load_dataset(out)`` reads it; ``octvessel train -d OUT`` trains on it)::

        [training/ | test/]images/<name>_c<k>_fundus_P1.bmp   8-bit gray, 385 x 141
        [training/ | test/]manual/<name>_c<k>_fundus_ref.bmp  label {0, 255}
        [training/ | test/]mask/<name>_c<k>_mask.bmp          FOV {0, 255}
        dataset.json       format, spacing, splits, generator (config, source), per-sample facts

    With ``keep_splits`` a source with training/test splits (DRIVE) keeps them as folders,
    other split names go into ``dataset.json``; without, the output is flat. The whole
    folder is written in a temporary sibling and moved into place at the end, so a crash
    leaves no half dataset; an existing non-empty ``out`` is refused unless ``overwrite``
    (and even then only an earlier octify output is replaced).

    Args:
        path: the labelled source dataset (any layout :func:`load_dataset` reads).
        out: the output folder.
        config: :class:`OctifyConfig` (defaults when None).
        overwrite: replace an earlier octify output at ``out``.
        format, split, observer: passed to :func:`octvessel.data.index_dataset`.
        keep_splits: carry the source splits into the output.
        progress: a tqdm bar over the source images (on stderr).

    Returns:
        The ``dataset.json`` content.

    Raises:
        InputError: unreadable source, an image without label (unlabelled STARE images
            are skipped, as ``load_dataset(require_labels=True)`` does), unknown pixel
            size, an existing output without ``overwrite``.
    """
    from tqdm import tqdm

    from octvessel.atomic import write_json
    from octvessel.data.datasets import index_dataset
    from octvessel.data.io import write_image, write_mask

    cfg = config or OctifyConfig()
    src, dst = Path(path), Path(out)
    _check_output(dst, overwrite)
    refs = index_dataset(src, format, split, observer=observer, variant=cfg.variant)
    unlabelled = [r for r in refs if r.label_path is None]
    if unlabelled and refs[0].format == "stare" and len(unlabelled) < len(refs):
        refs = [r for r in refs if r.label_path is not None]  # the full STARE set: 20 of 400
        unlabelled = []
    if unlabelled:
        r = unlabelled[0]
        more = f" ({len(unlabelled) - 1} more)" if len(unlabelled) > 1 else ""
        raise InputError(
            f"octify needs a vessel label for every image; none found (expected "
            f"{r.expected_label}){more}",
            r.image_path,
        )
    splits = {r.split for r in refs}
    plan = _Plan(folders=keep_splits and None not in splits and splits <= {"training", "test"})
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh_dir(dst.parent, f".{dst.name}.octify-")
    except OSError as exc:
        raise InputError(f"cannot write beside the output folder ({exc})", dst) from exc
    records = []
    try:
        for ref in tqdm(refs, desc="octify", unit="image", disable=not progress):
            sample = ref.load()
            rng = np.random.default_rng(_sample_seed(cfg.seed, sample.name))
            for s in octify_sample(sample, cfg, rng):
                base = tmp / s.split if plan.folders and s.split else tmp
                stem = f"{s.name}_fundus"
                pixels = np.rint(s.image[..., 0] * 255).astype(np.uint8)
                write_image(base / "images" / f"{stem}_{cfg.variant}.bmp", pixels)
                write_mask(base / "manual" / f"{stem}_ref.bmp", s.label)
                write_mask(base / "mask" / f"{s.name}_mask.bmp", s.fov)
                if keep_splits and not plan.folders and s.split is not None:
                    plan.json_splits.setdefault(s.split, []).append(s.name)
                records.append({"name": s.name, "split": s.split, **s.meta})
        info: dict[str, Any] = {"format": "cavri", "spacing": list(cfg.spacing)}
        if plan.json_splits:
            info["splits"] = plan.json_splits
        info["generator"] = {
            "what": GENERATOR,
            "note": "simulated OCT-en-face-like images from labelled fundus photographs; "
            "not OCT data",
            "source": str(src),
            "source_format": refs[0].format,
            "source_split": split,
            "config": cfg.to_dict(),
        }
        fractions = [r["label_fraction"] for r in records]
        info["stats"] = {
            "source_images": len(refs),
            "samples": len(records),
            "label_fraction_mean": round(float(np.mean(fractions)), 5),
            "label_fraction_source_mean": round(
                float(np.mean([r["label_fraction_source"] for r in records])), 5
            ),
        }
        info["samples"] = records
        write_json(tmp / "dataset.json", info)
        _move_into_place(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _move_into_place(tmp: Path, dst: Path) -> None:
    """Replace ``dst`` (absent, empty or an earlier octify output) by ``tmp``."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.octify-old-{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        if old is not None:
            os.replace(old, dst)
        raise InputError(f"could not move the finished dataset into place ({exc})", dst) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named folder in ``parent``, with the permissions the process's umask
    gives (``os.mkdir`` applies it; ``tempfile.mkdtemp`` would give 0o700, and reading the
    umask means setting it, which races with other threads)."""
    for _ in range(100):
        path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError("could not create a working folder here", parent)


# ----------------------------------------------------------------------------- preview


def write_preview(
    source: Sample,
    outputs: Sequence[Sample],
    path: str | Path,
    config: OctifyConfig | None = None,
    max_rows: int = 3,
    overwrite: bool = True,
) -> Path:
    """A PNG with one row per crop: source crop | octified image | its label.

    The octified image and label are drawn on their physical extent (mm), so a 7 x 7 mm
    crop looks square whatever the grid (141 x 385 pixels).
    """
    from matplotlib.figure import Figure

    from octvessel.atomic import atomic_path

    cfg = config or OctifyConfig()
    rows = list(outputs)[:max_rows]
    if not rows:
        raise UsageError("write_preview: no octified samples to show")
    gray = _gray(source.image, cfg.channel)
    fig = Figure(figsize=(9.0, 3.0 * len(rows)))
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for ax_row, s in zip(axes, rows, strict=True):
        r0, c0, ch, cw = s.meta["crop_box_px"]
        crop = gray[r0 : r0 + int(round(ch)), c0 : c0 + int(round(cw))]
        extent = (0.0, cfg.crop_mm, cfg.crop_mm, 0.0)
        lo, hi = np.percentile(crop, (1.0, 99.0))
        ax_row[0].imshow(crop, cmap="gray", extent=extent, vmin=lo, vmax=max(hi, lo + 1e-6))
        ax_row[0].set_title(
            f"{source.name}: source crop {crop.shape[1]}x{crop.shape[0]} px", fontsize=8
        )
        h, w = s.shape
        ax_row[1].imshow(
            s.image[..., 0], cmap="gray", extent=extent, vmin=0, vmax=1, aspect="equal"
        )
        ax_row[1].set_title(
            f"octified {w}x{h} px (shown {cfg.crop_mm:g}x{cfg.crop_mm:g} mm)", fontsize=8
        )
        ax_row[2].imshow(s.label, cmap="gray", extent=extent, interpolation="nearest")
        ax_row[2].set_title(f"label, {s.meta['label_fraction']:.1%} vessel", fontsize=8)
        for ax in ax_row:
            ax.set_xlabel("mm", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    p = Path(path)
    with atomic_path(p, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return p


def preview_dataset(
    path: str | Path,
    config: OctifyConfig,
    png: str | Path,
    *,
    format: str = "auto",
    split: str | None = None,
    index: int = 0,
) -> Path:
    """:func:`write_preview` of one source image of a dataset, octified as in the dataset."""
    from octvessel.data.datasets import index_dataset

    refs = index_dataset(path, format, split, variant=config.variant, require_labels=True)
    if not 0 <= index < len(refs):
        raise UsageError(f"index={index}: the dataset has {len(refs)} labelled images")
    sample = refs[index].load()
    rng = np.random.default_rng(_sample_seed(config.seed, sample.name))
    return write_preview(sample, octify_sample(sample, config, rng), png, config)


__all__ = ["octify_dataset", "preview_dataset", "write_preview"]
