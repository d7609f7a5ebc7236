"""What to predict: one image file, a folder of images, a reconstruction folder or a dataset.

Variants are first-class: an en-face reconstruction (``NAME_fundus_P1.bmp``, ``_P2``,
``_P3``, ``_slab1`` ...) keeps its variant in its name, so every variant of a volume is a
separate input (``NAME_fundus_P2`` -> ``NAME_fundus_P2_prob.png``) that carries its
``variant`` and, when known, its pixel size.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from octvessel import layout
from octvessel.data.datasets import VARIANTS, detect_format, index_dataset
from octvessel.data.io import is_image_file
from octvessel.data.layouts import detect_layout, image_files, natural_key, stem
from octvessel.errors import InputError, UsageError

#: the variant tag of a reconstruction's file stem: ``NAME_fundus_<tag>``
VARIANT_TAG = re.compile(r"_fundus_([A-Za-z0-9+\-]+)$")
#: the sidecar ``octvessel reconstruct`` writes per volume (``NAME_enface.json``)
SIDECAR_SUFFIX = "_enface.json"


@dataclass(frozen=True)
class InputImage:
    """One image to predict.

    Attributes:
        name: the output name (``NAME`` of ``NAME_prob.png``); keeps the variant.
        path: the image file.
        variant: ``P1``/``P2``/``P3``/``slab1`` ... of a reconstruction, else None.
        spacing_mm: (row, column) pixel size in mm when the sidecar or the dataset says,
            else None.
        spacing_source: where ``spacing_mm`` came from (the sidecar or dataset.json file).
    """

    name: str
    path: Path
    variant: str | None = None
    spacing_mm: tuple[float, float] | None = None
    spacing_source: str | None = None


def variant_of(path: str | Path) -> str | None:
    """The variant tag of a reconstruction file name (``x_fundus_P2.bmp`` -> ``P2``), or None."""
    m = VARIANT_TAG.search(stem(Path(path)))
    return m.group(1) if m else None


def list_inputs(
    path: str | Path, *, split: str | None = None, variants: Sequence[str] | None = None
) -> list[InputImage]:
    """The images under ``path``: one image file, a folder of images, or a dataset folder.

    - a reconstruction folder (``octvessel reconstruct``: ``NAME_enface.json`` sidecars)
      gives every image its sidecars list, each variant named ``NAME_fundus_<variant>``;
    - a dataset folder (DRIVE, CHASE_DB1, STARE, HRF, CAVRI-C, generic layouts) gives its
      images with their dataset names (labels are not needed and not read), a CAVRI-C one
      every variant it holds; ``split`` selects one split of it;
    - any other folder gives the image files directly inside it, named by their stem,
      leaving out the outputs an earlier ``predict`` wrote there (``NAME_prob.png`` ...).

    ``variants`` keeps only those variants (case-insensitive); default: every variant.

    Raises:
        InputError: missing path, a file that is not an image, a folder without images,
            a sidecar naming a missing image, or two images with the same name.
        UsageError: ``split`` or ``variants`` that the input does not have.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("input not found; expected an image, a folder of images or a dataset", p)
    if p.is_file():
        if split is not None:
            raise UsageError(f"--split {split}: applies to dataset folders, not to one image", p)
        if not is_image_file(p):
            raise InputError(
                "not an image file (expected .png, .jpg, .tif, .bmp, .gif, .ppm ...)", p
            )
        items = [InputImage(stem(p), p, variant_of(p))]
    elif sidecars(p):
        if split is not None:
            raise UsageError(f"--split {split}: this reconstruction folder has no splits", p)
        items = _reconstructions(p)
    elif detect_layout(p) is not None or (p / layout.DATASET_JSON).is_file():
        items = _dataset_images(p, split)
    else:
        if split is not None:
            raise UsageError(f"--split {split}: this folder is not a dataset with splits", p)
        items = _folder_images(p)
    return select_variants(_unique(items, p), variants, p)


def sidecars(folder: Path) -> list[Path]:
    """The reconstruction sidecars (``NAME_enface.json``) directly inside ``folder``."""
    return sorted(folder.glob(f"*{SIDECAR_SUFFIX}"), key=lambda f: natural_key(f.name))


def variants_of(items: Iterable[InputImage]) -> list[str]:
    """The variants among ``items``, in the order P1, P2, P3, then others by name."""
    found = {i.variant for i in items if i.variant is not None}
    order = {v: k for k, v in enumerate(VARIANTS)}
    return sorted(found, key=lambda v: (order.get(v.upper(), len(order)), natural_key(v)))


def select_variants(
    items: list[InputImage], variants: Sequence[str] | None, where: Path
) -> list[InputImage]:
    """``items`` of the ``variants`` asked for (all when None); unknown ones are refused."""
    if variants is None:
        return items
    wanted = [v.strip() for v in variants if v.strip()]
    if not wanted:
        raise UsageError("--variant is empty; expected e.g. P1,P2,P3")
    present = variants_of(items)
    if not present:
        raise UsageError(
            f"--variant {','.join(wanted)}: these images have no variants (only reconstructions "
            "NAME_fundus_P1.bmp ... and CAVRI-C images do); leave --variant out",
            where,
        )
    upper = {v.upper(): v for v in present}
    unknown = [v for v in wanted if v.upper() not in upper]
    if unknown:
        raise UsageError(
            f"--variant {','.join(unknown)}: not here; variants present: {', '.join(present)}",
            where,
        )
    keep = {v.upper() for v in wanted}
    return [i for i in items if i.variant is not None and i.variant.upper() in keep]


def _reconstructions(folder: Path) -> list[InputImage]:
    """Every image listed by the sidecars of a reconstruction folder."""
    items = []
    for sc in sidecars(folder):
        try:
            info = json.loads(sc.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"not a readable reconstruction sidecar ({exc})", sc) from None
        images = info.get("images") if isinstance(info, dict) else None
        if not isinstance(images, dict):
            raise InputError("a reconstruction sidecar without 'images'", sc)
        spacing = _spacing(info.get("spacing_mm"))
        for fname, meta in images.items():
            f = folder / fname
            if not f.is_file():
                raise InputError(f"listed in {sc.name} but missing; rerun reconstruct", f)
            variant = variant_of(f) or (meta or {}).get("variant")
            source = str(sc.resolve()) if spacing is not None else None
            items.append(InputImage(stem(f), f, variant, spacing, source))
    return sorted(items, key=lambda i: natural_key(i.name))


def _dataset_images(root: Path, split: str | None) -> list[InputImage]:
    """A dataset's images; a CAVRI-C dataset gives every variant it holds."""
    fmt = detect_format(root)
    if fmt != "cavri":
        refs = index_dataset(root, fmt, split)
        return [_from_ref(r.name, r, None, root) for r in refs]
    items = []
    for v in _cavri_variants(root):
        for r in index_dataset(root, fmt, split, variant=v):
            base = stem(r.image_path)
            name = base if base.lower().startswith(r.name.lower()) else f"{r.name}_fundus_{v}"
            items.append(_from_ref(name, r, v, root))
    return sorted(items, key=lambda i: natural_key(i.name))


def _from_ref(name: str, ref: object, variant: str | None, root: Path) -> InputImage:
    spacing = getattr(ref, "spacing", None)
    source = str((root / layout.DATASET_JSON).resolve()) if spacing is not None else None
    return InputImage(name, ref.image_path, variant, spacing, source)  # type: ignore[attr-defined]


def _cavri_variants(root: Path) -> list[str]:
    """The variants (of P1, P2, P3) whose images a CAVRI-C folder holds."""
    dirs = [root, root / "images"]
    for s in ("training", "test"):
        dirs += [root / s, root / s / "images"]
    tags = {(variant_of(f) or "").upper() for d in dirs for f in image_files(d)}
    return [v for v in VARIANTS if v in tags]


def _folder_images(folder: Path) -> list[InputImage]:
    """The image files of a plain folder, less the outputs of a ``predict`` into it."""
    files = sorted(
        (f for f in folder.iterdir() if is_image_file(f)), key=lambda f: natural_key(f.name)
    )
    if (folder / layout.PREDICTION_MANIFEST).is_file():
        files = _without_outputs(files, folder)
    if not files:
        raise InputError("no image files in this folder (and not a known dataset layout)", folder)
    return [InputImage(stem(f), f, variant_of(f)) for f in files]


def _without_outputs(files: list[Path], folder: Path) -> list[Path]:
    """Leave out ``NAME_prob.png`` ... where NAME is another file's stem or a recorded output."""
    try:
        recorded = json.loads((folder / layout.PREDICTION_MANIFEST).read_text(encoding="utf-8"))
        names = set((recorded.get("images") or {}) if isinstance(recorded, dict) else ())
    except (OSError, ValueError, AttributeError):
        names = set()
    names |= {stem(f) for f in files}
    suffixes = tuple(layout.PREDICTION_OUTPUTS.values())

    def is_output(f: Path) -> bool:
        return any(f.name.endswith(s) and f.name[: -len(s)] in names for s in suffixes)

    return [f for f in files if not is_output(f)]


def _unique(items: list[InputImage], where: Path) -> list[InputImage]:
    twice = [n for n, c in Counter(i.name for i in items).items() if c > 1]
    if twice:
        clash = [i.path.name for i in items if i.name == twice[0]]
        raise InputError(
            f"two images share the name {twice[0]!r} ({', '.join(clash)}); rename one", where
        )
    return items


def _spacing(value: object) -> tuple[float, float] | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) for v in value)
    ):
        return (float(value[0]), float(value[1]))
    return None


__all__ = [
    "InputImage",
    "SIDECAR_SUFFIX",
    "list_inputs",
    "select_variants",
    "sidecars",
    "variant_of",
    "variants_of",
]
