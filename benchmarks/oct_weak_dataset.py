"""A weakly labelled training set from the real Spectralis volume's vessel shadows.

No real OCT volume here has vessel labels. This writes the development B-scans (1-99;
100-145 stay out of every training, as ``oct_real_agreement.py`` reports them apart) of
the real volume's P1, P2 and P3 reconstructions as a generic dataset whose labels are the
shadow map's weak mask and whose masks mark where that label can be trusted
(:func:`octvessel.oct.shadows.weak_training_label`: strong shadows as vessel, pixels whose
shadow is at most the median as background, everything in between left out). Thin
vessels cast faint shadows, so a pixel where an ``--exclude-model`` (default: the shipped
``iternet-oct``; repeat it for several, each run at its own pixel size) gives a probability
of ``--exclude-prob`` or more in any variant (grown by one pixel) is not taken as
background either. Train on it with ``octvessel train
--loss-region fov`` so that only the trusted pixels count.

    python benchmarks/oct_weak_dataset.py -o runs/data/real-weak [--recon DIR] \
        [--copies 12] [--negative-z 0] [--exclude-model iternet-oct|none ...] [--exclude-prob 0.2]

Each variant is written ``--copies`` times under different names, so that pooled with a
simulated set of a hundred-odd images the real volume is drawn often enough (the trainer
draws images uniformly). ``dataset.json`` holds the reconstruction's pixel size;
``weak_labels.json`` records what made the labels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from oct_real_agreement import PARTS, VARIANTS, real_reconstruction, real_shadow, variant_files
from scipy import ndimage

from octvessel.atomic import write_json
from octvessel.data.io import read_image, write_image, write_mask
from octvessel.oct.shadows import ShadowConfig, weak_training_label


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to write")
    ap.add_argument("--recon", type=Path, help="an existing `reconstruct` output folder")
    ap.add_argument("--copies", type=int, default=12, help="names per variant (default 12)")
    ap.add_argument("--negative-z", type=float, default=0.0,
                    help="background where the shadow's z-score is below this (default 0)")  # fmt: skip
    ap.add_argument("--exclude-model", action="append",
                    help="never background where this model sees vessel (repeatable; default "
                         "iternet-oct; 'none': off)")  # fmt: skip
    ap.add_argument("--exclude-prob", type=float, default=0.2,
                    help="probability from which --exclude-model's pixels are excluded")  # fmt: skip
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    models = [m for m in (args.exclude_model or ["iternet-oct"]) if m != "none"]
    if args.output.exists() and any(args.output.iterdir()) and not args.overwrite:
        sys.exit(f"{args.output}: exists and is not empty (give --overwrite)")
    first, last = PARTS["dev"]
    rows = slice(first - 1, last)
    with tempfile.TemporaryDirectory() as tmp:
        recon, sidecar = real_reconstruction(args.recon, Path(tmp))
        sm, _ = real_shadow(recon, sidecar, ShadowConfig())
        names = variant_files(sidecar)
        seen = None
        if models:
            from octvessel.inference import Predictor

            probs = []
            for model in models:
                predictor = Predictor.from_pretrained(model)
                probs += [predictor.predict_file(recon / names[v]) for v in VARIANTS]
            seen = ndimage.binary_dilation(np.max(probs, axis=0) >= args.exclude_prob)
        label, region = weak_training_label(sm, args.negative_z, not_background=seen)
        for variant in VARIANTS:
            image = read_image(recon / names[variant])[rows]
            for c in range(args.copies):
                name = f"spectralis_dev_{variant}_c{c:02d}"
                write_image(args.output / "images" / f"{name}.png", image)
                write_mask(args.output / "labels" / f"{name}.png", label[rows])
                write_mask(args.output / "masks" / f"{name}_mask.png", region[rows])
    spacing = [float(v) for v in sidecar["spacing_mm"]]
    write_json(args.output / "dataset.json", {"spacing": spacing})
    record = {
        "source": sidecar["source"],
        "bscans": [first, last],
        "held_out_bscans": list(PARTS["held_out"]),
        "shadow": sm.config.to_dict(),
        "negative_z": args.negative_z,
        "exclude_models": models,
        "exclude_prob": args.exclude_prob,
        "copies": args.copies,
        "vessel_fraction": float(label[rows].mean()),
        "region_fraction": float(region[rows].mean()),
        "spacing_mm": spacing,
    }
    write_json(args.output / "weak_labels.json", record)
    print(
        f"{args.output}: B-scans {first}-{last} of P1/P2/P3 x {args.copies} copies, "
        f"{rows.stop - rows.start} x {label.shape[1]} px at {spacing[0] * 1000:.1f} x "
        f"{spacing[1] * 1000:.1f} um; weak vessel {record['vessel_fraction']:.3f}, "
        f"trusted region {record['region_fraction']:.3f} of the pixels"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
