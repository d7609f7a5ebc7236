"""Training recipes as data, in one place: every named recipe octvessel knows.

A recipe is a dict of overrides of :class:`octvessel.training.TrainConfig` fields (crop,
epochs, optimizer, lr ...). :data:`REFERENCE_RECIPES` holds each network's recipe as its
reference code (or the OCT paper's fork) trained it (the ``<model>-oct`` presets; each
network's registry entry carries its own as ``ModelSpec.recipe``); :data:`COMMON_RECIPE`
is the one recipe for comparing networks fairly; :data:`PRESETS` are the other named
presets of ``octvessel train --preset``. Data only: this module imports no network.
"""

from __future__ import annotations

from typing import Any

from octvessel.preprocessing import Preprocessing

#: retina-unet's and BCDU-Net's input: gray -> per-image stretch -> CLAHE 2.0 / 8x8 -> gamma 1.2
RETINA_UNET_PREPROCESSING = Preprocessing(color="gray", normalize="minmax", clahe=True, gamma=1.2)

#: The common recipe for a fair comparison: every network gets the same input, crops,
#: budget, optimiser, schedule, loss and augmentation; only the architecture differs (each
#: in its reference configuration, ``in_channels`` following the preprocessing). Why each:
#: - gray + per-image min-max: OCT en-face images are single-channel and their intensity
#:   range differs between reconstructions (P1/P2/P3) and scans; the stretch is the common
#:   part of the references' pipelines (CLAHE and gamma are retina-unet's choices, kept in
#:   its own recipe, not imposed on the others);
#: - 64 x 64 crops, 8 images x 4 crops per step: fits inside the 141-row native grid, is a
#:   multiple of every network's internal size multiple (4, 8, 16: no padding inside) and
#:   gives BCDU-Net and FR-UNet an 8 x 8 bottleneck; batch 32 is IterNet's reference batch;
#: - Adam 1e-3 with cosine decay to 0 over 25 epochs of the reference rule
#:   ceil(100 n_train / 32) steps: 25 epochs is what four of the five OCT forks used, and
#:   the decay lets every network settle within the same fixed budget of steps;
#: - BCE (summed over IterNet's outputs as its reference does; the others have one);
#: - flips and 90-degree turns: label-exact (no interpolation) and what FR-UNet uses.
COMMON_RECIPE: dict[str, Any] = {
    "model_config": {},
    "preprocessing": Preprocessing(color="gray", normalize="minmax").to_dict(),
    "epochs": 25,
    "steps_per_epoch": 0,
    "images_per_batch": 8,
    "crops_per_image": 4,
    "crop": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "scheduler": "cosine",
    "loss": "bce",
    "augment": "flips",
    "notes": "common comparison recipe: gray + per-image min-max input, 8 images x 4 crops "
    "of 64x64, Adam 1e-3 with cosine decay, 25 epochs of ceil(100 n_train / 32) steps, BCE, "
    "flips and 90-degree turns; identical for every network",
}


#: each network's reference recipe (the OCT paper's forks), by registry name
REFERENCE_RECIPES: dict[str, dict[str, Any]] = {
    "iternet": {
        "epochs": 25,
        "steps_per_epoch": 0,
        "images_per_batch": 8,
        "crops_per_image": 4,
        "crop": 32,
        "optimizer": "adam",
        "lr": 1e-3,
        "scheduler": "none",
        "loss": "bce",
        "augment": "reference",
        "notes": "IterNet as the OCT fork trained it: RGB / 255, 8 images x 4 random 32x32 "
        "crops, 25 epochs of ceil(100 n_train / 32) steps, Adam 1e-3, BCE summed over the "
        "4 outputs, the reference augmentation",
    },
    "unet-small": {
        "epochs": 25,
        "steps_per_epoch": 0,
        "images_per_batch": 4,
        "crops_per_image": 1,
        "crop": 48,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "scheduler": "none",
        "loss": "bce",
        "augment": "none",
        "notes": "retina-unet as the OCT fork trained it: gray + CLAHE 2.0/8x8 + gamma 1.2, "
        "random 48x48 patches (no augmentation), batch 4, 25 epochs, Keras 'sgd' (lr 0.01, "
        "no momentum), 2-class cross-entropy (= BCE on the logit difference). The fork's "
        "patches per epoch are not published: the reference rule ceil(100 n_train / 4) "
        "steps stands in; retina-unet on DRIVE drew 190,000 patches per epoch",
    },
    "bcdu-net": {
        "epochs": 25,
        "steps_per_epoch": 0,
        "images_per_batch": 8,
        "crops_per_image": 1,
        "crop": 64,
        "optimizer": "adam",
        "lr": 1e-4,
        "weight_decay": 0.0,
        "scheduler": "plateau",
        "plateau_patience": 7,
        "loss": "bce",
        "augment": "none",
        "notes": "BCDU-Net as the OCT fork trained it: retina-unet preprocessing, random "
        "64x64 patches, batch 8, 25 epochs, Adam 1e-4, BCE, learning rate x0.1 on a "
        "plateau (reference: patience 7 on the loss of a 20 % validation split; here "
        "patience 7 on validation AUC). Patches per epoch: the reference "
        "rule ceil(100 n_train / 8) steps stands in for the fork's unpublished count",
    },
    "sa-unet": {
        "epochs": 25,
        "steps_per_epoch": 45,
        "images_per_batch": 4,
        "crops_per_image": 1,
        "crop": 384,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "scheduler": "none",
        "loss": "bce",
        "augment": "reference",
        "notes": "SA-UNet as the OCT fork trained it: RGB / 255, whole 384x384 images (the "
        "385x385 resamples; native 141x385 images are padded by reflection to the crop), "
        "batch 4, 25 epochs, Adam 1e-3, BCE, DropBlock 7 / keep 0.82. The reference "
        "augments offline: each image plus 3 random rotations, 3 colour jitters and 3 "
        "Gaussian-noise copies (x9 data); here online 'reference' augmentation stands in "
        "and steps_per_epoch = 9 x 20 training images / batch 4 = 45 (the paper's 6-fold "
        "split of 24 scans; scale it with n_train)",
    },
    "fr-unet": {
        "epochs": 40,
        "steps_per_epoch": 131,
        "images_per_batch": 8,
        "crops_per_image": 64,
        "crop": 48,
        "optimizer": "adam",
        "lr": 1e-4,
        "weight_decay": 1e-5,
        "scheduler": "cosine",
        "loss": "bce",
        "augment": "flips",
        "notes": "FR-UNet as the OCT fork trained it: gray, min-max normalised, 48x48 "
        "patches, batch 512, 40 epochs, Adam 1e-4 with weight decay 1e-5, cosine decay "
        "(per epoch in the reference, per step here), BCE on the mean logit, random "
        "flips and 90-degree turns, mixed precision. The reference extracts every patch "
        "at stride 6 once (zero-padded to fit) and shuffles them; here random crops "
        "stand in, with steps_per_epoch = floor(20 images x 3,364 patches / 512) = 131 "
        "for 385x385 images (141x385: 986 patches per image, 38 steps)",
    },
}


#: Named recipes. The IterNet ones follow the paper and its reference code (docs/training.md); the other networks' come
#: from :data:`REFERENCE_RECIPES` via their registry entries (``<model>-oct``) when those define a reference recipe.
PRESETS: dict[str, dict[str, Any]] = {
    "iternet-reference": {
        "notes": "IterNet reference (Li et al. 2020): Adam 1e-3, 8 images x 4 crops of 128^2, "
        "200 epochs of 100*n/32 steps, BCE summed over 4 outputs, reference augmentation",
    },
    "iternet-oct": {
        "crop": 32,
        "epochs": 25,
        "notes": "the OCT fork's IterNet recipe (Marciniak et al. 2023): 32x32 crops, 25 epochs, "
        "otherwise as the reference",
    },
    "quick": {
        "epochs": 2,
        "steps_per_epoch": 20,
        "crop": 64,
        "images_per_batch": 4,
        "crops_per_image": 2,
        "notes": "a smoke test, minutes on a CPU: not a recipe to judge a model by",
    },
}


__all__ = ["COMMON_RECIPE", "PRESETS", "REFERENCE_RECIPES", "RETINA_UNET_PREPROCESSING"]
