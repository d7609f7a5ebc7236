"""Bringing an input to its model's pixel size: resampling factors and the network grid.

An input of pixel size ``s`` (mm, row and column; :class:`octvessel.scale.PixelSize`) runs
through a network trained at ``m`` (:class:`octvessel.scale.ModelScale`) on a grid
``round(H * s_row / m_row) x round(W * s_col / m_col)`` (anisotropic grids too); the
probability is resampled back to the input's grid. A photograph known only by its FOV
diameter ``F`` (``--fov-px`` or the estimate) is scaled by ``model.fov_px / F`` on both
axes. Without a model scale (an old bundle) or an input pixel size, factors are None: the
network sees the input's own grid, as before. ``--input-scale`` / ``--input-size`` win
over all of this (:func:`octvessel.inference.engine.network_grid`).
"""

from __future__ import annotations

from typing import Any

from octvessel.pixel_size import ModelScale, PixelSize

__all__ = ["MAX_FACTOR", "MIN_FACTOR", "model_scale_of", "scale_factors", "scaled_grid"]

#: resampling factors are clipped to this range (a wrong estimate must not blow an image
#: up 50-fold); beyond it the input is refused as not plausible for the model
MIN_FACTOR, MAX_FACTOR = 0.05, 20.0


def model_scale_of(model: Any) -> ModelScale | None:
    """The :class:`ModelScale` of a loaded model (its bundle's ``scale``), or None."""
    bundle = getattr(model, "bundle_config", None)
    scale = getattr(bundle, "scale", None)
    return scale if isinstance(scale, ModelScale) else None


def scale_factors(pixel: PixelSize | None, model: ModelScale | None) -> tuple[float, float] | None:
    """(row, col) resampling factors from the input's grid to the model's, or None (no change)."""
    if pixel is None or model is None:
        return None
    if pixel.spacing is not None:
        fr = pixel.spacing[0] / model.pixel_size_mm[0]
        fc = pixel.spacing[1] / model.pixel_size_mm[1]
    elif pixel.fov_px is not None and model.fov_px is not None:
        fr = fc = model.fov_px / pixel.fov_px
    else:
        return None
    from octvessel.errors import UsageError

    for f in (fr, fc):
        if not MIN_FACTOR <= f <= MAX_FACTOR:
            raise UsageError(
                f"the input's pixel size ({pixel.describe()}) is {f:.3g} x the model's "
                f"({model.describe()}); expected a factor between {MIN_FACTOR:g} and "
                f"{MAX_FACTOR:g}: check --spacing / --fov-px"
            )
    return fr, fc


def scaled_grid(
    shape: tuple[int, int], factors: tuple[float, float] | None, size_multiple: int = 1
) -> tuple[int, int]:
    """The (H, W) network grid for an image of ``shape`` resampled by ``factors``.

    Factors within 1 % of 1 keep the image's grid (no needless interpolation). The grid
    is at least ``size_multiple`` on each side (the network pads to its multiple itself).
    """
    if factors is None:
        return shape
    if abs(factors[0] - 1) < 0.01 and abs(factors[1] - 1) < 0.01:
        return shape
    mult = max(1, int(size_multiple or 1))
    return (
        max(mult, round(shape[0] * factors[0])),
        max(mult, round(shape[1] * factors[1])),
    )
