"""Data sets as in-memory uint8 images with fixed splits.

``DATASETS[name](root)`` returns an :class:`ImageData`. A new loader (CIFAR, STL-10, an image
folder) is a function with that signature added to the dict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sslscope.data.digits import load_digits
from sslscope.data.images import ImageData
from sslscope.errors import UserError

DATASETS: dict[str, Callable[[str | Path | None], ImageData]] = {
    "digits": load_digits,
}


def load_dataset(name: str, root: str | Path | None = None) -> ImageData:
    """Load a registered data set by name; an unknown name is a UserError."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root)


__all__ = ["DATASETS", "ImageData", "load_dataset", "load_digits"]
