"""Colour operations on batches of images: luma, RGB ↔ HSV, and the colour jitter of the views.

Every function is batched over (N, C, H, W) float images in [0, 1] and is a pure function of
its tensors, so that :func:`compiled_colour_jitter` can hand the jitter to ``torch.compile``.
:mod:`sslscope.views` draws the per-sample parameters and calls these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

# ITU-R 601-2 luma, as PIL's convert("L"). torchvision's tensor path uses 0.2989 for red
# (weights sum to 0.9999); exact 601-2 weights sum to 1, so a grey pixel keeps its value.
LUMA = (0.299, 0.587, 0.114)


def gray(x: Tensor) -> Tensor:
    """Luma (N, 1, H, W) of RGB (N, 3, H, W); a 1-channel image is its own luma."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """Convert RGB in [0, 1] to HSV in [0, 1], batched (same convention as ``colorsys``).

    Args:
        rgb: (N, 3, H, W).

    Returns:
        (N, 3, H, W) with channels (H, S, V); H = 0 and S = 0 for grey pixels.
    """
    r, g, b = rgb.unbind(1)  # each (N, H, W)
    maxc, minc = rgb.amax(dim=1), rgb.amin(dim=1)
    delta = maxc - minc
    # Divide by 1 where the pixel is grey or black so no 0/0 appears; those entries are 0.
    s = delta / torch.where(maxc > 0, maxc, 1.0)
    d = torch.where(delta > 0, delta, 1.0)
    # Sector by which channel is the maximum; ties resolve R, then G, as colorsys does.
    # (g − b)/d equals colorsys's bc − gc; one division instead of three.
    h6 = torch.where(
        maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d)
    )
    h = torch.remainder(h6 / 6.0, 1.0)  # grey: h6 = 0 already (g − b = 0 with r the max)
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    r"""Convert HSV in [0, 1] to RGB in [0, 1], batched.

    Branch-free form: for n ∈ (5, 3, 1) → (R, G, B), with k = (n + 6H) mod 6,

        channel = V − V·S·clamp(min(k, 4 − k), 0, 1)

    Args:
        hsv: (N, 3, H, W) with channels (H, S, V).

    Returns:
        (N, 3, H, W) RGB.
    """
    h, s, v = hsv[:, :1], hsv[:, 1:2], hsv[:, 2:3]  # each (N, 1, H, W)
    # n = (5, 3, 1) built on the device: torch.tensor([...]) would be a blocking host copy.
    n = 5.0 - 2.0 * torch.arange(3, dtype=hsv.dtype, device=hsv.device).view(1, 3, 1, 1)
    k = torch.remainder(n + 6.0 * h, 6.0)  # (N, 3, H, W)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def shift_hue(rgb: Tensor, shift: Tensor) -> Tensor:
    r"""``hsv_to_rgb(rgb_to_hsv(rgb))`` with H ← (H + shift) mod 1, without building HSV.

    V = max, and V·S = max − min = Δ, so the round trip collapses to, for n = (5, 3, 1) → RGB,

        k = (n + 6H₀ + 6·shift) mod 6,   channel = max − Δ · clamp(min(k, 4 − k), 0, 1)

    with 6H₀ ∈ [−1, 5] the sector coordinate of :func:`rgb_to_hsv` before its own mod 1 (the
    mod 6 absorbs it). One mod instead of three, no S and no division by V: fewer passes in
    eager mode and a shorter fused loop when compiled. Equal to the round trip up to float
    rounding (tested against it and against ``colorsys``).

    Args:
        rgb: (N, 3, H, W) in [0, 1].
        shift: (N, 1, 1, 1) (or broadcastable), the hue shift in turns.

    Returns:
        (N, 3, H, W) RGB.
    """
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]  # each (N, 1, H, W)
    maxc, minc = rgb.amax(dim=1, keepdim=True), rgb.amin(dim=1, keepdim=True)
    delta = maxc - minc
    d = torch.where(delta > 0, delta, 1.0)  # grey pixels: any k gives max − 0 = the grey
    # Sector by the maximum channel; ties resolve R, then G, as rgb_to_hsv (colorsys) does.
    h6 = torch.where(maxc == r, (g - b) / d,
                     torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    n = 5.0 - 2.0 * torch.arange(3, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    k = torch.remainder(n + (h6 + 6.0 * shift), 6.0)  # (N, 3, H, W)
    return maxc - delta * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def colour_jitter(x: Tensor, brightness: Tensor | None, contrast: Tensor | None,
                  saturation: Tensor | None, hue: Tensor | None, chosen: Tensor) -> Tensor:
    """The four jitter ops of :func:`augment`, in its order, kept where ``chosen``.

    A pure function of tensors (no generator, no host sync), so that ``torch.compile`` can
    fuse its ~30 elementwise passes over the batch into a few loops (``compiled=True`` in
    :func:`augment`: 3× on the jitter at 3×32×32 on one CPU thread, measured).

    Args:
        x: float images (N, C, H, W) in [0, 1].
        brightness, contrast, saturation: per-sample factors (N, 1, 1, 1), or None to skip.
        hue: per-sample shift of H (N, 1, 1, 1) in [−0.5, 0.5], or None to skip (C = 3 only,
            like saturation).
        chosen: bool (N, 1, 1, 1): the images that get the jitter; the others are returned as
            they came.

    Returns:
        (N, C, H, W), x's dtype.
    """
    y = x
    if brightness is not None:
        y = (brightness * y).clamp(0, 1)
    if contrast is not None:
        mean = gray(y).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        y = (contrast * y + (1 - contrast) * mean).clamp(0, 1)
    if saturation is not None:
        y = (saturation * y + (1 - saturation) * gray(y)).clamp(0, 1)
    if hue is not None:
        y = shift_hue(y, hue)
    return torch.where(chosen, y, x)


@functools.cache
def compiled_colour_jitter() -> Callable[..., Tensor]:
    """:func:`colour_jitter` through ``torch.compile``, built once per process on first use.

    A shape it has not seen recompiles (automatic dynamic shapes after the second).
    """
    return torch.compile(colour_jitter)
