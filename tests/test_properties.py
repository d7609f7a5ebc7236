"""Property-based tests (hypothesis): metric laws and geometry round trips.

Metrics: every ratio lies in [0, 1] (MCC in [-1, 1]); a perfect prediction scores AUC 1
and F1 1, an inverted one AUC 0; the order of pixels does not matter; pooled equals
per-image for one image. Geometry: pad-and-crop-back, tile-and-stitch with an identity
predictor, and the OCT native <-> isotropic row mapping. Example counts are kept small
so the file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from octvessel.inference.sliding_window import count_windows, sliding_window
from octvessel.metrics import (
    THRESHOLD_METRICS,
    auc_pr,
    auc_roc,
    confusion,
    evaluate,
    threshold_metrics,
)
from octvessel.models.base import pad_to_multiple
from octvessel.oct.enface import isotropic_rows, resample_rows, to_native_grid

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# probabilities as float32 would hold them, labels with at least one pixel
sizes = st.integers(2, 300)


@st.composite
def scored_pixels(draw, both_classes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    n = draw(sizes)
    probs = draw(arrays(np.float32, n, elements=st.floats(0, 1, width=32, allow_subnormal=False)))
    labels = draw(arrays(np.bool_, n))
    if both_classes:
        i, j = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
        labels[i], labels[j] = True, False
    return probs, labels


# ----------------------------------------------------------------------------- metrics


@SETTINGS
@given(scored_pixels(), st.floats(0, 1))
def test_every_metric_lies_in_its_range(pixels, threshold):
    probs, labels = pixels
    m = threshold_metrics(confusion(probs >= threshold, labels))
    for name in THRESHOLD_METRICS:
        lo = -1.0 if name == "mcc" else 0.0
        assert np.isnan(m[name]) or lo <= m[name] <= 1.0, (name, m[name])  # NaN: undefined
    assert not np.isnan(m["accuracy"])  # never undefined on a non-empty FOV
    for auc in (auc_roc(probs, labels), auc_pr(probs, labels)):
        assert np.isnan(auc) or 0.0 <= auc <= 1.0


@SETTINGS
@given(scored_pixels(both_classes=True))
def test_perfect_prediction_scores_one_and_inverted_scores_zero(pixels):
    _, labels = pixels
    perfect = labels.astype(np.float32)
    assert auc_roc(perfect, labels) == 1.0
    assert auc_pr(perfect, labels) == 1.0
    m = threshold_metrics(confusion(perfect >= 0.5, labels))
    assert m["f1"] == m["accuracy"] == m["iou"] == m["mcc"] == 1.0
    assert auc_roc(1.0 - perfect, labels) == 0.0
    # any strictly monotone rescaling of the scores keeps the AUCs
    soft = 0.2 + 0.6 * perfect
    assert auc_roc(soft, labels) == 1.0


@SETTINGS
@given(scored_pixels(), st.randoms(use_true_random=False), st.floats(0.05, 0.95))
def test_metrics_do_not_depend_on_the_order_of_pixels(pixels, rnd, threshold):
    probs, labels = pixels
    order = list(range(probs.size))
    rnd.shuffle(order)
    a = evaluate([probs], [labels], threshold=threshold)["pooled"]
    b = evaluate([probs[order]], [labels[order]], threshold=threshold)["pooled"]
    for k in a:
        assert (np.isnan(a[k]) and np.isnan(b[k])) or np.isclose(a[k], b[k], rtol=0, atol=1e-12), k


@SETTINGS
@given(
    st.integers(2, 12),
    st.integers(2, 12),
    st.data(),
    st.floats(0.05, 0.95),
)
def test_pooled_equals_per_image_for_one_image_and_fov_selects_pixels(h, w, data, threshold):
    probs = data.draw(arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
    labels = data.draw(arrays(np.bool_, (h, w)))
    fov = data.draw(arrays(np.bool_, (h, w)))
    assume(fov.any())
    r = evaluate([probs], [labels], [fov], threshold=threshold)
    row = r["per_image"][0]
    for k, v in r["pooled"].items():
        assert (np.isnan(v) and np.isnan(row[k])) or v == row[k], k
        assert (np.isnan(v) and np.isnan(r["mean"][k])) or np.isclose(v, r["mean"][k]), k
    flat = evaluate([probs[fov]], [labels[fov]], threshold=threshold)["pooled"]
    for k, v in r["pooled"].items():
        assert (np.isnan(v) and np.isnan(flat[k])) or np.isclose(v, flat[k]), k
    assert r["n_pixels"] == int(fov.sum())


@SETTINGS
@given(st.lists(scored_pixels(), min_size=2, max_size=4), st.floats(0.05, 0.95))
def test_pooled_counts_are_the_sum_of_per_image_counts(images, threshold):
    probs = [p for p, _ in images]
    labels = [lab for _, lab in images]
    r = evaluate(probs, labels, threshold=threshold)
    total = sum(
        (confusion(p >= threshold, lab) for p, lab in zip(probs, labels, strict=True)),
        start=confusion(np.zeros(0, bool), np.zeros(0, bool)),
    )
    assert r["confusion"] == {"tp": total.tp, "fp": total.fp, "fn": total.fn, "tn": total.tn}


# ---------------------------------------------------------------------------- geometry


@SETTINGS
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from([1, 2, 4, 8, 16, 32]),
    st.sampled_from(["reflect", "replicate", "zeros"]),
)
def test_pad_to_a_multiple_and_crop_back_is_exact(h, w, multiple, mode):
    x = torch.rand(1, 2, h, w, generator=torch.Generator().manual_seed(h * 100 + w))
    padded, (h0, w0) = pad_to_multiple(x, multiple, mode)
    assert (h0, w0) == (h, w)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - h < multiple and padded.shape[-1] - w < multiple
    assert torch.equal(padded[..., :h, :w], x)


@SETTINGS
@given(
    st.integers(1, 48),
    st.integers(1, 48),
    st.integers(1, 24),
    st.data(),
    st.sampled_from(["edge", "grid"]),
    st.sampled_from(["constant", "gaussian"]),
    st.sampled_from(["zeros", "reflect", "replicate"]),
    st.integers(1, 7),
)
def test_tile_and_stitch_with_an_identity_predictor_is_exact(
    h, w, window, data, align, blend, pad_mode, batch
):
    stride = data.draw(st.integers(max(1, window // 4), window))
    # multiples of 1/256: sums of up to thousands of them, and their means, are exact in float32
    gen = torch.Generator().manual_seed(h * 71 + w)
    x = torch.randint(0, 257, (1, 2, h, w), generator=gen).float() / 256
    calls: list[int] = []

    def identity(batch_x: torch.Tensor) -> torch.Tensor:
        calls.append(batch_x.shape[0])
        return batch_x

    out = sliding_window(
        x, identity, window, stride, blend=blend, align=align, pad_mode=pad_mode, batch_size=batch
    )
    assert out.shape == x.shape
    if blend == "constant":
        assert torch.equal(out, x)  # bit for bit
    else:  # gaussian weights are not dyadic: float32 rounding of the weighted mean only
        torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-6)
    assert sum(calls) == count_windows((h, w), window, stride, align)
    assert max(calls) <= batch


@SETTINGS
@given(
    st.integers(2, 60),
    st.integers(1, 30),
    st.floats(0.005, 0.2),
    st.floats(0.005, 0.2),
    st.data(),
)
def test_native_isotropic_round_trip(native_rows, cols, slow_mm, fast_mm, data):
    rows = isotropic_rows(native_rows, slow_mm, fast_mm)
    # the physical row count, rounded; never fewer than one row
    assert rows >= 1 and abs(rows - max(1.0, native_rows * slow_mm / fast_mm)) <= 0.5 + 1e-9
    image = data.draw(arrays(np.float32, (native_rows, cols), elements=st.floats(0, 1, width=32)))
    iso = resample_rows(image, rows)
    assert iso.shape == (rows, cols) and iso.dtype == np.float32
    # linear interpolation never leaves the range of the rows it mixes
    assert iso.min() >= image.min() - 1e-6 and iso.max() <= image.max() + 1e-6
    back = to_native_grid(iso, (native_rows, cols))
    assert back.shape == image.shape
    # the same grid maps to itself exactly
    assert np.array_equal(to_native_grid(image, (native_rows, cols)), image)
    # columns never mix, and a row-constant image survives any round trip exactly
    column = image[:1]
    flat = np.repeat(column, native_rows, axis=0)
    np.testing.assert_allclose(
        to_native_grid(resample_rows(flat, rows), (native_rows, cols)), flat, atol=1e-6
    )
    # an image linear along the rows comes back exactly away from the clamped edges
    ramp = (np.arange(native_rows, dtype=np.float32)[:, None] / native_rows) * np.ones(
        (1, cols), np.float32
    )
    again = to_native_grid(resample_rows(ramp, rows), (native_rows, cols))
    margin = int(np.ceil(max(1.0, native_rows / rows)))
    if rows > native_rows and native_rows > 2 * margin:
        np.testing.assert_allclose(again[margin:-margin], ramp[margin:-margin], atol=1e-5)
