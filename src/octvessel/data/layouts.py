"""Where each dataset layout keeps its files: detection and file matching, no pixel I/O.

Every ``index_<format>`` function lists the folder and returns :class:`SampleRef` objects
(paths only), so indexing a large dataset is cheap. Selection by split, ``dataset.json``
and loading live in :mod:`octvessel.data.datasets`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from octvessel.data.io import image_suffix, is_image_file
from octvessel.data.loading import load_ref
from octvessel.data.sample import Sample
from octvessel.errors import InputError, UsageError

__all__ = ["FORMATS", "LAYOUTS", "SampleRef", "detect_layout", "natural_key", "INDEXERS"]

FORMATS = ("drive", "chase", "stare", "hrf", "cavri", "generic")

#: One-line description of each layout, used in error messages.
LAYOUTS = {
    "drive": "training/ and test/ holding images/NN_{training,test}.tif, 1st_manual/NN_manual1.gif, "
    "2nd_manual/ (test), mask/NN_{training,test}_mask.gif",
    "chase": "flat Image_NN{L,R}.jpg with Image_NN{L,R}_1stHO.png / _2ndHO.png",
    "stare": "stare-images/imNNNN.ppm with labels-ah/imNNNN.ah.ppm and labels-vk/imNNNN.vk.ppm",
    "hrf": "images/NN_{dr,g,h}.jpg, manual1/NN_{dr,g,h}.tif, mask/NN_{dr,g,h}_mask.tif",
    "cavri": "<prefix>_fundus_P1.bmp (P2, P3) with <prefix>_fundus_ref.bmp and optional "
    "<prefix>*mask.bmp, in images/ manual/ mask/ or training/ test/",
    "generic": "images/ with labels/ (or manual/) and optional masks/ (or mask/), matching "
    "file stems, optionally under training/ and test/, optional dataset.json",
}

SPLIT_ALIASES = {"train": "training", "testing": "test", "val": "validation", "valid": "validation"}
LABEL_SUFFIXES = (
    "",
    "_label",
    "_labels",
    "_manual1",
    "_manual",
    "_gt",
    "_seg",
    "_vessel",
    "_vessels",
    "-label",
)
MASK_SUFFIXES = ("", "_mask", "-mask", "_fov", "_fovmask", "_fov_mask")


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's files are; ``.load()`` reads them into a :class:`Sample`.

    Attributes:
        name: identifier unique inside the dataset (e.g. ``"21"`` for DRIVE 21_training).
        image_path: the image file.
        label_path: the vessel label, or None when the image has none.
        mask_path: the FOV mask, or None (then it is derived from the image on load).
        split: ``"training"``, ``"test"`` ... or None.
        spacing: (row, col) mm per pixel, or None when unknown.
        format: the layout it came from (one of ``FORMATS``).
        channels: convert the image to this many channels on load (1 or 3), or None.
        expected_label: where a missing label was looked for (for error messages).
        meta: extra facts copied into ``Sample.meta`` (observer, variant ...).
    """

    name: str
    image_path: Path
    label_path: Path | None = None
    mask_path: Path | None = None
    split: str | None = None
    spacing: tuple[float, float] | None = None
    format: str = "generic"
    channels: int | None = None
    expected_label: Path | None = field(default=None, repr=False)
    meta: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def load(self) -> Sample:
        """Read the image, label and FOV mask (derived when there is no mask file)."""
        return load_ref(self)


# ---------------------------------------------------------------------------- helpers


def natural_key(text: str) -> tuple:
    """Sort key that orders "im2" before "im10"."""
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text) if t
    )


def stem(path: Path) -> str:
    """File name without ``.gz`` and the image suffix: ``im0001.ah.ppm.gz`` -> ``im0001.ah``."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    suffix = image_suffix(path)
    return name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name


def image_files(folder: Path) -> list[Path]:
    """Visible image files directly inside ``folder`` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if is_image_file(p)), key=lambda p: natural_key(p.name)
    )


def by_stem(files: list[Path]) -> dict[str, Path]:
    """Lower-case stem -> file; two files with one stem (``01.png``, ``01.tif``) is an error."""
    out: dict[str, Path] = {}
    for f in files:
        key = stem(f).lower()
        if key in out:
            raise InputError(
                f"two files for one image: {out[key].name} and {f.name}; keep one", f.parent
            )
        out[key] = f
    return out


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _find(table: dict[str, Path], base: str, suffixes: tuple[str, ...]) -> Path | None:
    return next((table[k] for s in suffixes if (k := (base + s).lower()) in table), None)


def _one_observer(fmt: str, observer: int) -> None:
    if observer != 1:
        raise UsageError(
            f"observer={observer} is not available: {fmt} datasets have labels from one "
            "observer; observer=2 exists for drive, chase and stare"
        )


# --------------------------------------------------------------------------- detection


def _split_dirs(root: Path) -> list[Path]:
    return [root / s for s in ("training", "test") if (root / s).is_dir()]


def detect_layout(root: Path) -> str | None:
    """The layout of ``root`` judged from its folders and file names, or None."""
    if (root / "stare-images").is_dir():
        return "stare"
    for d in [*_split_dirs(root), root]:
        names = [p.name for p in image_files(d / "images")]
        if any(re.match(r"^\d+_(training|test)\.", n, re.I) for n in names) or (
            d == root and names and (root / "1st_manual").is_dir()
        ):
            return "drive"
    if (root / "manual1").is_dir() and any(
        re.match(r"^\d+_(dr|g|h)\.", p.name, re.I) for p in image_files(root / "images")
    ):
        return "hrf"
    cavri_dirs = [root, root / "images"]
    for d in _split_dirs(root):
        cavri_dirs += [d, d / "images"]
    if any(re.search(r"_fundus_p\d$", stem(p), re.I) for d in cavri_dirs for p in image_files(d)):
        return "cavri"
    if any(re.fullmatch(r"image_\d+[lr]", stem(p), re.I) for p in image_files(root)):
        return "chase"
    if (root / "images").is_dir() or any((d / "images").is_dir() for d in _sub_dirs(root)):
        return "generic"
    return None


def _sub_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


# ----------------------------------------------------------------------------- formats


def index_drive(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """DRIVE: ``{training,test}/images/NN_{split}.tif`` (or one split folder as root)."""
    folders = [(d.name, d) for d in _split_dirs(root) if (d / "images").is_dir()]
    if not folders and (root / "images").is_dir():
        folders = [(root.name if root.name in ("training", "test") else None, root)]
    refs = []
    for split, d in folders:
        label_dir = d / f"{'1st' if observer == 1 else '2nd'}_manual"
        labels = by_stem(image_files(label_dir))
        masks = by_stem(image_files(d / "mask"))
        for img in image_files(d / "images"):
            s = stem(img)
            m = re.fullmatch(r"(\d+)_(training|test)", s, re.I)
            name = m.group(1) if m else s
            refs.append(
                SampleRef(
                    name=name,
                    image_path=img,
                    label_path=labels.get(f"{name}_manual{observer}".lower()),
                    mask_path=masks.get(f"{s}_mask".lower()) or masks.get(s.lower()),
                    split=split,
                    format="drive",
                    expected_label=label_dir / f"{name}_manual{observer}.gif",
                    meta={"observer": observer},
                )
            )
    return refs


def index_chase(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """CHASE_DB1: flat ``Image_NN{L,R}.jpg`` with ``_1stHO.png`` / ``_2ndHO.png``; no masks."""
    files = image_files(root)
    table = by_stem(files)
    tag = "_1stHO" if observer == 1 else "_2ndHO"
    refs = []
    for img in files:
        s = stem(img)
        if not re.fullmatch(r"image_\d+[lr]", s, re.I):
            continue
        refs.append(
            SampleRef(
                name=s,
                image_path=img,
                label_path=table.get(f"{s}{tag}".lower()),
                mask_path=_find(table, s, ("_mask",)),
                format="chase",
                expected_label=root / f"{s}{tag}.png",
                meta={"observer": observer},
            )
        )
    return refs


def index_stare(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """STARE: ``stare-images/imNNNN.ppm``, labels ``labels-ah/`` (1) or ``labels-vk/`` (2)."""
    tag = "ah" if observer == 1 else "vk"
    label_dir = root / f"labels-{tag}"
    labels = by_stem(image_files(label_dir))
    refs = []
    for img in image_files(root / "stare-images"):
        s = stem(img)
        refs.append(
            SampleRef(
                name=s,
                image_path=img,
                label_path=labels.get(f"{s}.{tag}".lower()),
                format="stare",
                expected_label=label_dir / f"{s}.{tag}.ppm",
                meta={"observer": observer},
            )
        )
    return refs


def index_hrf(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """HRF: ``images/NN_{dr,g,h}.jpg``, ``manual1/NN_*.tif``, ``mask/NN_*_mask.tif``."""
    _one_observer("hrf", observer)
    labels = by_stem(image_files(root / "manual1"))
    masks = by_stem(image_files(root / "mask"))
    return [
        SampleRef(
            name=stem(img),
            image_path=img,
            label_path=labels.get(stem(img).lower()),
            mask_path=_find(masks, stem(img), ("_mask",)),
            format="hrf",
            expected_label=root / "manual1" / f"{stem(img)}.tif",
        )
        for img in image_files(root / "images")
    ]


def index_cavri(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """CAVRI-C: ``<prefix>_fundus_<variant>.bmp``, shared ``<prefix>_fundus_ref.bmp`` label.

    Folders: ``images/ manual/ mask/`` or ``training/`` and ``test/`` holding those
    sub-folders or the files directly (the root may also hold the files directly).
    """
    _one_observer("cavri", observer)
    places = [(d.name, d) for d in _split_dirs(root)] or [(None, root)]
    refs = []
    pattern = re.compile(rf"(.+)_fundus_{variant}", re.I)
    for split, base in places:
        if (base / "images").is_dir():
            img_dir = base / "images"
            label_dir = _first_dir(base, ("manual", "labels", "ref")) or base / "manual"
            mask_dir = _first_dir(base, ("mask", "masks")) or base / "mask"
        else:
            img_dir = label_dir = mask_dir = base
        labels = by_stem(image_files(label_dir))
        mask_files = [p for p in image_files(mask_dir) if stem(p).lower().endswith("mask")]
        for img in image_files(img_dir):
            m = pattern.fullmatch(stem(img))
            if not m:
                continue
            prefix = m.group(1)
            refs.append(
                SampleRef(
                    name=prefix,
                    image_path=img,
                    label_path=labels.get(f"{prefix}_fundus_ref".lower()),
                    mask_path=_cavri_mask(prefix, variant, mask_files),
                    split=split,
                    format="cavri",
                    expected_label=label_dir / f"{prefix}_fundus_ref.bmp",
                    meta={"variant": variant},
                )
            )
    if not refs:
        dirs = [root, root / "images"]
        for d in _split_dirs(root):
            dirs += [d, d / "images"]
        stems = [stem(f) for d in dirs for f in image_files(d)]
        found = sorted(
            {m.group(1).upper() for s in stems if (m := re.search(r"_fundus_(p\d)$", s, re.I))}
        )
        if found:
            raise UsageError(
                f"no {variant} images (<prefix>_fundus_{variant}.bmp) in this CAVRI-C dataset; "
                f"variants present: {', '.join(found)}",
                root,
            )
    return refs


def _cavri_mask(prefix: str, variant: str, mask_files: list[Path]) -> Path | None:
    """``<prefix>*mask``: the variant's own mask if any, else the one shared mask."""
    pre = prefix.lower()
    own, shared = [], []
    for f in mask_files:
        s = stem(f).lower()
        rest = s[len(pre) :]
        if not s.startswith(pre) or (rest[:1].isalnum() and rest != "mask"):
            continue  # "scan10_mask" is not a mask of "scan1"
        other = re.search(r"_p\d(?![0-9])", rest)
        if other is None:
            shared.append(f)
        elif other.group(0) == f"_{variant.lower()}":
            own.append(f)
    for group in (own, shared):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            names = ", ".join(f.name for f in group)
            raise InputError(
                f"several FOV masks match {prefix!r}: {names}; keep one", group[0].parent
            )
    return None


def index_generic(root: Path, observer: int, variant: str) -> list[SampleRef]:
    """Generic: ``images/``, ``labels/`` (or ``manual/``), optional ``masks/`` (or ``mask/``).

    The same layout may sit under split folders (``training/``, ``test/``, any folder
    holding ``images/``); a label's stem is the image's, optionally followed by one of
    ``LABEL_SUFFIXES`` (``_label``, ``_manual1`` ...), a mask's by one of ``MASK_SUFFIXES``.
    """
    _one_observer("generic", observer)
    if (root / "images").is_dir():
        places: list[tuple[str | None, Path]] = [(None, root)]
    else:
        places = [
            (SPLIT_ALIASES.get(d.name.lower(), d.name), d)
            for d in _sub_dirs(root)
            if (d / "images").is_dir()
        ]
    refs = []
    for split, base in places:
        label_dir = _first_dir(base, ("labels", "manual", "label"))
        mask_dir = _first_dir(base, ("masks", "mask"))
        labels = by_stem(image_files(label_dir)) if label_dir else {}
        masks = by_stem(image_files(mask_dir)) if mask_dir else {}
        for img in image_files(base / "images"):
            s = stem(img)
            refs.append(
                SampleRef(
                    name=s,
                    image_path=img,
                    label_path=_find(labels, s, LABEL_SUFFIXES),
                    mask_path=_find(masks, s, MASK_SUFFIXES),
                    split=split,
                    format="generic",
                    expected_label=(label_dir or base / "labels") / f"{s}{img.suffix}",
                )
            )
    return refs


INDEXERS: dict[str, Callable[[Path, int, str], list[SampleRef]]] = {
    "drive": index_drive,
    "chase": index_chase,
    "stare": index_stare,
    "hrf": index_hrf,
    "cavri": index_cavri,
    "generic": index_generic,
}
