"""Tests for sslscope.views: numbers against independent references (colorsys, F.interpolate,
torch.rot90, hand formulas), not just "it runs"."""

import colorsys
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from sslscope.colour import hsv_to_rgb, rgb_to_hsv, shift_hue
from sslscope.views import (
    RECIPES,
    Augment,
    _affine_matrices,
    _crop_boxes,
    _warp,
    augment,
    gaussian_blur,
    gaussian_kernels,
    kernel_size,
    make_views,
)

# Everything off: geometry identity on square images, no photometric op.
NONE = RECIPES["none"][0]
OFF = dataclasses.replace(NONE, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def images(n=8, c=3, h=32, w=32, seed=1, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=gen(seed), dtype=dtype)


def theta_for(aug, h, w, *, scale=0.5, ratio=0.5, cx=0.5, cy=0.5, angle=0.5, flip=1.0, n=1):
    """Affine matrices with chosen uniforms (0.5 ↦ centre / zero angle; flip=1 ↦ no flip)."""
    chosen = dict(scale=scale, ratio=ratio, cx=cx, cy=cy, angle=angle, flip=flip)
    return _affine_matrices(aug, {k: torch.full((n,), float(v)) for k, v in chosen.items()}, h, w)


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("size", [(8, 8), (24, 24), (32, 32), (7, 7)])
def test_none_recipe_is_exact_identity(size):
    x = images(h=size[0], w=size[1])
    (y,) = make_views(x, "none", 1, gen())
    assert torch.equal(y, x)


@pytest.mark.parametrize("size", [8, 32])
def test_identity_matrix_through_grid_sample_is_exact(size):
    # Exact for power-of-two sides: pixel centres (2j+1)/W − 1 are dyadic, so no rounding.
    aug = dataclasses.replace(OFF, hflip_prob=0.0)
    theta = theta_for(aug, size, size, n=4)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(4, 2, 3))
    x = images(n=4, h=size, w=size)
    assert torch.equal(_warp(x, theta, mask_outside=False), x)


def test_horizontal_flip_is_exact():
    x = images()
    y = augment(x, dataclasses.replace(OFF, hflip_prob=1.0), gen())
    assert torch.equal(y, x.flip(-1))
    # Other sizes are equal up to grid_sample's coordinate rounding.
    x = images(h=24, w=24)
    y = augment(x, dataclasses.replace(OFF, hflip_prob=1.0), gen())
    torch.testing.assert_close(y, x.flip(-1), atol=1e-5, rtol=0)


def test_quarter_crop_equals_bilinear_upsample_of_that_quarter():
    # Scale 0.25, ratio 1: a half-side box; cx = cy = 0 (uniform 0) puts it at the top left.
    aug = dataclasses.replace(OFF, crop_scale=(0.25, 0.25))
    x = images(n=2, h=16, w=16)
    theta = theta_for(aug, 16, 16, cx=0.0, cy=0.0, n=2)
    y = _warp(x, theta, mask_outside=False)
    ref = F.interpolate(x[..., :8, :8], scale_factor=2, mode="bilinear", align_corners=False)
    # The last row/column sample 1/4 pixel past the quarter's last pixel centre: we read the
    # real neighbouring pixel there, F.interpolate on the cut-out repeats the edge.
    torch.testing.assert_close(y[..., :-1, :-1], ref[..., :-1, :-1], atol=1e-6, rtol=0)


def test_zoom_of_linear_ramp_by_hand():
    # Bilinear is exact on a ramp: output (i, j) reads input pixel (i/2 − 1/4, j/2 − 1/4),
    # clamped at 0 by the 'border' padding.
    h = w = 16
    i, j = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    x = (0.01 * j + 0.02 * i + 0.1).expand(1, 1, h, w)
    aug = dataclasses.replace(OFF, crop_scale=(0.25, 0.25))
    y = _warp(x, theta_for(aug, h, w, cx=0.0, cy=0.0).double(), mask_outside=False)
    expect = 0.01 * (j / 2 - 0.25).clamp(min=0) + 0.02 * (i / 2 - 0.25).clamp(min=0) + 0.1
    torch.testing.assert_close(y[0, 0], expect, atol=1e-12, rtol=0)


def test_rotation_90_matches_rot90_including_non_square():
    aug = dataclasses.replace(OFF, rotation_deg=90.0)
    x = images(n=2, h=16, w=16)
    y = _warp(x, theta_for(aug, 16, 16, angle=1.0, n=2), mask_outside=True)
    torch.testing.assert_close(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    # On 16×32 the central 16×16 square maps onto itself pixel for pixel only if the rotation
    # is done in pixel units (S⁻¹ R S), not in normalised units.
    x = images(n=2, h=16, w=32)
    full = dataclasses.replace(aug, crop_ratio=(2.0, 2.0))  # w/h = 2: the crop is the image
    y = _warp(x, theta_for(full, 16, 32, angle=1.0, n=2), mask_outside=True)
    torch.testing.assert_close(
        y[..., 8:24], torch.rot90(x[..., 8:24], 1, dims=(-2, -1)), atol=1e-5, rtol=0
    )
    assert torch.all(y[..., :2] == 0)  # left/right bands come from outside the image: fill 0


def test_rotation_fills_outside_with_zero_and_keeps_centre():
    x = torch.ones(1, 1, 33, 33)
    aug = dataclasses.replace(OFF, rotation_deg=45.0)
    y = _warp(x, theta_for(aug, 33, 33, angle=1.0), mask_outside=True)
    assert y[0, 0, 0, 0] == 0 and y[0, 0, 16, 16] == 1


def test_crop_boxes_inside_image_with_requested_area_and_ratio():
    aug = Augment(crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3))
    u = torch.rand(2, 10_000, generator=gen(3))
    for h, w in [(32, 32), (16, 40)]:
        fw, fh = _crop_boxes(aug, u[0], u[1], h, w)
        assert torch.all((fw > 0) & (fw <= 1 + 1e-6) & (fh > 0) & (fh <= 1 + 1e-6))
        ratio = fw * w / (fh * h)
        assert torch.all((ratio >= 3 / 4 - 1e-5) & (ratio <= 4 / 3 + 1e-5))
        # Shrinking (a box that does not fit) only ever lowers the area; a shrunk box spans
        # the full width or height.
        area, s = fw * fh, 0.08 + 0.92 * u[0]
        unshrunk = torch.isclose(area, s, atol=1e-5)
        assert torch.all(area <= s + 1e-5)
        assert torch.all(unshrunk | (fw >= 1 - 1e-6) | (fh >= 1 - 1e-6))
        if h == w:  # on a square image only large, elongated boxes need shrinking
            assert unshrunk.float().mean() > 0.8
    # Full crops through augment never sample outside the image (no rotation): a constant
    # image stays constant, so no black from 'zeros' or the outside mask leaks in.
    y = augment(
        torch.full((64, 3, 16, 16), 0.7), dataclasses.replace(OFF, crop_scale=(0.08, 1)), gen()
    )
    torch.testing.assert_close(y, torch.full_like(y, 0.7), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- colour


def test_hsv_matches_colorsys_both_ways():
    rgb = torch.rand(1, 3, 40, 40, generator=gen(4), dtype=torch.float64)
    rgb[0, :, 0, :3] = torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64)[:, None]  # greys
    rgb[0, :, 1, 0] = torch.tensor([0.8, 0.8, 0.2], dtype=torch.float64)  # R = G tie
    pixels = rgb[0].reshape(3, -1).T.tolist()
    ref = torch.tensor([colorsys.rgb_to_hsv(*p) for p in pixels], dtype=torch.float64)
    hsv = rgb_to_hsv(rgb)[0].reshape(3, -1).T
    torch.testing.assert_close(hsv, ref, atol=1e-5, rtol=0)
    back = torch.tensor([colorsys.hsv_to_rgb(*p) for p in ref.tolist()], dtype=torch.float64)
    torch.testing.assert_close(
        hsv_to_rgb(rgb_to_hsv(rgb))[0].reshape(3, -1).T, back, atol=1e-5, rtol=0
    )
    x32 = rgb.float()
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x32)), x32, atol=1e-5, rtol=0)


def test_shift_hue_equals_the_hsv_round_trip_and_colorsys():
    rgb = torch.rand(6, 3, 20, 20, generator=gen(6), dtype=torch.float64)
    rgb[0] = rgb[0, :1]  # grey pixels: unchanged by any shift
    rgb[1] = rgb[1].round()  # saturated corners and black/white
    rgb[2, 1] = rgb[2, 0]  # R = G ties
    shift = torch.tensor([0.5, -0.5, 0.1, -0.1, 0.37, 0.0], dtype=torch.float64).view(6, 1, 1, 1)
    hsv = rgb_to_hsv(rgb)
    round_trip = hsv_to_rgb(torch.cat([torch.remainder(hsv[:, :1] + shift, 1.0), hsv[:, 1:]], 1))
    torch.testing.assert_close(shift_hue(rgb, shift), round_trip, atol=1e-12, rtol=0)
    torch.testing.assert_close(shift_hue(rgb[:1], shift[:1]), rgb[:1], atol=1e-12, rtol=0)
    pixels = rgb[4].reshape(3, -1).T.tolist()  # one image against colorsys, by hand
    ref = []
    for p in pixels:
        h, s_, v = colorsys.rgb_to_hsv(*p)
        ref.append(colorsys.hsv_to_rgb((h + 0.37) % 1.0, s_, v))
    got = shift_hue(rgb[4:5], shift[4:5])[0].reshape(3, -1).T
    torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), atol=1e-12, rtol=0)


def test_hue_shift_rotates_hue_only():
    x = images(n=16, seed=5)
    aug = dataclasses.replace(OFF, jitter_prob=1.0, hue=0.5)
    hsv_in, hsv_out = rgb_to_hsv(x), rgb_to_hsv(augment(x, aug, gen()))
    torch.testing.assert_close(hsv_out[:, 1:], hsv_in[:, 1:], atol=1e-5, rtol=0)
    shift = torch.remainder(hsv_out[:, 0] - hsv_in[:, 0], 1.0).flatten(1)  # (N, H*W)
    coloured = (hsv_in[:, 1] > 0.05).flatten(1)
    circ = torch.remainder(shift - shift[:, :1] + 0.5, 1.0) - 0.5  # same shift per image
    assert circ[coloured].abs().max() < 1e-4


def test_grayscale_uses_601_luma_on_every_channel():
    x = images()
    y = augment(x, dataclasses.replace(OFF, grayscale_prob=1.0), gen())
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for ch in range(3):
        torch.testing.assert_close(y[:, ch], luma, atol=1e-6, rtol=0)


def test_brightness_factor_exact_and_in_range():
    aug = dataclasses.replace(OFF, jitter_prob=1.0, brightness=0.4)
    half = augment(torch.full((256, 3, 4, 4), 0.5, dtype=torch.float64), aug, gen(7))
    f = 2.0 * half[:, 0, 0, 0]  # 0.5·f is exact, so this is the factor bit for bit
    assert f.min() >= 0.6 and f.max() <= 1.4 and f.max() - f.min() > 0.7
    x = torch.rand(256, 3, 4, 4, generator=gen(8), dtype=torch.float64)
    y = augment(x, aug, gen(7))  # same seed ⇒ same factors
    assert torch.equal(y, (x * f.view(-1, 1, 1, 1)).clamp(0, 1))


def test_contrast_keeps_mean_and_scales_deviation():
    x = 0.4 + 0.2 * images(n=16, c=1, dtype=torch.float64)  # no clamping for f ∈ [0.6, 1.4]
    y = augment(x, dataclasses.replace(OFF, jitter_prob=1.0, contrast=0.4), gen())
    m_x, m_y = x.mean((1, 2, 3), keepdim=True), y.mean((1, 2, 3), keepdim=True)
    torch.testing.assert_close(m_y, m_x, atol=1e-12, rtol=0)
    f = ((y - m_y) / (x - m_x)).flatten(1)
    torch.testing.assert_close(f, f[:, :1].expand_as(f), atol=1e-9, rtol=0)
    assert f.min() >= 0.6 - 1e-9 and f.max() <= 1.4 + 1e-9


def test_saturation_keeps_luma():
    x = 0.3 + 0.4 * images(n=16, dtype=torch.float64)
    y = augment(x, dataclasses.replace(OFF, jitter_prob=1.0, saturation=0.4), gen())
    luma = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]  # noqa: E731
    torch.testing.assert_close(luma(y), luma(x), atol=1e-12, rtol=0)
    assert not torch.allclose(y, x)


def test_colour_ops_skipped_for_one_channel():
    x = images(c=1)
    aug = dataclasses.replace(OFF, jitter_prob=1.0, saturation=0.9, hue=0.5, grayscale_prob=1.0)
    assert torch.equal(augment(x, aug, gen()), x)


# --------------------------------------------------------------------------- blur, solarize, noise


def test_blur_kernel_size_and_normalisation():
    assert [kernel_size(s, s) for s in (8, 32, 64, 224)] == [3, 3, 7, 23]
    k = gaussian_kernels(torch.tensor([0.1, 1.0, 2.0]), 23)
    torch.testing.assert_close(k.sum(1), torch.ones(3))
    torch.testing.assert_close(k, k.flip(1))


def test_blur_keeps_constant_image_and_impulse_gives_kernel():
    c = torch.full((4, 3, 32, 32), 0.37)
    y = augment(c, dataclasses.replace(OFF, blur_prob=1.0), gen())
    torch.testing.assert_close(y, c, atol=1e-6, rtol=0)
    x = torch.zeros(2, 1, 15, 15, dtype=torch.float64)
    x[:, :, 7, 7] = 1.0
    sigma = torch.tensor([0.5, 1.5], dtype=torch.float64)
    y = gaussian_blur(x, sigma, 5)
    t = torch.arange(5, dtype=torch.float64) - 2
    for n in range(2):
        g = torch.exp(-(t**2) / (2 * sigma[n] ** 2))
        g = g / g.sum()
        torch.testing.assert_close(y[n, 0, 5:10, 5:10], torch.outer(g, g))


def test_solarize_and_noise():
    x = images()
    y = augment(x, dataclasses.replace(OFF, solarize_prob=1.0), gen())
    assert torch.equal(y, torch.where(x >= 0.5, 1 - x, x))
    mid = torch.full((64, 3, 32, 32), 0.5)
    y = augment(mid, dataclasses.replace(OFF, noise_std=0.05), gen())
    assert abs((y - mid).std().item() - 0.05) < 0.002


# --------------------------------------------------------------------------- masks, contract

OPS = {
    "hflip": dict(hflip_prob=1.0),
    "jitter": dict(jitter_prob=1.0, brightness=0.4),
    "grayscale": dict(grayscale_prob=1.0),
    "blur": dict(blur_prob=1.0, blur_sigma=(1.0, 2.0)),  # σ = 0.1 is a no-op on 3 taps
    "solarize": dict(solarize_prob=1.0),
}


@pytest.mark.parametrize("op", OPS)
def test_probability_zero_never_fires_and_one_always_fires(op):
    x = images(n=64)
    on = dataclasses.replace(OFF, **OPS[op])
    off = dataclasses.replace(on, **{k: 0.0 for k in OPS[op] if k.endswith("prob")})
    assert torch.equal(augment(x, off, gen()), x)
    changed = (augment(x, on, gen()) - x).flatten(1).abs().amax(1) > 1e-4
    assert changed.all()


def test_probability_half_fires_on_about_half():
    x = images(n=512, h=8, w=8)
    y = augment(x, dataclasses.replace(OFF, solarize_prob=0.5), gen())
    frac = ((y - x).flatten(1).abs().amax(1) > 0).float().mean().item()
    assert 0.4 < frac < 0.6


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipes_contract(recipe):
    c = 1 if recipe == "digits" else 3
    x = images(n=8, c=c, h=8 if c == 1 else 32, w=8 if c == 1 else 32)
    x_before = x.clone()
    views = make_views(x, recipe, 3, gen())
    assert torch.equal(x, x_before)  # not modified in place
    assert len(views) == 3
    for v in views:
        assert v.shape == x.shape and v.dtype == x.dtype and v.device == x.device
        assert v.min() >= 0 and v.max() <= 1 and torch.isfinite(v).all()
    again = make_views(x, recipe, 3, gen())
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))
    if recipe != "none":
        other = make_views(x, recipe, 3, gen(1))
        assert not any(torch.equal(a, b) for a, b in zip(views, other, strict=True))
        assert not torch.equal(views[0], views[1])  # views differ within one call


def test_make_views_cycles_recipe():
    x = images(n=4)
    a, b = RECIPES["byol"]
    views = make_views(x, "byol", 3, gen(9))
    g = gen(9)
    expect = [augment(x, a, g), augment(x, b, g), augment(x, a, g)]
    assert all(torch.equal(v, e) for v, e in zip(views, expect, strict=True))


def test_uint8_input_converted():
    x8 = (images() * 255).round().to(torch.uint8)
    x8_before = x8.clone()
    y = augment(x8, RECIPES["simclr"][0], gen())
    assert y.dtype == torch.float32 and torch.equal(x8, x8_before)
    assert torch.equal(y, augment(x8.float() / 255, RECIPES["simclr"][0], gen()))


def test_errors():
    g = gen()
    with pytest.raises(ValueError, match="shape"):
        augment(torch.rand(3, 32, 32), NONE, g)
    with pytest.raises(ValueError, match="C in"):
        augment(torch.rand(2, 2, 8, 8), NONE, g)
    with pytest.raises(ValueError, match="dtype"):
        augment(torch.ones(2, 1, 8, 8, dtype=torch.int64), NONE, g)
    with pytest.raises(ValueError, match=r"known recipes: \['byol', 'digits', 'none', 'simclr'\]"):
        make_views(torch.rand(2, 3, 8, 8), "moco", 2, g)
    with pytest.raises(ValueError, match="n_views"):
        make_views(torch.rand(2, 3, 8, 8), "simclr", 0, g)
    with pytest.raises(ValueError, match="crop_scale"):
        Augment(crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="hflip_prob"):
        Augment(hflip_prob=1.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_deterministic_and_close_to_cpu_ops():
    x = images(n=64).cuda()
    views = make_views(x, "byol", 4, gen(0, "cuda"))
    again = make_views(x, "byol", 4, gen(0, "cuda"))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))
    assert all(v.is_cuda and v.min() >= 0 and v.max() <= 1 for v in views)
    # Same fixed parameters on both devices give the same pixels (flip + grayscale + solarize).
    aug = dataclasses.replace(OFF, hflip_prob=1.0, grayscale_prob=1.0, solarize_prob=1.0)
    torch.testing.assert_close(augment(x, aug, gen(0, "cuda")).cpu(), augment(x.cpu(), aug, gen()))
    with pytest.raises(ValueError, match="generator"):
        augment(x, NONE, gen())
    assert math.isfinite(views[0].sum().item())


@pytest.mark.parametrize("recipe", ["simclr", "byol", "digits"])
def test_shards_of_a_batch_make_the_views_of_the_whole_batch(recipe):
    # One process of a W-process run augments only its slice, yet every image must get the
    # view a single process gives it: the noise and per-sample draws are the whole batch's.
    channels = 1 if recipe == "digits" else 3
    x = torch.rand(12, channels, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = make_views(x, recipe, 3, torch.Generator().manual_seed(5))
    for world in (2, 3, 4):
        n = x.shape[0] // world
        parts = [make_views(x[r * n:(r + 1) * n], recipe, 3, torch.Generator().manual_seed(5),
                            shard=(r, world)) for r in range(world)]
        for v in range(3):
            assert torch.equal(torch.cat([p[v] for p in parts]), whole[v])
