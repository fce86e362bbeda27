"""Data sets as in-memory uint8 images with fixed splits.

``DATASETS[name](root)`` returns an :class:`ImageData`. A new loader (CIFAR, STL-10, an image
folder) is a function with that signature added to the dict. Real data sets download into
``root`` (the config's ``data_dir``) with checksum verification, or read the official files
already there; offline they fail with one sentence naming the files they expected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sslscope.data.cifar import load_cifar10, load_cifar100, load_cifar100_coarse
from sslscope.data.digits import load_digits
from sslscope.data.folder import load_image_folder
from sslscope.data.images import ImageData
from sslscope.data.stl10 import load_stl10
from sslscope.errors import UserError

DATASETS: dict[str, Callable[[str | Path | None], ImageData]] = {
    "digits": load_digits,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "cifar100_coarse": load_cifar100_coarse,
    "stl10": load_stl10,
    "imagefolder": load_image_folder,
}


def load_dataset(name: str, root: str | Path | None = None) -> ImageData:
    """Load a registered data set by name; an unknown name is a UserError."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root)


__all__ = [
    "DATASETS",
    "ImageData",
    "load_cifar10",
    "load_cifar100",
    "load_cifar100_coarse",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "load_stl10",
]
