"""IterNet architecture, registry and weights bundles."""

from __future__ import annotations

import json

import pytest
import torch

from octvessel.errors import InputError, UsageError
from octvessel.models import IterNet, IterNetConfig, create_model, list_models, load_model
from octvessel.models.base import pad_to_multiple


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def iternet_params_by_hand(c: int = 3, k: int = 32, iterations: int = 3) -> int:
    """IterNet's parameter count (Li et al. 2020, the reference Keras code) counted layer by layer,
    independently of the implementation."""
    w = [k, 2 * k, 4 * k, 8 * k, 16 * k]
    enc = sum(
        conv_params(a, b, 3) + conv_params(b, b, 3) for a, b in zip([c, *w[:-1]], w, strict=True)
    )
    dec = sum(
        conv_params(w[i + 1], w[i], 2) + conv_params(2 * w[i], w[i], 3) + conv_params(w[i], w[i], 3)
        for i in range(4)
    )
    mini = 0
    if iterations:
        mini = 2 * conv_params(k, k, 3)  # level 1 of the mini-UNet
        mini += conv_params(k, 2 * k, 3) + conv_params(2 * k, 2 * k, 3)
        mini += conv_params(2 * k, 4 * k, 3) + conv_params(4 * k, 4 * k, 3)
        mini += (
            conv_params(4 * k, 2 * k, 2)
            + conv_params(4 * k, 2 * k, 3)
            + conv_params(2 * k, 2 * k, 3)
        )
        mini += conv_params(2 * k, k, 2) + conv_params(2 * k, k, 3) + conv_params(k, k, 3)
    fuse = sum(conv_params((i + 2) * k, k, 1) for i in range(iterations))
    heads = (iterations + 1) * conv_params(k, 1, 1)
    return enc + dec + mini + fuse + heads


def test_default_iternet_has_exactly_the_reference_parameter_count():
    model = create_model("iternet")
    assert model.count_parameters() == 8_244_356
    assert iternet_params_by_hand() == 8_244_356


@pytest.mark.parametrize("c,k,it", [(1, 32, 3), (3, 16, 1), (3, 8, 5), (1, 8, 0)])
def test_parameter_count_follows_the_architecture(c, k, it):
    model = create_model("iternet", in_channels=c, base_channels=k, iterations=it)
    assert model.count_parameters() == iternet_params_by_hand(c, k, it)


def test_unet_is_iternet_without_iterations():
    unet = create_model("unet")
    assert isinstance(unet, IterNet) and unet.config.iterations == 0
    assert unet.num_outputs == 1
    assert unet.count_parameters() == iternet_params_by_hand(iterations=0)


def test_no_batch_norm_and_dropout_point_one():
    model = create_model("iternet")
    kinds = {type(m).__name__ for m in model.modules()}
    assert not any("BatchNorm" in k for k in kinds)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(d.p == pytest.approx(0.1) for d in drops)


def test_mini_unet_weights_are_shared_across_iterations():
    # the mini-UNet has one parameter set whatever the iteration count: only the per-iteration
    # 1x1 fusions and heads are added per pass
    m1 = create_model("iternet", base_channels=8, iterations=1)
    m4 = create_model("iternet", base_channels=8, iterations=4)
    mini1 = sum(p.numel() for p in m1.mini.parameters())
    mini4 = sum(p.numel() for p in m4.mini.parameters())
    assert mini1 == mini4 > 0
    # changing one shared tensor changes every refinement output, not the base output
    torch.manual_seed(0)
    model = create_model("iternet", base_channels=8, iterations=3, dropout=0.0).eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        before = model(x)
        model.mini.down3[0].weight.add_(0.5)
        after = model(x)
    assert torch.equal(before[0], after[0])
    for i in (1, 2, 3):
        assert not torch.allclose(before[i], after[i]), (
            f"output {i} did not use the shared mini-UNet"
        )


def test_fusion_convs_are_unshared_and_see_all_previous_first_levels():
    model = create_model("iternet", base_channels=8, iterations=3)
    assert [f.in_channels for f in model.fuse] == [16, 24, 32]
    assert len({id(f.weight) for f in model.fuse}) == 3
    assert len(model.heads) == 4


@pytest.mark.parametrize("h,w", [(141, 385), (584, 565), (17, 9), (1, 1), (32, 32)])
def test_any_input_size_gives_outputs_of_that_size(h, w):
    model = create_model("iternet", base_channels=4, iterations=2).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, h, w))
    assert len(outs) == 3
    assert all(o.shape == (2, 1, h, w) for o in outs)
    assert all(torch.isfinite(o).all() for o in outs)


def test_full_size_model_on_native_oct_grid():
    model = create_model("iternet").eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 141, 385))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 141, 385)] * 4


def test_gradients_reach_every_parameter():
    model = create_model("iternet", base_channels=4, iterations=3)
    outs = model(torch.rand(2, 3, 20, 36))
    sum(o.mean() for o in outs).backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)
    ]
    assert not missing


def test_pad_to_multiple_and_crop_back_is_exact():
    x = torch.rand(1, 2, 13, 30)
    padded, (h, w) = pad_to_multiple(x, 16)
    assert padded.shape[-2:] == (16, 32) and (h, w) == (13, 30)
    assert torch.equal(padded[..., :h, :w], x)


def test_registry_refuses_unknown_names_and_options():
    assert {"iternet", "unet"} <= set(list_models())
    with pytest.raises(UsageError, match="iternet"):
        create_model("no-such-net")
    with pytest.raises(UsageError, match="valid"):
        create_model("iternet", width=3)
    with pytest.raises(UsageError):
        IterNetConfig(iterations=-1)
    with pytest.raises(UsageError):
        IterNetConfig(pad_mode="circular")


def test_wrong_input_is_refused_with_a_clear_message():
    model = create_model("iternet", base_channels=4)
    with pytest.raises(UsageError, match="3 input channel"):
        model(torch.rand(1, 1, 16, 16))
    with pytest.raises(UsageError, match="N x C x H x W"):
        model(torch.rand(3, 16, 16))


def test_save_pretrained_round_trip(tmp_path):
    torch.manual_seed(1)
    model = create_model("iternet", in_channels=1, base_channels=4, iterations=2).eval()
    model.save_pretrained(tmp_path / "bundle", metadata={"seed": 1})
    files = sorted(p.name for p in (tmp_path / "bundle").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert cfg["model"] == "iternet" and cfg["model_config"]["in_channels"] == 1
    loaded, bundle = load_model(tmp_path / "bundle")
    assert bundle.metadata["seed"] == 1
    x = torch.rand(1, 1, 24, 40)
    with torch.no_grad():
        assert torch.equal(model(x)[-1], loaded(x)[-1])
    # the same through the file path and the class method
    again = IterNet.from_pretrained(tmp_path / "bundle" / "model.safetensors")
    with torch.no_grad():
        assert torch.equal(model(x)[-1], again(x)[-1])


def test_save_refuses_to_overwrite_and_fp16_halves_the_file(tmp_path):
    model = create_model("iternet", base_channels=4)
    model.save_pretrained(tmp_path / "a")
    with pytest.raises(InputError, match="overwrite"):
        model.save_pretrained(tmp_path / "a")
    model.save_pretrained(tmp_path / "a", overwrite=True)
    model.save_pretrained(tmp_path / "b", dtype="float16")
    full = (tmp_path / "a" / "model.safetensors").stat().st_size
    half = (tmp_path / "b" / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    loaded, _ = load_model(tmp_path / "b")
    assert next(loaded.parameters()).dtype == torch.float32


def test_loading_refuses_corrupt_or_mismatched_bundles(tmp_path):
    model = create_model("iternet", base_channels=4)
    model.save_pretrained(tmp_path / "ok")
    # tampered weights: sha256 mismatch
    weights = tmp_path / "ok" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        load_model(tmp_path / "ok")
    # weights of another architecture
    other = create_model("iternet", base_channels=8)
    other.save_pretrained(tmp_path / "other")
    cfg_path = tmp_path / "other" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_config"]["base_channels"] = 4
    cfg["sha256"] = {}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="do not fit"):
        load_model(tmp_path / "other")
    # malformed and missing config
    cfg_path.write_text("{not json")
    with pytest.raises(InputError, match="config.json"):
        load_model(tmp_path / "other")
    cfg_path.unlink()
    with pytest.raises(InputError, match="config.json"):
        load_model(tmp_path / "other")
    # unknown model name in config
    cfg_path.write_text(json.dumps({"model": "resnet", "model_config": {}}))
    with pytest.raises(InputError, match="unknown model"):
        load_model(tmp_path / "other")
    # pickles are never loaded
    (tmp_path / "ckpt.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(InputError, match="safetensors"):
        load_model(tmp_path / "ckpt.pt")
    with pytest.raises(InputError, match="shipped"):
        load_model("no-such-model-anywhere")


def test_iternet_is_initialised_like_the_keras_reference():
    # Glorot-uniform kernels (limit sqrt(6 / (fan_in + fan_out))) and zero biases
    model = create_model("iternet", base_channels=8)
    convs = [
        m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    assert all(torch.count_nonzero(c.bias) == 0 for c in convs)
    for c in convs:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(c.weight)
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        assert c.weight.abs().max() <= limit
        if c.weight.numel() >= 100:  # uniform over the whole range, not shrunk
            assert c.weight.abs().max() > 0.9 * limit
