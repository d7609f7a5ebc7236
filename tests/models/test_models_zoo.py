"""Every registered network through the same checks: sizes, channels, gradients, bundles, counts.

Reduced widths keep the forward/backward checks fast; the reference configurations are
built only to check their exact parameter counts (and run once at a small odd size).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from octvessel.data.sample import Sample
from octvessel.errors import UsageError
from octvessel.models import (
    COMMON_RECIPE,
    PAPER_MODELS,
    create_model,
    get_spec,
    list_models,
    load_model,
    reference_parameter_count,
)
from octvessel.models.bcdu_net import BCDUNetConfig
from octvessel.models.fr_unet import FRUNetConfig
from octvessel.models.sa_unet import DropBlock2d, SAUNetConfig, UpSame
from octvessel.models.unet_small import UNetSmallConfig
from octvessel.preprocessing import Preprocessing
from octvessel.sim.vessels import VesselTreeConfig, render_image
from octvessel.training import CropRecipe, multi_output_bce, train_on_crops
from octvessel.training.config import TrainConfig

#: reduced widths for the fast forward / backward / training checks
SMALL = {
    "iternet": {"base_channels": 4, "iterations": 2},
    "unet": {"base_channels": 4, "iterations": 0},
    "unet-small": {"base_channels": 4},
    "bcdu-net": {"base_channels": 4},
    "sa-unet": {"base_channels": 4},
    "fr-unet": {"feature_scale": 16},
}

#: name -> (in_channels, trainable parameters, count as the reference code reports it).
#: Keras's "Total params" include batch-norm moving means and variances.
REFERENCE_COUNTS = {
    "iternet": (3, 8_244_356, 8_244_356),
    "unet": (3, 7_760_097, 7_760_097),
    "unet-small": (1, 471_010, 471_010),
    "bcdu-net": (1, 20_658_821, 20_659_717),
    "sa-unet": (3, 537_299, 538_707),
    "fr-unet": (1, 5_719_621, 5_719_621),
}

#: the keys a recipe may use (the trainer's TrainConfig fields it reads)
RECIPE_KEYS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c: int, keras: bool) -> int:
    return (4 if keras else 2) * c


def unet_small_by_hand(c: int = 1, k: int = 32, two_class: bool = True) -> int:
    def pair(a: int, b: int) -> int:
        return conv(a, b, 3) + conv(b, b, 3)

    body = pair(c, k) + pair(k, 2 * k) + pair(2 * k, 4 * k) + pair(6 * k, 2 * k) + pair(3 * k, k)
    return body + conv(k, 2 if two_class else 1, 1)


def bcdu_by_hand(c: int = 1, k: int = 64, keras: bool = False) -> int:
    def pair(a: int, b: int) -> int:
        return conv(a, b, 3) + conv(b, b, 3)

    def lstm(i: int, f: int) -> int:  # Keras ConvLSTM2D: 4 gates, input kernel + bias, recurrent
        return 4 * (9 * (i + f) * f + f)

    total = pair(c, k) + pair(k, 2 * k) + pair(2 * k, 4 * k)
    total += pair(4 * k, 8 * k) + pair(8 * k, 8 * k) + pair(16 * k, 8 * k)
    for c_in, c_out in ((8 * k, 4 * k), (4 * k, 2 * k), (2 * k, k)):
        total += conv(c_in, c_out, 2) + bn(c_out, keras) + lstm(c_out, c_out // 2)
        total += pair(c_out // 2, c_out)
    return total + conv(k, 2, 3) + conv(2, 1, 1)


def sa_unet_by_hand(c: int = 3, k: int = 16, keras: bool = False) -> int:
    def unit(a: int, b: int) -> int:
        return conv(a, b, 3) + bn(b, keras)

    def pair(a: int, b: int) -> int:
        return unit(a, b) + unit(b, b)

    total = pair(c, k) + pair(k, 2 * k) + pair(2 * k, 4 * k)
    total += unit(4 * k, 8 * k) + conv(2, 1, 7, bias=False) + unit(8 * k, 8 * k)
    for big, small in ((8 * k, 4 * k), (4 * k, 2 * k), (2 * k, k)):
        total += conv(big, small, 3) + pair(2 * small, small)
    return total + conv(k, 1, 1)


def fr_unet_by_hand(c: int = 1, scale: int = 2, heads: int = 5) -> int:
    f1, f2, f3, f4 = (w // scale for w in (64, 128, 256, 512))

    def block(i: int, o: int, up: bool = False, down: bool = False) -> int:
        n = 19 * i * o + 2 * o if i != o else 0  # 1x1 + 3x3 + dilated 3x3, no bias, BN
        n += 2 * conv(o, o, 3, bias=False) + 2 * 2 * o  # residual pair with two BNs
        if up:
            n += o * (o // 2) * 4 + 2 * (o // 2)
        if down:
            n += o * (2 * o) * 4 + 2 * (2 * o)
        return n

    total = block(c, f1, down=True) + block(f1, f1, down=True)
    total += 3 * block(2 * f1, f1, down=True) + 2 * block(2 * f1, f1)
    total += block(f2, f2, True, True) + block(2 * f2, f2, True, True)
    total += block(3 * f2, f2, True, True) + 2 * block(3 * f2, f2, up=True)
    total += block(f3, f3, True, True) + block(2 * f3, f3, up=True) + block(3 * f3, f3, up=True)
    total += block(f4, f4, up=True)
    return total + heads * conv(f1, 1, 1)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors gain nothing from a second thread, and on a shared 2-core machine the
    idle thread's spinning costs more than it saves; restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(name: str, in_channels: int):
    return create_model(name, **{**SMALL[name], "in_channels": in_channels})


def synthetic_samples(n: int, seed: int = 0) -> list[Sample]:
    out = []
    for i in range(n):
        image, label, fov = render_image(
            VesselTreeConfig(height=48, width=64, root_radius=2.5), seed=seed + i
        )
        out.append(Sample(image=image, label=label, fov=fov, name=f"s{i}", path=None))
    return out


# ----------------------------------------------------------------------------- registry


def test_every_registered_model_is_covered_here():
    assert set(list_models()) == set(SMALL) == set(REFERENCE_COUNTS)
    assert set(PAPER_MODELS) <= set(list_models()) and len(PAPER_MODELS) == 5


@pytest.mark.parametrize("name", sorted(REFERENCE_COUNTS))
def test_reference_configuration_has_the_exact_parameter_counts(name):
    channels, trainable, reported = REFERENCE_COUNTS[name]
    model = create_model(name)
    spec = get_spec(name)
    assert model.config.in_channels == channels
    assert model.count_parameters() == trainable
    assert reference_parameter_count(model, spec.parameter_convention) == reported
    if spec.reference_parameters is not None:
        assert spec.reference_parameters == reported
    # the reference configuration runs, at an odd size
    with torch.no_grad():
        outs = model.eval()(torch.rand(1, channels, 19, 27))
    assert outs[-1].shape == (1, 1, 19, 27) and torch.isfinite(outs[-1]).all()


def test_parameter_counts_follow_the_architectures_by_hand():
    assert unet_small_by_hand() == 471_010
    assert bcdu_by_hand(keras=True) == 20_659_717
    assert sa_unet_by_hand(keras=True) == 538_707
    assert fr_unet_by_hand() == 5_719_621
    cases = [
        ("unet-small", {"in_channels": 3, "base_channels": 8}, unet_small_by_hand(3, 8)),
        ("unet-small", {"two_class": False}, unet_small_by_hand(two_class=False)),
        ("bcdu-net", {"in_channels": 3, "base_channels": 8}, bcdu_by_hand(3, 8)),
        ("sa-unet", {"in_channels": 1, "base_channels": 8}, sa_unet_by_hand(1, 8)),
        ("fr-unet", {"in_channels": 3, "feature_scale": 8}, fr_unet_by_hand(3, 8)),
        ("fr-unet", {"average_heads": False}, fr_unet_by_hand(heads=1)),
    ]
    for name, cfg, expected in cases:
        assert create_model(name, **cfg).count_parameters() == expected, (name, cfg)


def test_keras_convention_adds_the_batch_norm_statistics():
    model = create_model("sa-unet", base_channels=4)
    bn_channels = sum(
        m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )
    assert bn_channels > 0
    pytorch = reference_parameter_count(model, "pytorch")
    assert pytorch == model.count_parameters()
    assert reference_parameter_count(model, "keras") == pytorch + 2 * bn_channels
    with pytest.raises(UsageError, match="convention"):
        reference_parameter_count(model, "tensorflow")


# ----------------------------------------------------------------------------- any size


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward_at_oct_fundus_and_odd_sizes(name, in_channels):
    torch.manual_seed(0)
    model = small_model(name, in_channels).train()
    n_out = model.num_outputs
    for n, h, w in [(2, 37, 53), (1, 141, 385), (1, 385, 385)]:
        model.zero_grad(set_to_none=True)
        outs = model(torch.rand(n, in_channels, h, w))
        assert len(outs) == n_out
        assert all(o.shape == (n, 1, h, w) and torch.isfinite(o).all() for o in outs)
        weights = torch.randn(n, 1, h, w)
        sum((o * weights).mean() for o in outs).backward()
        missing = [
            n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)
        ]
        assert not missing, f"{name} at {h}x{w}: no gradient for {missing[:5]}"
    with torch.no_grad():
        out = model.eval()(torch.rand(1, in_channels, 584, 565))[-1]
    assert out.shape == (1, 1, 584, 565) and torch.isfinite(out).all()
    with pytest.raises(UsageError, match="input channel"):
        model(torch.rand(1, in_channels + 1, 16, 16))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_pretrained_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    model = small_model(name, 1)
    with torch.no_grad():  # move batch-norm statistics away from their initial values
        model.train()(torch.rand(2, 1, 40, 48) * 3)
    model.eval()
    model.save_pretrained(tmp_path / "bundle", preprocessing=Preprocessing("gray"))
    cfg = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert cfg["model"] == name and cfg["model_config"] == model.config.to_dict()
    loaded, bundle = load_model(tmp_path / "bundle")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert bundle.preprocessing == Preprocessing("gray")
    x = torch.rand(1, 1, 37, 53)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_few_training_steps_reduce_the_loss(name):
    samples = synthetic_samples(3)
    pre = Preprocessing("gray")
    x = torch.from_numpy(np.stack([pre(s.image) for s in samples]))
    y = torch.from_numpy(np.stack([s.label[None].astype(np.float32) for s in samples]))

    def loss_on_the_whole_images() -> float:
        # train mode (batch statistics), the same dropout masks before and after
        model.train()
        torch.manual_seed(123)
        with torch.no_grad():
            return multi_output_bce(model(x), y).item()

    torch.manual_seed(0)
    model = small_model(name, 1)
    before = loss_on_the_whole_images()
    recipe = CropRecipe(steps=16, crop=32, batch=4, lr=1e-2, seed=0)
    history = train_on_crops(model, samples, recipe, pre, progress=False)
    assert len(history) == 16 and np.isfinite([h["loss"] for h in history]).all()
    after = loss_on_the_whole_images()
    assert after < 0.9 * before, (before, after)


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_recipes_are_valid_training_configs(name):
    spec = get_spec(name)
    assert spec.recipe and set(spec.recipe) <= RECIPE_KEYS
    assert spec.recipe["notes"]
    TrainConfig(model=name, **spec.recipe)  # the trainer's own validation
    TrainConfig(model=name, **COMMON_RECIPE)
    # the reference preprocessing gives the channels the reference config expects
    assert spec.preprocessing.channels == create_model(name).config.in_channels
    pre = Preprocessing.from_dict(
        {**spec.preprocessing.to_dict(), **COMMON_RECIPE["preprocessing"]}
    )
    assert pre == Preprocessing(color="gray", normalize="minmax")


def test_reference_preprocessing_and_recipes_follow_the_forks():
    retina = Preprocessing(color="gray", normalize="minmax", clahe=True, gamma=1.2)
    assert get_spec("unet-small").preprocessing == retina
    assert get_spec("bcdu-net").preprocessing == retina
    assert get_spec("sa-unet").preprocessing == Preprocessing("rgb")
    assert get_spec("fr-unet").preprocessing == Preprocessing("gray", normalize="minmax")
    r = {n: get_spec(n).recipe for n in PAPER_MODELS}
    assert (r["unet-small"]["optimizer"], r["unet-small"]["lr"], r["unet-small"]["crop"]) == (
        "sgd",
        0.01,
        48,
    )
    assert (r["bcdu-net"]["lr"], r["bcdu-net"]["scheduler"], r["bcdu-net"]["crop"]) == (
        1e-4,
        "plateau",
        64,
    )
    fr = r["fr-unet"]
    assert fr["images_per_batch"] * fr["crops_per_image"] == 512
    assert (fr["epochs"], fr["weight_decay"], fr["scheduler"]) == (40, 1e-5, "cosine")
    assert r["sa-unet"]["images_per_batch"] * r["sa-unet"]["crops_per_image"] == 4


# ----------------------------------------------------------------------------- details


def test_unet_small_two_class_logit_gives_the_reference_cross_entropy():
    torch.manual_seed(2)
    model = create_model("unet-small", base_channels=4).eval()
    scores = {}
    model.head.register_forward_hook(lambda m, i, o: scores.setdefault("s", o))
    x = torch.rand(2, 1, 20, 24)
    target = (torch.rand(2, 1, 20, 24) > 0.7).float()
    with torch.no_grad():
        logit = model(x)[0]
    # reference: ReLU on the two class scores, softmax, categorical CE (class 1 = vessel)
    ce = F.cross_entropy(F.relu(scores["s"]), target[:, 0].long())
    assert torch.allclose(F.binary_cross_entropy_with_logits(logit, target), ce, atol=1e-6)
    one = create_model("unet-small", two_class=False, base_channels=4)
    assert one.head.out_channels == 1


def test_fr_unet_output_is_the_mean_of_its_five_heads():
    torch.manual_seed(3)
    model = create_model("fr-unet", feature_scale=16).eval()
    heads = []
    for head in model.heads:
        head.register_forward_hook(lambda m, i, o: heads.append(o))
    with torch.no_grad():
        out = model(torch.rand(1, 1, 24, 32))
    assert len(heads) == 5
    assert torch.allclose(out[0], torch.stack(heads).mean(0), atol=1e-6)


def test_bcdu_convlstm_reads_the_decoder_feature_first():
    model = create_model("bcdu-net", base_channels=4).eval()
    seen = {}
    level = model.up1
    level.lstm.register_forward_pre_hook(lambda m, args: seen.setdefault("steps", args[0]))
    level.up.register_forward_hook(lambda m, i, o: seen.setdefault("up", o))
    skip = {}
    model.enc1.register_forward_hook(lambda m, i, o: skip.setdefault("f1", o))
    with torch.no_grad():
        model(torch.rand(1, 1, 16, 16))
    first, second = seen["steps"]
    assert torch.equal(first, seen["up"]) and torch.equal(second, skip["f1"])
    lstm = level.lstm
    f = lstm.filters
    fresh = create_model("bcdu-net", base_channels=4).up1.lstm
    assert torch.all(fresh.input_conv.bias[f : 2 * f] == 1.0)  # Keras unit_forget_bias
    assert torch.all(fresh.input_conv.bias[:f] == 0.0)


def test_sa_unet_upsampling_has_tensorflow_same_alignment():
    up = UpSame(1, 1)
    with torch.no_grad():
        up.weight.zero_()
        up.weight[0, 0, 0, 0] = 1.0  # kernel tap (0, 0) only
        up.bias.zero_()
        x = torch.rand(1, 1, 5, 7)
        y = up(x)
    assert y.shape == (1, 1, 10, 14)
    assert torch.equal(y[..., ::2, ::2], x)  # TF: output 2i + k, no padding before


def test_dropblock_drops_whole_blocks_in_training_only():
    torch.manual_seed(4)
    drop = DropBlock2d(block_size=7, keep_prob=0.8)
    x = torch.ones(4, 8, 40, 40)
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(x)
    dropped = (y == 0).float().mean().item()
    assert 0.1 < dropped < 0.35
    assert y.mean().item() == pytest.approx(1.0, abs=1e-4)  # kept units are rescaled
    # the dropped units are a union of whole 7x7 blocks (inside the map), per channel
    for plane in y.reshape(-1, 40, 40)[:6]:
        zeros = (plane == 0).numpy()
        assert np.array_equal(ndimage.binary_opening(zeros, np.ones((7, 7))), zeros)
    assert not torch.equal(y[0, 0] == 0, y[0, 1] == 0)  # channels are independent
    small = torch.ones(2, 3, 6, 6)
    assert torch.equal(drop(small), small)  # no block fits


@pytest.mark.parametrize(
    "config_class,bad",
    [
        (UNetSmallConfig, {"two_class": "yes"}),
        (UNetSmallConfig, {"dropout": 1.0}),
        (BCDUNetConfig, {"dense_blocks": 2}),
        (BCDUNetConfig, {"recurrent_activation": "relu"}),
        (SAUNetConfig, {"keep_prob": 0.0}),
        (SAUNetConfig, {"attention_kernel": 4}),
        (FRUNetConfig, {"feature_scale": 3}),
        (FRUNetConfig, {"average_heads": 1}),
        (FRUNetConfig, {"pad_mode": "circular"}),
    ],
)
def test_invalid_configs_are_refused_naming_the_option(config_class, bad):
    (key,) = bad
    with pytest.raises(UsageError, match=key):
        config_class(**bad)
