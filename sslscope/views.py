"""Batched, seeded, device-side multi-view augmentation for joint-embedding SSL.

One call to :func:`augment` transforms a whole batch ``(N, C, H, W)`` on its own device: every
per-sample random number comes from one ``torch.rand(N, 15, generator=g)`` draw, the geometry
is one ``affine_grid`` + ``grid_sample``, and each photometric op runs on the whole batch and is
kept per sample with ``torch.where``. There is no Python loop over samples and no host sync, so
the cost on a GPU is a handful of kernels per view, not N of them.

Order of ops (SimCLR/BYOL order, noise added last):

    crop+rotate+flip → colour jitter (b, c, s, h) → grayscale → blur → solarize → noise → clamp

Determinism: the same generator state on the same device gives the same views. CPU and CUDA
generators produce different streams, so views match across runs, not across devices. Because
the per-sample table is drawn whole every call, changing one probability does not move the
random numbers of the other ops (noise, drawn last, is the only extra draw).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.colour import colour_jitter, compiled_colour_jitter, gray

# Columns of the per-sample uniform table; appending a name leaves the earlier streams alone.
_DRAWS = ("scale ratio cx cy angle flip jitter brightness contrast saturation hue grayscale blur "
          "sigma solarize").split()  # fmt: skip


@dataclass(frozen=True)
class Augment:
    """One view's random transformation. Probabilities are per sample.

    Defaults equal the "simclr" (CIFAR) recipe. Conventions follow torchvision: the crop samples
    an area fraction ~ U[crop_scale] and a log aspect ratio (w/h) ~ U[log crop_ratio].
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)  # random resized crop: area fraction range
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect w/h range (log-uniform)
    rotation_deg: float = 0.0  # uniform in [-deg, +deg], positive = counter-clockwise
    hflip_prob: float = 0.5
    jitter_prob: float = 0.8  # colour jitter applied with this probability
    brightness: float = 0.4  # factor ~ U[max(0, 1-b), 1+b], multiply
    contrast: float = 0.4  # blend with the per-image mean of the grayscale
    saturation: float = 0.4  # blend with grayscale (colour images only)
    hue: float = 0.1  # shift of H in HSV, ~U[-h, h] (colour only)
    grayscale_prob: float = 0.2  # colour images only
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # pixels
    solarize_prob: float = 0.0  # x -> 1 - x where x >= 0.5
    noise_std: float = 0.0  # additive Gaussian noise, then clamp to [0, 1]

    def __post_init__(self) -> None:
        # Fail at construction, not deep inside grid_sample, when a recipe is edited by hand.
        probs = ("hflip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob")
        bad = [name for name in probs if not 0.0 <= getattr(self, name) <= 1.0]
        (s0, s1), (r0, r1), (g0, g1) = self.crop_scale, self.crop_ratio, self.blur_sigma
        if not 0.0 < s0 <= s1 <= 1.0:
            bad.append("crop_scale (need 0 < lo <= hi <= 1)")
        if not 0.0 < r0 <= r1:
            bad.append("crop_ratio (need 0 < lo <= hi)")
        if not 0.0 < g0 <= g1:
            bad.append("blur_sigma (need 0 < lo <= hi)")
        if min(self.rotation_deg, self.brightness, self.contrast, self.saturation) < 0:
            bad.append("rotation_deg/brightness/contrast/saturation (need >= 0)")
        if not 0.0 <= self.hue <= 0.5 or self.noise_std < 0:
            bad.append("hue (need 0 <= hue <= 0.5) or noise_std (need >= 0)")
        if bad:
            raise ValueError(f"Augment has invalid fields: {', '.join(bad)}; got {self}")


# Recipes are config as code: one line per group of ops (geometry / jitter / the rest), every
# field spelled out so that a recipe does not silently follow a change of Augment's defaults.
# fmt: off
_BYOL_VIEW_1 = Augment(
    # BYOL, Grill et al. 2020, arXiv:2006.07733, Table 6 (image augmentation parameters):
    # crop p=1, flip 0.5, jitter p=0.8 with (0.4, 0.4, 0.2, 0.1), grayscale 0.2, blur σ∈[0.1, 2]
    # with p = 1.0 (view 1) / 0.1 (view 2), solarize p = 0.0 (view 1) / 0.2 (view 2).
    crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), rotation_deg=0.0, hflip_prob=0.5,
    jitter_prob=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
    grayscale_prob=0.2, blur_prob=1.0, blur_sigma=(0.1, 2.0), solarize_prob=0.0, noise_std=0.0,
)

RECIPES: dict[str, tuple[Augment, ...]] = {
    # SimCLR CIFAR protocol. Chen et al. 2020, arXiv:2002.05709: App. A defines colour distortion
    # of strength s as ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) with p=0.8 plus grayscale p=0.2; App.
    # B.9 trains CIFAR-10 with s=0.5. Blur is off, as in the solo-learn and lightly CIFAR configs.
    "simclr": (Augment(
        crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), rotation_deg=0.0, hflip_prob=0.5,
        jitter_prob=0.8, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
        grayscale_prob=0.2, blur_prob=0.0, solarize_prob=0.0, noise_std=0.0,
    ),),
    # BYOL asymmetric pair; for V > 2 views they alternate (as the MMCR ImageNet code does).
    "byol": (_BYOL_VIEW_1, dataclasses.replace(_BYOL_VIEW_1, blur_prob=0.1, solarize_prob=0.2)),
    # 8×8 grayscale handwritten digits (e.g. sklearn load_digits). Project choice, not a paper;
    # untuned placeholders: no flips (a mirrored 2 is not a 2), milder crops (area 0.08 of 8×8
    # is ~2×2 pixels), ±15° rotation, brightness/contrast only (C = 1), small pixel noise.
    "digits": (Augment(
        crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3), rotation_deg=15.0, hflip_prob=0.0,
        jitter_prob=0.8, brightness=0.4, contrast=0.4, saturation=0.0, hue=0.0,
        grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0, noise_std=0.05,
    ),),
    # Identity on square images. (On non-square images ratio (1, 1) gives the largest square
    # crop at a random offset: torchvision defines the ratio as width/height.)
    "none": (Augment(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotation_deg=0.0, hflip_prob=0.0,
        jitter_prob=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
        grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0, noise_std=0.0,
    ),),
}
# fmt: on


def augment(
    x: Tensor, aug: Augment, generator: torch.Generator, shard: tuple[int, int] = (0, 1),
    compiled: bool = False,
) -> Tensor:
    r"""Apply one random view transformation to every image of a batch, on x's device.

    Per sample n (all draws from ``generator``, masks are Bernoulli(p) per sample):

        geometry:   y = grid_sample(x, A_n [u; 1])     one affine map per sample (crop·rot·flip)
        brightness: y ← clamp(f_b · y)                              f_b ~ U[max(0, 1−b), 1+b]
        contrast:   y ← clamp(f_c · y + (1−f_c) · mean(gray(y)))    f_c ~ U[max(0, 1−c), 1+c]
        saturation: y ← clamp(f_s · y + (1−f_s) · gray(y))          f_s likewise; C = 3 only
        hue:        H ← (H + f_h) mod 1 in HSV                     f_h ~ U[−h, h]; C = 3 only
        grayscale:  y ← gray(y) on every channel, gray = 0.299 R + 0.587 G + 0.114 B
        blur:       y ← y ⊛ g_σ (separable, reflect padding), σ ~ U[blur_sigma]
        solarize:   y ← 1 − y where y ≥ 0.5
        noise:      y ← clamp(y + noise_std · ε),  ε ~ N(0, 1) per pixel

    The four jitter ops share one mask and run in this fixed order. torchvision's ColorJitter
    shuffles the order per call; a per-sample order in a batch would mean running every op at
    each of the four positions (4 passes instead of 1). Each op clamps to [0, 1], as torchvision
    does. We have not measured whether the fixed order changes downstream accuracy.

    Args:
        x: images, shape (N, C, H, W), C ∈ {1, 3}; float in [0, 1] (dtype kept) or uint8 in
            [0, 255] (converted to float32 / 255). Not modified in place.
        aug: the view's parameters.
        generator: torch.Generator on x.device; the only source of randomness.
        shard: (r, W): x is the r-th of W equal slices of a batch of W·N images. The random
            numbers are drawn for the whole batch and the slice's rows are kept, so an image's
            view does not depend on W (one process of a W-process run makes exactly the views
            a single process makes for those rows). The default (0, 1) is the whole batch.
        compiled: run the colour jitter through ``torch.compile`` (:func:`colour_jitter`): the
            same views up to float rounding (~1e-6), a C++ compiler (CPU) or Triton (CUDA)
            needed, a few seconds of compilation on first use.

    Returns:
        Float tensor (N, C, H, W) in [0, 1] on x.device.

    Raises:
        ValueError: x is not 4-D, C ∉ {1, 3}, an unsupported dtype, or the generator lives on
            another device.
    """
    x = _as_float_images(x, generator)
    n, c, h, w = x.shape
    rank, world = shard
    rows = slice(rank * n, (rank + 1) * n)
    # One draw for every per-sample parameter: a fixed stream layout, one kernel launch.
    u = torch.rand(world * n, len(_DRAWS), generator=generator, device=x.device,
                   dtype=torch.float32)[rows]
    d = dict(zip(_DRAWS, u.unbind(1), strict=True))  # name → (N,) uniforms in [0, 1)

    geometry_is_identity = (
        aug.crop_scale == (1.0, 1.0)
        and aug.crop_ratio == (1.0, 1.0)
        and h == w
        and aug.rotation_deg == 0
        and aug.hflip_prob == 0
    )
    if not geometry_is_identity:  # skipping keeps "none" exact for every image size
        theta = _affine_matrices(aug, d, h, w)
        x = _warp(x, theta.to(x.dtype), mask_outside=aug.rotation_deg > 0)

    def per_sample(v: Tensor) -> Tensor:  # (N,) → (N, 1, 1, 1), in the image dtype
        return v.to(x.dtype).view(n, 1, 1, 1)

    def factor(strength: float, v: Tensor) -> Tensor:  # U[max(0, 1 − s), 1 + s], torchvision's
        lo = max(0.0, 1.0 - strength)
        return per_sample(lo + (1.0 + strength - lo) * v)

    def chosen(v: Tensor, p: float) -> Tensor:  # Bernoulli(p) mask (N, 1, 1, 1); u < 1 always
        return (v < p).view(n, 1, 1, 1)

    if aug.jitter_prob > 0 and max(aug.brightness, aug.contrast, aug.saturation, aug.hue) > 0:
        jitter = compiled_colour_jitter() if compiled else colour_jitter
        x = jitter(
            x,
            factor(aug.brightness, d["brightness"]) if aug.brightness > 0 else None,
            factor(aug.contrast, d["contrast"]) if aug.contrast > 0 else None,
            factor(aug.saturation, d["saturation"]) if aug.saturation > 0 and c == 3 else None,
            per_sample(aug.hue * (2 * d["hue"] - 1)) if aug.hue > 0 and c == 3 else None,
            chosen(d["jitter"], aug.jitter_prob),
        )
    if aug.grayscale_prob > 0 and c == 3:
        x = torch.where(chosen(d["grayscale"], aug.grayscale_prob), gray(x).expand_as(x), x)
    if aug.blur_prob > 0:
        sigma = aug.blur_sigma[0] + (aug.blur_sigma[1] - aug.blur_sigma[0]) * d["sigma"]
        blurred = gaussian_blur(x, sigma.to(x.dtype), kernel_size(h, w))
        x = torch.where(chosen(d["blur"], aug.blur_prob), blurred, x)
    if aug.solarize_prob > 0:
        solarized = torch.where(x >= 0.5, 1.0 - x, x)
        x = torch.where(chosen(d["solarize"], aug.solarize_prob), solarized, x)
    if aug.noise_std > 0:
        eps = torch.randn((world * n, c, h, w), generator=generator, device=x.device,
                          dtype=torch.float32)[rows]
        x = x + aug.noise_std * eps.to(x.dtype)
    return x.clamp(0.0, 1.0)


def make_views(
    x: Tensor, recipe: str | Sequence[Augment], n_views: int, generator: torch.Generator,
    shard: tuple[int, int] = (0, 1), compiled: bool = False,
) -> list[Tensor]:
    """Make V independently augmented views of a batch.

    View v uses ``recipe[v % len(recipe)]``: a one-entry recipe is symmetric, and BYOL's
    asymmetric pair alternates for V > 2, as the MMCR ImageNet code does.

    Args:
        x: images (N, C, H, W), float in [0, 1] or uint8; see :func:`augment`.
        recipe: a key of :data:`RECIPES` or a sequence of :class:`Augment`.
        n_views: V ≥ 1.
        generator: torch.Generator on x.device; views are drawn from it in order v = 0..V−1.
        shard: (r, W), x is the r-th of W equal slices of the batch; see :func:`augment`.
        compiled: the colour jitter through ``torch.compile``; see :func:`augment`.

    Returns:
        List of V float tensors (N, C, H, W) in [0, 1] on x.device.

    Raises:
        ValueError: unknown recipe name (the message lists the known ones), empty recipe,
            n_views < 1, or bad images (see :func:`augment`).
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known recipes: {sorted(RECIPES)}")
        recipe = RECIPES[recipe]
    if len(recipe) == 0 or n_views < 1:
        raise ValueError(
            f"need a non-empty recipe and n_views >= 1, got {len(recipe)} and {n_views}"
        )
    x = _as_float_images(x, generator)  # convert uint8 once, not once per view
    return [augment(x, recipe[v % len(recipe)], generator, shard, compiled)
            for v in range(n_views)]


def kernel_size(h: int, w: int) -> int:
    """Blur kernel side: 10% of the smaller image side, rounded to odd, at least 3.

    SimCLR (App. A) uses a kernel of 10% of the image side; BYOL's 23 for 224 is this rule
    (int(22.4) = 22 → 23). CIFAR 32×32 gives 3; 8×8 gives the minimum, 3.
    """
    return max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)


def gaussian_kernels(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels, one per sample: (N,) sigmas → (N, size), rows sum to 1."""
    t = torch.arange(size, dtype=sigma.dtype, device=sigma.device) - (size // 2)  # (size,)
    k = torch.exp(-0.5 * (t / sigma[:, None]) ** 2)  # (N, size)
    return k / k.sum(dim=1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: Tensor, size: int) -> Tensor:
    """Blur each image with its own separable Gaussian (reflect padding), in two grouped convs.

    Args:
        x: (N, C, H, W), H and W > size // 2 (reflect padding needs it).
        sigma: (N,) standard deviations in pixels.
        size: odd kernel side.

    Returns:
        (N, C, H, W). A constant image is unchanged up to rounding (rows sum to 1, reflect
        padding adds no zeros).
    """
    n, c, h, w = x.shape
    k = gaussian_kernels(sigma, size).repeat_interleave(c, dim=0)  # (N*C, size)
    pad = size // 2
    y = x.reshape(1, n * c, h, w)  # batch folded into groups: one conv for all samples
    y = F.conv2d(
        F.pad(y, (pad, pad, 0, 0), mode="reflect"), k.view(n * c, 1, 1, size), groups=n * c
    )
    y = F.conv2d(
        F.pad(y, (0, 0, pad, pad), mode="reflect"), k.view(n * c, 1, size, 1), groups=n * c
    )
    return y.view(n, c, h, w)


def _as_float_images(x: Tensor, generator: torch.Generator) -> Tensor:
    """Check shape/dtype/device and return float images in [0, 1] (uint8 → float32 / 255)."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"expected images of shape (N, C, H, W) with C in {{1, 3}}, got {tuple(x.shape)}"
        )
    if generator.device != x.device:
        raise ValueError(f"generator is on {generator.device} but images are on {x.device}")
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    if not x.is_floating_point():
        raise ValueError(f"expected float images in [0, 1] or uint8, got dtype {x.dtype}")
    return x


def _crop_boxes(
    aug: Augment, scale_u: Tensor, ratio_u: Tensor, h: int, w: int
) -> tuple[Tensor, Tensor]:
    """Crop width and height as fractions of the image side: (N,) each, in (0, 1].

    Area fraction s ~ U[crop_scale], ratio r = w/h with log r ~ U[log crop_ratio]. A box that
    does not fit is shrunk, keeping r, to the largest that does:
    width_px = min(√(s·r·H·W), W, r·H), height_px = width_px / r. torchvision instead retries
    10 times and then falls back to a centre crop; a rejection loop needs data-dependent
    control flow, and shrinking only moves some mass to full-width/height boxes.
    """
    s = aug.crop_scale[0] + (aug.crop_scale[1] - aug.crop_scale[0]) * scale_u
    log_r0, log_r1 = math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])
    r = torch.exp(log_r0 + (log_r1 - log_r0) * ratio_u)
    fw = torch.minimum(torch.sqrt(s * r * (h / w)), torch.minimum(torch.ones_like(r), r * (h / w)))
    fh = fw * (w / h) / r
    return fw, fh


def _affine_matrices(aug: Augment, d: dict[str, Tensor], h: int, w: int) -> Tensor:
    r"""Compose crop, rotation and flip into one affine map per sample, (N, 2, 3).

    In affine_grid's normalised coordinates (output point u ∈ [−1, 1]² → input point):

        input = diag(f_w, f_h) · S⁻¹ R(θ) S · diag(±1, 1) · u + (c_x, c_y)

    with S = diag(W/2, H/2) so that the rotation is a true rotation in pixels on non-square
    images. The crop centre is uniform over positions keeping the box inside the image,
    |c_x| ≤ 1 − f_w, |c_y| ≤ 1 − f_h (torchvision's uniform integer offset, made continuous).
    """
    fw, fh = _crop_boxes(aug, d["scale"], d["ratio"], h, w)
    cx, cy = (1 - fw) * (2 * d["cx"] - 1), (1 - fh) * (2 * d["cy"] - 1)
    angle = math.radians(aug.rotation_deg) * (2 * d["angle"] - 1)  # > 0: counter-clockwise
    sign = torch.where(d["flip"] < aug.hflip_prob, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Rows of diag(fw, fh) · S⁻¹ R S · diag(sign, 1), written out per entry.
    a = torch.stack([fw * cos * sign, -fw * sin * (h / w), cx], dim=1)  # (N, 3)
    b = torch.stack([fh * sin * (w / h) * sign, fh * cos, cy], dim=1)  # (N, 3)
    return torch.stack([a, b], dim=1)  # (N, 2, 3)


def _warp(x: Tensor, theta: Tensor, mask_outside: bool) -> Tensor:
    """Resample x through per-sample affine maps theta (N, 2, 3); bilinear, align_corners=False.

    Padding: 'border', not 'zeros'. Crops lie inside the image, but an upsampled crop touching
    the image edge samples up to half an input pixel past the last pixel centre; 'zeros'
    would blend black into that edge band, while 'border' repeats the edge pixel, as
    torchvision's crop-then-resize does. Points outside the image proper (only possible with
    rotation) are then set to 0, torchvision's RandomRotation fill.
    """
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (N, H, W, 2)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if mask_outside:
        y = y * (grid.abs() <= 1).all(dim=-1, keepdim=True).permute(0, 3, 1, 2).to(y.dtype)
    return y


def fixed_views(
    images: Tensor, recipe: str | Sequence[Augment], n_views: int, seed: int
) -> list[Tensor]:
    """The V views every image keeps at every step of a ``fixed_views`` run (the theory's pairs).

    Drawn for the whole training set at once, from a generator seeded by the run's seed with a
    value no training step uses, so the training loop and the instruments (which measure on
    these same pairs in such a run) get identical views.

    Args:
        images: the whole self-supervised training set, (N, C, H, W), on the run's device.
        recipe, n_views: as in :func:`make_views`.
        seed: the run's seed.

    Returns:
        V float tensors (N, C, H, W) in [0, 1] on ``images.device``.
    """
    generator = torch.Generator(device=images.device)
    generator.manual_seed(seed * 2**32 + 2**32 - 2)
    return make_views(images, recipe, n_views, generator)
