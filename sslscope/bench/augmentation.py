"""Section 1: view generation, sslscope's batched views against kornia and a per-sample pipeline.

Compared, for the SimCLR CIFAR protocol (recipe "simclr", 3×32×32) and the digits protocol
(recipe "digits", 1×8×8), making V = 2 views of a batch of N images:

- ours: :func:`sslscope.views.make_views` on the uint8 batch (what the training loop calls),
  eager and, where Inductor can build kernels here, with the colour jitter compiled (what
  ``--compile`` trains with);
- kornia: ``kornia.augmentation`` with the same ops and strengths (RandomResizedCrop,
  RandomHorizontalFlip, ColorJitter with p = 0.8, RandomGrayscale p = 0.2; for digits the
  crop, a rotation, brightness/contrast jitter and Gaussian noise, clamped), the batched GPU
  augmentation library stable-pretraining uses; it gets the float batch ``x / 255`` and the
  conversion is timed with it;
- per-sample: the PIL/NumPy pipeline of :mod:`sslscope.bench.pil_pipeline` in a DataLoader
  with worker processes, which is what torchvision transforms in a Dataset amount to.

Why: batched augmentation on the training device is the lever the performance notes rank
first for 32×32 data (airbench, stable-pretraining's 2.55× from kornia); this says how far
ours goes on this machine, against both the batched library and the per-sample habit.
Images/s counts input images (each gives V views); ratios are ours over the baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sslscope.bench.pil_pipeline import per_sample_loader
from sslscope.bench.table import Column, Section, Table
from sslscope.bench.timing import Settings, interleaved, median, median_ratio
from sslscope.engine import compile_unsupported
from sslscope.views import RECIPES, Augment, kernel_size, make_views

CASES = (("simclr", (3, 32, 32)), ("digits", (1, 8, 8)))
N_VIEWS = 2
NOT_INSTALLED = "kornia not installed"


class Clamp(nn.Module):
    """Clamp to [0, 1], as ``make_views`` and ``ToTensor`` + clip end (kornia's noise does not)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(0.0, 1.0)


def kornia_pipeline(aug: Augment, shape: tuple[int, int, int]) -> nn.Module | None:
    """The kornia version of one view's :class:`~sslscope.views.Augment`; None without it.

    Raises:
        NotImplementedError: a recipe field this translation does not cover.
    """
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    c, h, w = shape
    ops: list[nn.Module] = [K.RandomResizedCrop((h, w), scale=aug.crop_scale,
                                                ratio=aug.crop_ratio)]
    if aug.rotation_deg > 0:  # ours rotates every sample; kornia's default p is 0.5
        ops.append(K.RandomRotation(aug.rotation_deg, p=1.0))
    if aug.hflip_prob > 0:
        ops.append(K.RandomHorizontalFlip(p=aug.hflip_prob))
    saturation, hue = (aug.saturation, aug.hue) if c == 3 else (0.0, 0.0)
    if aug.jitter_prob > 0 and max(aug.brightness, aug.contrast, saturation, hue) > 0:
        ops.append(K.ColorJitter(aug.brightness, aug.contrast, saturation, hue,
                                 p=aug.jitter_prob))
    if aug.grayscale_prob > 0 and c == 3:
        ops.append(K.RandomGrayscale(p=aug.grayscale_prob))
    if aug.blur_prob > 0:
        size = kernel_size(h, w)
        ops.append(K.RandomGaussianBlur((size, size), aug.blur_sigma, p=aug.blur_prob))
    if aug.solarize_prob > 0:
        raise NotImplementedError("kornia's RandomSolarize draws its threshold; not translated")
    if aug.noise_std > 0:
        ops.append(K.RandomGaussianNoise(std=aug.noise_std, p=1.0))
    return nn.Sequential(*ops, Clamp())


def kornia_views(pipelines: list[nn.Module], x: Tensor, n_views: int) -> list[Tensor]:
    """V views of a uint8 batch through kornia, view v with pipeline v mod len."""
    xf = x.float() / 255.0
    return [pipelines[v % len(pipelines)](xf) for v in range(n_views)]


def run(settings: Settings) -> Section:
    """Time the three pipelines on both recipes; one table."""
    n, batches = (32, 2) if settings.quick else (512, 4)
    table = Table(
        f"Throughput, N = {n} images per batch, V = {N_VIEWS} views each",
        [Column("recipe"), Column("image"), Column("ours (images/s)", "{:,.0f}"),
         Column("kornia (images/s)", "{:,.0f}"),
         Column("per-sample DataLoader (images/s)", "{:,.0f}"),
         Column("ours / kornia", "{:.1f}×", ratio=True),
         Column("ours / per-sample", "{:.1f}×", ratio=True),
         Column("ours compiled (images/s)", "{:,.0f}"),
         Column("compiled / kornia", "{:.1f}×", ratio=True)],
    )
    # --quick is a smoke test: seconds of Inductor compilation would be most of it.
    no_compile = ("not measured with --quick" if settings.quick
                  else compile_unsupported(torch.device("cpu")))
    for recipe, shape in CASES:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
        calls = {"ours": lambda x=x, recipe=recipe, g=g: make_views(x, recipe, N_VIEWS, g)}
        if no_compile is None:  # compiled in the warm-up round, which is not timed
            calls["compiled"] = lambda x=x, recipe=recipe, g=g: make_views(
                x, recipe, N_VIEWS, g, compiled=True)
        pipes = [kornia_pipeline(a, shape) for a in RECIPES[recipe]]
        if all(p is not None for p in pipes):
            calls["kornia"] = lambda x=x, pipes=pipes: kornia_views(pipes, x, N_VIEWS)
        pool = torch.randint(0, 256, (n * batches, *shape), dtype=torch.uint8, generator=g)
        loader = per_sample_loader(pool, recipe, N_VIEWS, batch_size=n, batches=batches,
                                   workers=settings.workers)
        calls["per-sample"] = lambda loader=loader: sum(1 for _ in loader)
        times = interleaved(calls, settings.repeats)
        # Throughput ratio = baseline seconds per image / ours; the loader's pass is `batches`.
        per_image = {"ours": [t / n for t in times["ours"]],
                     "per-sample": [t / (n * batches) for t in times["per-sample"]]}
        for name in ("kornia", "compiled"):
            if name in times:
                per_image[name] = [t / n for t in times[name]]
        speed = {k: 1 / median(v) for k, v in per_image.items()}
        table.add(
            f"`{recipe}`", "×".join(map(str, shape)), speed["ours"],
            speed.get("kornia", NOT_INSTALLED), speed["per-sample"],
            (median_ratio(per_image["kornia"], per_image["ours"]) if "kornia" in per_image
             else NOT_INSTALLED),
            median_ratio(per_image["per-sample"], per_image["ours"]),
            speed.get("compiled", no_compile),
            (median_ratio(per_image["kornia"], per_image["compiled"])
             if "kornia" in per_image and "compiled" in per_image
             else no_compile or NOT_INSTALLED),
        )
        del loader  # stop its workers before the next case
    return Section(
        "augmentation", "Augmentation: batched views against kornia and a per-sample pipeline",
        f"`sslscope.views.make_views` on a uint8 batch against kornia.augmentation with the "
        f"same ops and strengths (float input, conversion timed) and against a per-sample "
        f"PIL/NumPy pipeline (torchvision's ops written by hand: torchvision does not import "
        f"against this torch) in a DataLoader with {settings.workers} worker process(es), one "
        f"pass of {batches} batches per repeat. Median of {settings.repeats} alternated "
        "repeats after one warm-up round. SimCLR CIFAR protocol (`simclr`: crop, flip, colour "
        "jitter p = 0.8, grayscale p = 0.2) and the digits protocol (`digits`: crop, ±15° "
        "rotation, brightness/contrast, Gaussian noise). All on the CPU.",
        [table],
        notes=["Jitter order: kornia's ColorJitter draws a random order of the four ops per "
               "call (per batch), the per-sample pipeline per image as torchvision does; ours "
               "applies them in a fixed order (one pass over the batch).",
               "Compiled: `make_views(..., compiled=True)`, the colour jitter through "
               "torch.compile (Inductor's fused C++ loops; the geometry, grayscale, blur and "
               "noise stay eager); kornia is timed eager, as its users run it."],
    )
