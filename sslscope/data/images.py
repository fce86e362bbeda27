"""The in-memory image data set every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class ImageData:
    """Images stored as uint8 tensors, split into train and test, plus optional unlabeled images.

    Storing uint8 keeps CIFAR-10 at 150 MB and STL-10 with its unlabeled split at 2.8 GB;
    batches are converted to float on the training device (see :mod:`sslscope.views`).

    Attributes:
        name: registry name, e.g. "digits".
        train_x, test_x: uint8 images, shape (N, C, H, W), values 0..255.
        train_y, test_y: int64 labels, shape (N,), values in [0, num_classes).
        class_names: one name per class.
        unlabeled_x: extra uint8 images for self-supervised training only (STL-10 unlabeled),
            or None.
        mean, std: per-channel statistics of ``train_x / 255``; the encoder normalises with them.
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    class_names: list[str]
    unlabeled_x: Tensor | None = None
    mean: tuple[float, ...] = field(init=False)
    std: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        for attr in ("train_x", "test_x"):
            x = getattr(self, attr)
            if x.dtype != torch.uint8 or x.ndim != 4:
                got = f"{x.dtype} {tuple(x.shape)}"
                raise ValueError(f"{attr} must be uint8 (N, C, H, W), got {got}")
        # Statistics from at most 10,000 images: plenty for per-channel moments, and it keeps
        # STL-10's 100,000 unlabeled images from being converted to float all at once.
        pixels = self.sample(10_000).float().div(255).transpose(0, 1).flatten(1)  # (C, n·H·W)
        self.mean = tuple(pixels.mean(dim=1).tolist())
        self.std = tuple(pixels.std(dim=1).clamp_min(1e-3).tolist())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])

    def sample(self, n: int) -> Tensor:
        """The first ``n`` self-supervised training images (train, then unlabeled), uint8."""
        if self.train_x.shape[0] >= n or self.unlabeled_x is None:
            return self.train_x[:n]
        return torch.cat([self.train_x, self.unlabeled_x[: n - self.train_x.shape[0]]])

    def ssl_images(self) -> Tensor:
        """Images used for self-supervised training: train plus unlabeled (never test).

        A view, not a copy, when ``unlabeled_x`` directly follows ``train_x`` in one buffer
        (the STL-10 loader stores them so); otherwise the two are concatenated.
        """
        if self.unlabeled_x is None:
            return self.train_x
        a, b = self.train_x, self.unlabeled_x
        if (
            a.is_contiguous()
            and b.is_contiguous()
            and a.shape[1:] == b.shape[1:]
            and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            and b.storage_offset() == a.storage_offset() + a.numel()
        ):
            return a.as_strided((a.shape[0] + b.shape[0], *a.shape[1:]), a.stride())
        return torch.cat([a, b])
