"""The per-sample baseline: torchvision-style augmentation with PIL and NumPy in a DataLoader.

This is what a torchvision ``transforms.Compose`` in a ``Dataset.__getitem__`` does, written
out by hand with PIL and NumPy because torchvision does not import against this project's
CPU torch (``operator torchvision::nms does not exist``), and lightly's pipelines need
torchvision. Each op follows torchvision's PIL code path for the same strengths, which are
read from the :class:`sslscope.views.Augment` of the recipe, so both sides do the same work:

    RandomResizedCrop   10 tries of area ~ U[scale], log-ratio ~ U[log ratio], then the
                        centre-crop fallback; crop + bilinear resize in one ``Image.resize``
    RandomRotation      ``Image.rotate`` by U[−deg, deg], bilinear, black fill
    RandomHorizontalFlip
    ColorJitter (p)     brightness, contrast, saturation (``ImageEnhance``) and hue (HSV
                        shift of the H channel in uint8, as torchvision's ``adjust_hue``),
                        in a random order per image, as torchvision's ``ColorJitter``
    RandomGrayscale (p) ``convert("L")`` copied to three channels
    GaussianBlur (p), RandomSolarize (p)
    ToTensor            float32 in [0, 1], (C, H, W); then Gaussian noise and a clamp

Random numbers come from Python's ``random`` module, which the DataLoader seeds per worker.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from sslscope.views import RECIPES, Augment, kernel_size


def crop_box(width: int, height: int, aug: Augment) -> tuple[int, int, int, int]:
    """The crop box of torchvision's ``RandomResizedCrop.get_params``: (l, t, r, b) pixels."""
    area = width * height
    log_lo, log_hi = math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])
    for _ in range(10):
        target = area * random.uniform(*aug.crop_scale)
        ratio = math.exp(random.uniform(log_lo, log_hi))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = random.randint(0, width - w), random.randint(0, height - h)
            return left, top, left + w, top + h
    in_ratio = width / height  # the fallback: a centre crop of the clipped ratio
    if in_ratio < aug.crop_ratio[0]:
        w, h = width, round(width / aug.crop_ratio[0])
    elif in_ratio > aug.crop_ratio[1]:
        w, h = round(height * aug.crop_ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _factor(strength: float) -> float:
    return random.uniform(max(0.0, 1.0 - strength), 1.0 + strength)


def _hue(img: Image.Image, shift: float) -> Image.Image:
    """Shift the hue as torchvision's PIL ``adjust_hue``: ``shift`` turns added to uint8 H."""
    h, s, v = img.convert("HSV").split()
    h_arr = np.asarray(h, dtype=np.uint8)
    with np.errstate(over="ignore"):
        h_arr = h_arr + np.uint8(round(shift * 255) % 256)
    return Image.merge("HSV", (Image.fromarray(h_arr, "L"), s, v)).convert("RGB")


def color_jitter(img: Image.Image, aug: Augment) -> Image.Image:
    """Brightness, contrast, saturation and hue in a random order (colour ops need RGB)."""
    ops = []
    if aug.brightness > 0:
        ops.append(lambda im: ImageEnhance.Brightness(im).enhance(_factor(aug.brightness)))
    if aug.contrast > 0:
        ops.append(lambda im: ImageEnhance.Contrast(im).enhance(_factor(aug.contrast)))
    if aug.saturation > 0 and img.mode == "RGB":
        ops.append(lambda im: ImageEnhance.Color(im).enhance(_factor(aug.saturation)))
    if aug.hue > 0 and img.mode == "RGB":
        ops.append(lambda im: _hue(im, random.uniform(-aug.hue, aug.hue)))
    random.shuffle(ops)
    for op in ops:
        img = op(img)
    return img


def augment_image(img: Image.Image, aug: Augment) -> Tensor:
    """One random view of one PIL image: float32 (C, H, W) in [0, 1]."""
    width, height = img.size
    img = img.resize((width, height), Image.BILINEAR, box=crop_box(width, height, aug))
    if aug.rotation_deg > 0:
        img = img.rotate(random.uniform(-aug.rotation_deg, aug.rotation_deg),
                         resample=Image.BILINEAR, fillcolor=0)
    if random.random() < aug.hflip_prob:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if random.random() < aug.jitter_prob:
        img = color_jitter(img, aug)
    if img.mode == "RGB" and random.random() < aug.grayscale_prob:
        img = img.convert("L").convert("RGB")
    if random.random() < aug.blur_prob:
        size = kernel_size(height, width)
        sigma = random.uniform(*aug.blur_sigma)
        img = img.filter(ImageFilter.GaussianBlur(radius=min(sigma, size // 2)))
    if random.random() < aug.solarize_prob:
        img = ImageOps.solarize(img, threshold=128)
    x = np.asarray(img, dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)  # (C, H, W)
    if aug.noise_std > 0:
        x = np.clip(x + aug.noise_std * np.random.standard_normal(x.shape).astype(np.float32),
                    0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(x))


class PerSampleViews(Dataset):
    """A Dataset whose item is V augmented views of one image, made by :func:`augment_image`.

    Args:
        images: uint8 (N, C, H, W) tensor, C ∈ {1, 3}, as sslscope stores data sets.
        recipe: a key of :data:`sslscope.views.RECIPES`; view v uses its entry v mod length.
        n_views: V.
    """

    def __init__(self, images: Tensor, recipe: str, n_views: int) -> None:
        arr = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) for PIL
        self.images = arr[..., 0] if arr.shape[-1] == 1 else arr
        self.augs, self.n_views = RECIPES[recipe], n_views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> list[Tensor]:
        img = Image.fromarray(self.images[i])
        return [augment_image(img, self.augs[v % len(self.augs)]) for v in range(self.n_views)]


def per_sample_loader(images: Tensor, recipe: str, n_views: int, *, batch_size: int,
                      batches: int, workers: int, seed: int = 0) -> DataLoader:
    """A DataLoader whose one pass is ``batches`` batches of V views each, drawn with replacement.

    Workers persist across passes, so a pass pays for filling the pipeline (its first batch)
    but not for starting processes; numpy's noise generator is reseeded per worker.
    """
    sampler = RandomSampler(range(len(images)), replacement=True,
                            num_samples=batch_size * batches,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(PerSampleViews(images, recipe, n_views), batch_size=batch_size,
                      sampler=sampler, num_workers=workers, drop_last=True,
                      persistent_workers=workers > 0, worker_init_fn=_seed_numpy)


def _seed_numpy(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)
