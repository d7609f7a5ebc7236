"""Which probability map belongs to which image, and whether its record says it may be scored.

``octvessel predict`` names a map after its image (keeping a reconstruction's variant:
``NAME_fundus_P2_prob.tif``) and records per map what made it (``prediction.json``
``"images"``); :func:`check_recorded` refuses maps that are not the variant scored, or
that several models made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from octvessel import layout
from octvessel.data.layouts import SampleRef, stem
from octvessel.errors import InputError

#: file names tried, in order, for image NAME in a predictions folder
PREDICTION_PATTERNS = (
    "{}_prob.tif",
    "{}_prob.tiff",
    "{}_prob.png",
    "{}.tif",
    "{}.tiff",
    "{}.png",
)


def find_prediction(pred_dir: Path, names: list[str]) -> Path | None:
    """The probability map of an image in ``pred_dir``, trying each of ``names``."""
    for name in names:
        for pattern in PREDICTION_PATTERNS:
            p = pred_dir / pattern.format(name)
            if p.is_file():
                return p
    return None


def prediction_names(ref: SampleRef) -> list[str]:
    """The names a prediction of ``ref`` may have, best first: with the variant
    (``NAME_fundus_P2``, what ``octvessel predict`` writes), the image's stem, the name."""
    names = [stem(ref.image_path), ref.name]
    variant = ref.meta.get("variant")
    if variant:
        names.insert(0, f"{ref.name}_fundus_{variant}")
    return list(dict.fromkeys(names))


def _output_name(path: Path) -> str:
    """``NAME`` of a map ``NAME_prob.tif`` / ``NAME_prob.png`` / ``NAME.png`` ..."""
    for pattern in PREDICTION_PATTERNS:
        suffix = pattern.format("")
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return stem(path)


def check_recorded(
    pred_dir: Path, refs: list[SampleRef], variant: str | None
) -> dict[str, Any] | None:
    """Refuse maps whose ``prediction.json`` record says they are not what is scored.

    Raises :class:`InputError` naming the files: a map recorded with another variant than
    the images it is scored against, maps made by more than one model (weights), or no
    maps of the variant asked for while the folder records others. Maps without a record
    (made elsewhere) are not checked. Returns what made the maps (model, weights, settings)
    when every scored map records the same, else None.
    """
    images = (_manifest_of(pred_dir).get("made_by") or {}).get("images")
    if not isinstance(images, dict):
        return None
    recorded = sorted({str(r.get("variant")) for r in images.values() if isinstance(r, dict)})
    recorded = [v for v in recorded if v != "None"]
    wrong: list[str] = []
    missing: list[str] = []
    makers: dict[str, list[str]] = {}
    facts: dict[str, dict[str, Any]] = {}
    for ref in refs:
        path = find_prediction(pred_dir, prediction_names(ref))
        if path is None:
            missing.append(ref.name)
            continue
        record = images.get(_output_name(path))
        want = ref.meta.get("variant")
        if not isinstance(record, dict):
            if want and recorded and str(want).upper() not in (v.upper() for v in recorded):
                wrong.append(f"{path.name} (no {want} prediction recorded)")
            continue
        got = record.get("variant")
        if want and got and str(got).upper() != str(want).upper():
            wrong.append(f"{path.name} ({got})")
        maker = f"{record.get('model')} {str(record.get('weights_sha256'))[:12]}"
        makers.setdefault(maker, []).append(path.name)
        facts[maker] = {k: v for k, v in record.items() if k in MAKER_KEYS}
    if missing and variant and recorded and variant.upper() not in (v.upper() for v in recorded):
        raise InputError(
            f"no {variant} maps for {len(missing)} image(s) (e.g. {missing[0]}): prediction.json "
            f"records {', '.join(recorded)} only; predict the {variant} images "
            f"(predict --variant {variant}) or evaluate --variant {','.join(recorded)}",
            pred_dir,
        )
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise InputError(
            f"{len(wrong)} map(s) are not predictions of the {variant} images scored: {shown}; "
            f"pass --variant to match, or predict the {variant} images (predict --variant {variant})",
            pred_dir,
        )
    if len(makers) > 1:
        parts = [
            f"{m.split()[0]} ({len(files)}: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''})"
            for m, files in makers.items()
        ]
        raise InputError(
            f"holds maps of {len(makers)} models: {'; '.join(parts)}; predict them again with "
            "one model (predict --overwrite) before scoring",
            pred_dir,
        )
    return next(iter(facts.values())) if facts else None


#: what a map's record says about its maker (kept in metrics.json's source)
MAKER_KEYS = ("model", "architecture", "weights_sha256", "preprocessing", "inference", "threshold")


def _manifest_of(pred_dir: Path) -> dict[str, Any]:
    """What ``octvessel predict`` recorded about a predictions folder (model, settings)."""
    path = pred_dir / layout.PREDICTION_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"made_by": manifest} if isinstance(manifest, dict) else {}


def _maker_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The folder-level facts of a manifest (without its per-image records)."""
    return {k: v for k, v in manifest.items() if k != "images"}


__all__ = [
    "MAKER_KEYS",
    "PREDICTION_PATTERNS",
    "check_recorded",
    "find_prediction",
    "prediction_names",
]
