"""STL-10 from the official binary archive, with its 100,000-image unlabeled split.

Format (Coates, Ng & Lee 2011, and https://cs.stanford.edu/~acoates/stl10/): ``*_X.bin``
files are raw uint8, 96·96·3 = 27,648 bytes per image, one channel at a time (red, green,
blue), each channel stored **column-major**: reading the bytes as (N, 3, 96, 96) in C order
gives each channel transposed, so the last two axes are swapped back ((N, C, W, H) → (N, C,
H, W)), as the dataset's own MATLAB/Python readers and torchvision do. ``*_y.bin`` are uint8
labels 1..10, shifted here to 0..9; ``class_names.txt`` has one name per line in label order.
Splits: train 5,000 (500 per class), test 8,000, unlabeled 100,000 (from a broader
distribution than the labeled classes).

Memory: the unlabeled split is 100,000 × 27,648 bytes = 2.76 GB as uint8. It is read with
``numpy.fromfile`` in chunks of 1,000 images straight into one preallocated tensor, so the
peak is that tensor plus 28 MB, not twice the file.

References:
    Coates, Ng & Lee, "An Analysis of Single-Layer Networks in Unsupervised Feature
    Learning", AISTATS 2011.
    Archive URL and MD5 as in torchvision: pytorch/vision@014dcb8,
    torchvision/datasets/stl10.py, STL10.tgz_md5; transpose as in STL10.__loadfile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sslscope.data.download import DEFAULT_DATA_DIR, ensure_files
from sslscope.data.images import ImageData
from sslscope.errors import UserError

STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_ARCHIVE = "stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
STL10_DIR = "stl10_binary"
STL10_FILES = [
    "train_X.bin",
    "train_y.bin",
    "test_X.bin",
    "test_y.bin",
    "unlabeled_X.bin",
    "class_names.txt",
]

SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE  # 27,648
CHUNK_IMAGES = 1000  # 28 MB per read


def read_stl_images(*paths: str | Path) -> Tensor:
    """Read STL-10 ``*_X.bin`` files into one uint8 tensor, shape (N, 3, 96, 96).

    Each stored channel is column-major, so every chunk is read as (n, 3, 96, 96) and its
    last two axes are transposed into the preallocated result. Several files land one after
    the other in a single buffer, so train + unlabeled need no second 2.9 GB concatenated copy.

    Args:
        paths: one or more STL-10 image files (N · 27,648 bytes each), read in order.

    Returns:
        uint8 tensor (N, 3, 96, 96), rows then columns (image[c, y, x]); N sums over files.

    Raises:
        UserError: a file's size is not a whole number of 96×96×3 images.
    """
    counts = []
    for path in map(Path, paths):
        size = path.stat().st_size
        if size == 0 or size % IMAGE_BYTES:
            raise UserError(
                f"{path} is {size} bytes, not a whole number of 96×96×3 images "
                f"({IMAGE_BYTES} bytes each); the file is truncated, delete it and run again"
            )
        counts.append(size // IMAGE_BYTES)
    out = torch.empty((sum(counts), 3, SIDE, SIDE), dtype=torch.uint8)
    dest = out.numpy()  # shares memory with out
    offset = 0
    for path, n in zip(paths, counts, strict=True):
        with open(path, "rb") as f:
            for start in range(0, n, CHUNK_IMAGES):
                count = min(CHUNK_IMAGES, n - start)
                chunk = np.fromfile(f, dtype=np.uint8, count=count * IMAGE_BYTES)
                chunk = chunk.reshape(count, 3, SIDE, SIDE)  # (n, C, W, H): column-major
                dest[offset + start : offset + start + count] = chunk.transpose(0, 1, 3, 2)
        offset += n
    return out


def read_stl_labels(path: str | Path, num_classes: int) -> Tensor:
    """Read an STL-10 ``*_y.bin`` file (uint8 labels 1..C) as int64 labels 0..C-1, shape (N,).

    Raises:
        UserError: a label outside 1..C.
    """
    raw = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if raw.size and (raw.min() < 1 or raw.max() > num_classes):
        raise UserError(f"{path} has labels outside 1..{num_classes}; is it an STL-10 label file?")
    return torch.from_numpy(raw - 1)  # the files count classes from 1


def load_stl10(root: str | Path | None = None) -> ImageData:
    """STL-10: 5,000 train, 8,000 test and 100,000 unlabeled 96×96 colour images, 10 classes.

    Reads ``root/stl10_binary/{train_X, train_y, test_X, test_y, unlabeled_X}.bin`` and
    ``class_names.txt``; when they are missing, extracts ``root/stl10_binary.tar.gz`` or
    downloads it (2.6 GB, MD5-checked). The unlabeled images go to ``unlabeled_x`` and are used
    for self-supervised training only. The official ten train folds (``fold_indices.txt``) are
    not used: train is all 5,000 labeled images.

    Args:
        root: the data directory; ``DEFAULT_DATA_DIR`` (sslscope.data.download) when None.

    Returns:
        ImageData with train_x (5000, 3, 96, 96), test_x (8000, 3, 96, 96) and unlabeled_x
        (100000, 3, 96, 96), uint8: about 3.1 GB in memory.

    Raises:
        UserError: offline without the files, a bad checksum, or a malformed file.
    """
    root = Path(DEFAULT_DATA_DIR if root is None else root)
    ensure_files(
        root,
        [f"{STL10_DIR}/{n}" for n in STL10_FILES],
        url=STL10_URL,
        archive_name=STL10_ARCHIVE,
        md5=STL10_MD5,
    )
    folder = root / STL10_DIR
    lines = (folder / "class_names.txt").read_text(encoding="utf-8").splitlines()
    class_names = [line.strip() for line in lines if line.strip()]
    # Train and unlabeled share one buffer (train first): ImageData.ssl_images() is then a view.
    ssl_x = read_stl_images(folder / "train_X.bin", folder / "unlabeled_X.bin")
    n_train = (folder / "train_X.bin").stat().st_size // IMAGE_BYTES
    images = {"train": ssl_x[:n_train], "test": read_stl_images(folder / "test_X.bin")}
    labels = {}
    for part, x in images.items():
        y = read_stl_labels(folder / f"{part}_y.bin", len(class_names))
        if y.shape[0] != x.shape[0]:
            raise UserError(
                f"{folder / f'{part}_y.bin'} has {y.shape[0]} labels for "
                f"{x.shape[0]} images in {part}_X.bin"
            )
        labels[part] = y
    return ImageData(
        name="stl10",
        train_x=images["train"],
        train_y=labels["train"],
        test_x=images["test"],
        test_y=labels["test"],
        class_names=class_names,
        unlabeled_x=ssl_x[n_train:],
    )
