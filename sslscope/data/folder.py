"""Any folder of images: labeled by sub-folder, or unlabeled.

Two layouts are recognised (hidden entries and files with other suffixes are skipped):

    root/<class>/<image>   labeled: one class per sub-folder, classes in sorted name order
                           (torchvision's ImageFolder convention), split into train and test
    root/<image>           unlabeled: every image goes to ``unlabeled_x`` for
                           self-supervised training; train and test are empty

Images are decoded with Pillow (needed for this loader only), turned upright by their EXIF
orientation, converted to RGB, or to L when every image is grayscale, and stored as uint8
(N, C, H, W), two passes over the files: headers first (sizes and modes, to allocate the
result once), then pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslscope.data.images import ImageData
from sslscope.data.splits import stratified_split
from sslscope.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Pillow modes without colour: 1-bit, 8-bit, 16/32-bit integer and float grayscale (+ alpha).
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
EXIF_ORIENTATION = 0x0112  # values 5..8 rotate by 90°, swapping width and height


def _pillow() -> Any:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise UserError(
            "the imagefolder data set needs Pillow to decode images: pip install pillow"
        ) from None
    return Image, ImageOps


def _is_image(path: Path) -> bool:
    visible = not path.name.startswith(".")
    return visible and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _scan(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """Class names (empty when unlabeled), image paths and their labels (-1 when unlabeled)."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if _is_image(p)]
    folders = [(d, sorted(filter(_is_image, d.iterdir()))) for d in entries if d.is_dir()]
    folders = [(d, images) for d, images in folders if images]  # empty sub-folders are no class
    if loose and folders:
        raise UserError(
            f"{root} holds both images and class sub-folders ({folders[0][0].name}, ...); "
            "put every image in a class sub-folder for labeled data, or none for unlabeled data"
        )
    if folders:
        classes = [d.name for d, _ in folders]
        files = [p for _, images in folders for p in images]
        labels = [c for c, (_, images) in enumerate(folders) for _ in images]
        return classes, files, labels
    if not loose:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root} or in its sub-folders")
    return [], loose, [-1] * len(loose)


def _open(image_module: Any, path: Path) -> Any:
    try:
        return image_module.open(path)
    except (OSError, ValueError, image_module.DecompressionBombError) as error:
        raise UserError(f"cannot read image {path} ({error})") from None


def _upright_size(im: Any) -> tuple[int, int]:
    """(width, height) after the EXIF rotation ImageOps.exif_transpose applies."""
    w, h = im.size
    return (h, w) if im.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8) else (w, h)


def load_image_folder(
    root: str | Path | None,
    *,
    size: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageData:
    """Load a folder of images, labeled by sub-folder or unlabeled, as uint8 tensors.

    Args:
        root: the folder (see the module docstring for the two layouts).
        size: side of the square images returned. Each image is centre-cropped to a square and
            resized with bicubic filtering (``ImageOps.fit``), so nothing is stretched. None:
            keep the images as they are, which requires them all to have one size.
        test_fraction: share of each class held out as the test set, in [0, 1); 0.2 is a
            common choice, not from a paper. Ignored for unlabeled folders. Each class of n
            images sends ⌊test_fraction · n + 0.5⌋ to test but keeps at least one in train
            (:func:`sslscope.data.splits.stratified_split`).
        seed: seed of the stratified split; the same seed and files give the same split.

    Returns:
        ImageData named "imagefolder". Labeled: train_x (N_train, C, H, W) and test_x
        (N_test, C, H, W), C = 1 when every image is grayscale, else 3; class_names the sorted
        sub-folder names. Unlabeled: unlabeled_x (N, C, H, W), train_x and test_x
        (0, C, H, W), no classes, and mean/std taken from the unlabeled images.

    Raises:
        UserError: Pillow missing, no folder or no images, an unreadable image (named),
            sizes that differ with ``size`` None, or a bad ``size`` / ``test_fraction``.
    """
    image_module, image_ops = _pillow()
    if root is None:
        raise UserError("the imagefolder data set needs --data-dir set to the folder of images")
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"image folder {root} does not exist or is not a directory")
    if size is not None and size < 1:
        raise UserError(f"size must be a positive number of pixels, got {size}")
    if not 0 <= test_fraction < 1:
        raise UserError(f"test_fraction must be in [0, 1), got {test_fraction}")
    class_names, files, labels = _scan(root)

    modes, sizes = [], []
    for path in files:  # headers only: Image.open does not decode pixels
        with _open(image_module, path) as im:
            modes.append(im.mode)
            try:  # the EXIF block can be where a truncated file ends
                sizes.append(_upright_size(im))
            except (OSError, ValueError, SyntaxError) as error:
                raise UserError(f"cannot read image {path} ({error})") from None
    mode = "L" if all(m in GRAY_MODES for m in modes) else "RGB"
    if size is None:
        for path, wh in zip(files, sizes, strict=True):
            if wh != sizes[0]:
                raise UserError(
                    f"images differ in size ({files[0]} is {sizes[0][0]}×{sizes[0][1]}, "
                    f"{path} is {wh[0]}×{wh[1]}); pass a size to crop and resize them all"
                )
    width, height = (size, size) if size is not None else sizes[0]
    channels = 1 if mode == "L" else 3
    x = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for i, path in enumerate(files):
        with _open(image_module, path) as im:
            try:
                im = image_ops.exif_transpose(im).convert(mode)
                if size is not None:
                    im = image_ops.fit(im, (size, size), method=image_module.Resampling.BICUBIC)
                pixels = np.asarray(im, dtype=np.uint8)  # (H, W) or (H, W, 3)
            except (OSError, ValueError) as error:  # truncated or corrupt pixel data
                raise UserError(f"cannot read image {path} ({error})") from None
        x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # (C, H, W)

    images = torch.from_numpy(x)
    if not class_names:
        empty_x = images[:0]  # (0, C, H, W)
        empty_y = torch.zeros(0, dtype=torch.int64)
        # ImageData takes its channel statistics from the unlabeled images when train is empty.
        return ImageData("imagefolder", empty_x, empty_y, empty_x, empty_y, [], images)
    y = torch.tensor(labels, dtype=torch.int64)
    # Sorted, so each split keeps the files' order (class by class, names sorted within).
    train_idx, test_idx = (idx.sort().values for idx in stratified_split(y, test_fraction, seed))
    return ImageData(
        name="imagefolder",
        train_x=images[train_idx],
        train_y=y[train_idx],
        test_x=images[test_idx],
        test_y=y[test_idx],
        class_names=class_names,
    )
