"""scikit-learn's bundled handwritten digits: 1,797 real 8×8 grayscale images, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits as _sklearn_digits
from sklearn.model_selection import train_test_split

from sslscope.data.images import ImageData

TEST_FRACTION = 0.25
SPLIT_SEED = 0


def load_digits(root: str | Path | None = None) -> ImageData:
    """The UCI optical-digits test set as scikit-learn ships it, with a fixed stratified split.

    Pixels are integers 0..16 (counts of set pixels in 4×4 blocks of a 32×32 bitmap); they are
    mapped to uint8 by round(v · 255 / 16), which keeps the 17 levels distinct and is undone
    by round(u · 16 / 255). The split is scikit-learn's ``train_test_split``, stratified, 25 %
    test, ``random_state=0``: 1,347 train and 450 test images, always the same, so numbers are
    comparable across runs and machines.

    This is deliberately not the project's own split
    (:func:`sslscope.data.splits.stratified_split`, used by the probe and the image folder):
    this fixed split defines the bundled data set, and every published digits number depends
    on exactly these 1,347/450 images, so it stays scikit-learn's.

    Args:
        root: ignored (the data ships with scikit-learn); present so every loader has the same
            signature.

    Returns:
        ImageData with train_x (1347, 1, 8, 8) and test_x (450, 1, 8, 8).

    References:
        Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI ML Repository, 1998.
    """
    bunch = _sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return ImageData(
        name="digits",
        train_x=torch.from_numpy(x_tr),
        train_y=torch.from_numpy(y_tr),
        test_x=torch.from_numpy(x_te),
        test_y=torch.from_numpy(y_te),
        class_names=[str(d) for d in range(10)],
    )
