"""Sliding-window inference as one function: windows, blending, pad-and-crop-back.

:func:`sliding_window` runs a predictor over overlapping windows of an image tensor and
stitches the window outputs back into a full-size map. Two layouts cover octvessel's
methods:

- ``align="edge"`` (tiles): windows start every ``stride`` pixels and the last window is
  moved flush with the image edge, so no padding is needed unless the image is smaller
  than the window. Used with gaussian blending.
- ``align="grid"`` (the reference patch scheme): windows start at every multiple of
  ``stride``; the bottom and right are padded (zeros, as the reference code does) until the
  grid fits exactly, and the padding is cropped off the result. Used with constant
  blending, which averages overlaps exactly.

Window outputs are weighted by a blending map (constant or gaussian), summed, and divided
by the summed weights, so every pixel gets the weighted mean of the windows covering it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from octvessel.errors import UsageError, check_choice

BLENDS = ("constant", "gaussian")
ALIGNS = ("edge", "grid")
PAD_MODES = ("zeros", "reflect", "replicate")


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise UsageError(f"{name}={value!r}: expected a positive integer or a pair of them")
    return pair  # type: ignore[return-value]


def window_starts(size: int, window: int, stride: int, align: str = "edge") -> list[int]:
    """Start offsets of windows along one axis of length ``size``.

    ``edge``: 0, stride, 2 stride ... and a last window flush with the end (``size >=
    window``; smaller sizes are padded first). ``grid``: 0, stride, ... up to and including
    the first start whose window reaches the end (the axis is padded to that length).
    """
    if size <= window:
        return [0]
    if align == "grid":
        n = math.ceil((size - window) / stride) + 1
        return [i * stride for i in range(n)]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def padded_length(size: int, window: int, stride: int, align: str = "edge") -> int:
    """The axis length after padding: at least ``window``; for ``grid`` the grid's extent."""
    if size <= window:
        return window
    if align == "grid":
        return window_starts(size, window, stride, "grid")[-1] + window
    return size


def blend_weights(
    window: tuple[int, int], blend: str = "gaussian", sigma_scale: float = 0.125
) -> torch.Tensor:
    """Weights of one window (float32 h x w): all ones, or a gaussian peaking at the centre.

    The gaussian has sigma = ``sigma_scale`` x the window side and is scaled to a maximum
    of 1; its smallest values are raised to 1e-3 so border pixels never get zero weight.
    """
    check_choice("blend", blend, BLENDS)
    h, w = window
    if blend == "constant":
        return torch.ones(h, w)
    axes = []
    for n in (h, w):
        coords = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (coords / (sigma_scale * n)) ** 2))
    weights = axes[0][:, None] * axes[1][None, :]
    weights = weights / weights.max()
    return weights.clamp_min(1e-3).float()


def iter_windows(
    shape: tuple[int, int], window: tuple[int, int], stride: tuple[int, int], align: str
) -> Iterator[tuple[int, int]]:
    """(top, left) of every window over a (padded) ``shape``, row by row."""
    for top in window_starts(shape[0], window[0], stride[0], align):
        for left in window_starts(shape[1], window[1], stride[1], align):
            yield top, left


def count_windows(
    shape: tuple[int, int],
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
    align: str = "edge",
) -> int:
    """How many windows :func:`sliding_window` runs over an image of ``shape`` (H, W)."""
    win, st = _pair(window, "window"), _pair(stride, "stride")
    return len(window_starts(shape[0], win[0], st[0], align)) * len(
        window_starts(shape[1], win[1], st[1], align)
    )


def overlap_stride(window: int, overlap: float) -> int:
    """The stride giving ``overlap`` (a fraction in [0, 1)) between neighbouring windows."""
    if not 0.0 <= overlap < 1.0:
        raise UsageError(f"overlap={overlap!r}: expected a fraction in [0, 1)")
    return max(1, int(round(window * (1.0 - overlap))))


def sliding_window(
    x: torch.Tensor,
    predict: Callable[[torch.Tensor], torch.Tensor],
    window: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    *,
    overlap: float | None = None,
    blend: str = "gaussian",
    align: str = "edge",
    pad_mode: str = "reflect",
    batch_size: int = 4,
    sigma_scale: float = 0.125,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run ``predict`` over windows of ``x`` and stitch the outputs.

    Args:
        x: 1 x C x H x W float tensor (any device and memory format).
        predict: maps a B x C x h x w batch of windows to B x K x h x w outputs (e.g.
            probabilities); called with at most ``batch_size`` windows at a time.
        window: window (h, w), or one int for a square.
        stride: step between window starts (h, w), or one int; or give ``overlap``.
        overlap: fraction in [0, 1) of a window shared with its neighbour (stride =
            window x (1 - overlap), rounded, at least 1).
        blend: ``constant`` (plain mean of overlapping windows) or ``gaussian``.
        align: ``edge`` (last window flush with the border) or ``grid`` (every multiple of
            the stride; the reference patch scheme).
        pad_mode: ``zeros``, ``reflect`` or ``replicate``: how the bottom and right are
            padded when the windows need more room than the image has.
        batch_size: windows per call of ``predict``.
        sigma_scale: gaussian sigma as a fraction of the window side.
        progress: called with the number of windows done after each batch.

    Returns:
        1 x K x H x W float32 tensor on ``x``'s device: per pixel, the blend-weighted mean of
        the outputs of every window that covers it.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise UsageError(f"expected a 1 x C x H x W tensor, got shape {tuple(x.shape)}")
    check_choice("align", align, ALIGNS)
    check_choice("pad_mode", pad_mode, PAD_MODES)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size={batch_size!r}: expected a positive integer")
    win = _pair(window, "window")
    if (stride is None) == (overlap is None):
        raise UsageError("give exactly one of stride and overlap")
    if stride is None:
        stride = (overlap_stride(win[0], overlap), overlap_stride(win[1], overlap))
    st = _pair(stride, "stride")
    h, w = x.shape[-2:]
    ph = padded_length(h, win[0], st[0], align) - h
    pw = padded_length(w, win[1], st[1], align) - w
    if ph or pw:
        mode = pad_mode
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"  # too small to reflect
        x = F.pad(x, (0, pw, 0, ph)) if mode == "zeros" else F.pad(x, (0, pw, 0, ph), mode=mode)
    shape = (h + ph, w + pw)
    weights = blend_weights(win, blend, sigma_scale).to(x.device)
    out: torch.Tensor | None = None
    norm = torch.zeros(shape, dtype=torch.float32, device=x.device)
    positions = list(iter_windows(shape, win, st, align))
    for i in range(0, len(positions), batch_size):
        chunk = positions[i : i + batch_size]
        batch = torch.cat([x[..., t : t + win[0], c : c + win[1]] for t, c in chunk])
        y = predict(batch).float()
        if y.ndim != 4 or y.shape[0] != len(chunk) or tuple(y.shape[-2:]) != win:
            raise UsageError(
                f"predict returned shape {tuple(y.shape)} for windows of shape {tuple(batch.shape)}; "
                "expected B x K x h x w with the windows' B, h and w"
            )
        if out is None:
            out = torch.zeros((1, y.shape[1], *shape), dtype=torch.float32, device=x.device)
        y = y * weights
        for j, (t, c) in enumerate(chunk):
            out[0, :, t : t + win[0], c : c + win[1]] += y[j]
            norm[t : t + win[0], c : c + win[1]] += weights
        if progress is not None:
            progress(len(chunk))
    return (out / norm)[..., :h, :w]  # type: ignore[operator]  (there is always a window)
