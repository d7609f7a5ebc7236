"""Segmentation networks: a registry, the OCT paper's five networks, weights bundles.

>>> from octvessel.models import create_model
>>> model = create_model("iternet")          # 8,244,356 parameters
>>> model.save_pretrained("my-model")        # model.safetensors + config.json + README.md
>>> model, config = load_model("my-model")

Registered: ``iternet``, ``unet`` (IterNet without iterations), ``unet-small``
(retina-unet), ``bcdu-net`` (BCDU-Net D3), ``sa-unet``, ``fr-unet``. Each entry carries its
reference preprocessing and training recipe (the OCT paper's forks, DESIGN.md section 5);
``COMMON_RECIPE`` is the one recipe for a fair comparison. See docs/networks.md.
"""

from octvessel.models.base import ModelConfig, SegmentationModel
from octvessel.models.bcdu_net import BCDUNet, BCDUNetConfig
from octvessel.models.fr_unet import FRUNet, FRUNetConfig
from octvessel.models.iternet import IterNet, IterNetConfig
from octvessel.models.pretrained import (
    BundleConfig,
    convert_checkpoint,
    from_pretrained,
    list_shipped,
    load_model,
    save_pretrained,
)
from octvessel.models.registry import (
    COMMON_RECIPE,
    PAPER_MODELS,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    reference_parameter_count,
    register_model,
)
from octvessel.models.sa_unet import SAUNet, SAUNetConfig
from octvessel.models.unet_small import UNetSmall, UNetSmallConfig
from octvessel.preprocessing import Preprocessing

#: retina-unet's and BCDU-Net's input: gray -> per-image stretch -> CLAHE 2.0 / 8x8 -> gamma 1.2
RETINA_UNET_PREPROCESSING = Preprocessing(color="gray", normalize="minmax", clahe=True, gamma=1.2)

register_model(
    ModelSpec(
        "iternet",
        IterNet,
        {},
        "IterNet (Li et al. 2020): 5-level UNet + 3 weight-shared mini-UNet passes",
        preprocessing=Preprocessing(color="rgb"),
        recipe={
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
        reference_parameters=8_244_356,
        parameter_convention="keras",
    )
)
register_model(
    ModelSpec("unet", IterNet, {"iterations": 0}, "plain 5-level UNet (IterNet with iterations=0)")
)
register_model(
    ModelSpec(
        "unet-small",
        UNetSmall,
        {"in_channels": 1},
        "retina-unet (orobix): 3-level U-Net 32-64-128, dropout 0.2, 2-class softmax head",
        preprocessing=RETINA_UNET_PREPROCESSING,
        recipe={
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
        reference_parameters=471_010,
        parameter_convention="keras",
    )
)
register_model(
    ModelSpec(
        "bcdu-net",
        BCDUNet,
        {"in_channels": 1},
        "BCDU-Net D3 (Azad et al. 2019): 64-128-256 encoder, dense 512 bottleneck, ConvLSTM skips",
        preprocessing=RETINA_UNET_PREPROCESSING,
        recipe={
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
        reference_parameters=20_659_717,
        parameter_convention="keras",
    )
)
register_model(
    ModelSpec(
        "sa-unet",
        SAUNet,
        {"in_channels": 3},
        "SA-UNet (Guo et al. 2020): 4-level 16-128 U-Net, DropBlock + BN, spatial attention",
        preprocessing=Preprocessing(color="rgb"),
        recipe={
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
        reference_parameters=538_707,
        parameter_convention="keras",
    )
)
register_model(
    ModelSpec(
        "fr-unet",
        FRUNet,
        {"in_channels": 1},
        "FR-UNet (Liu et al. 2022): full-resolution U-Net, multi-scale fuse, mean of 5 heads",
        preprocessing=Preprocessing(color="gray", normalize="minmax"),
        recipe={
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
        reference_parameters=5_719_621,
        parameter_convention="pytorch",
    )
)


__all__ = [
    "COMMON_RECIPE",
    "PAPER_MODELS",
    "BCDUNet",
    "BCDUNetConfig",
    "BundleConfig",
    "FRUNet",
    "FRUNetConfig",
    "IterNet",
    "IterNetConfig",
    "ModelConfig",
    "ModelSpec",
    "Preprocessing",
    "SAUNet",
    "SAUNetConfig",
    "SegmentationModel",
    "UNetSmall",
    "UNetSmallConfig",
    "convert_checkpoint",
    "create_model",
    "from_pretrained",
    "get_spec",
    "list_models",
    "list_shipped",
    "load_model",
    "reference_parameter_count",
    "register_model",
    "save_pretrained",
]
