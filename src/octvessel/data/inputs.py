"""What to predict: one image file, a folder of images, or a dataset folder's images."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from octvessel import layout
from octvessel.data.datasets import detect_format, index_dataset
from octvessel.data.io import is_image_file
from octvessel.data.layouts import detect_layout, natural_key, stem
from octvessel.errors import InputError, UsageError


@dataclass(frozen=True)
class InputImage:
    """One image to predict: its output name and file."""

    name: str
    path: Path


def list_inputs(path: str | Path, *, split: str | None = None) -> list[InputImage]:
    """The images under ``path``: one image file, a folder of images, or a dataset folder.

    A dataset folder (DRIVE, CHASE_DB1, STARE, HRF, CAVRI-C, generic layouts) gives its
    images with their dataset names (labels are not needed and not read); ``split``
    selects one split of it. Any other folder gives the image files directly inside it,
    named by their stem.

    Raises:
        InputError: missing path, a file that is not an image, a folder without images,
            or two images with the same name.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("input not found; expected an image, a folder of images or a dataset", p)
    if p.is_file():
        if split is not None:
            raise UsageError(f"split={split!r} applies to dataset folders, not to one image", p)
        if not is_image_file(p):
            raise InputError(
                "not an image file (expected .png, .jpg, .tif, .bmp, .gif, .ppm ...)", p
            )
        return [InputImage(stem(p), p)]
    if detect_layout(p) is not None or (p / layout.DATASET_JSON).is_file():
        refs = index_dataset(p, detect_format(p), split)
        return [InputImage(r.name, r.image_path) for r in refs]
    if split is not None:
        raise UsageError(f"split={split!r}: this folder is not a dataset with splits", p)
    files = sorted((f for f in p.iterdir() if is_image_file(f)), key=lambda f: natural_key(f.name))
    if not files:
        raise InputError("no image files in this folder (and not a known dataset layout)", p)
    items = [InputImage(stem(f), f) for f in files]
    twice = [n for n, c in Counter(i.name for i in items).items() if c > 1]
    if twice:
        clash = [i.path.name for i in items if i.name == twice[0]]
        raise InputError(
            f"two images share the name {twice[0]!r} ({', '.join(clash)}); rename one", p
        )
    return items


__all__ = ["InputImage", "list_inputs"]
