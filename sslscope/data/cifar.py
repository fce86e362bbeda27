"""CIFAR-10 and CIFAR-100 from the official "python version" archives.

Format (Krizhevsky 2009, and https://www.cs.toronto.edu/~kriz/cifar.html): each file is a
pickled dict. ``data`` is a uint8 array of shape (N, 3072) whose rows hold the 1024 red,
then 1024 green, then 1024 blue values of a 32×32 image in row-major order, i.e. CHW order:
``row.reshape(3, 32, 32)`` is the image. CIFAR-10 has five training batches of 10,000 images
(``data_batch_1..5``), ``test_batch`` (10,000) and ``batches.meta`` (``label_names``), with
labels under ``labels``. CIFAR-100 has ``train`` (50,000), ``test`` (10,000) and ``meta``,
each image carrying a fine label (100 classes, ``fine_labels`` / ``fine_label_names``) and a
coarse one (20 superclasses, ``coarse_labels`` / ``coarse_label_names``).

The archives were written by Python 2, so the pickles are read with ``encoding="bytes"``
(keys arrive as bytes), through an unpickler that only admits numpy's array-reconstruction
functions: a file that asks for anything else is refused, never run.

References:
    Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report,
    University of Toronto, 2009.
    Archive URLs and MD5s as in torchvision: pytorch/vision@00ce2d0,
    torchvision/datasets/cifar.py, CIFAR10.tgz_md5 and CIFAR100.tgz_md5.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslscope.data.download import DEFAULT_DATA_DIR, ensure_files
from sslscope.data.images import ImageData
from sslscope.errors import UserError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_DIR = "cifar-100-python"

# The only globals a CIFAR pickle may name. The official files (Python 2, protocol 2) use
# numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype; the same dicts written
# by numpy 2 name numpy._core.*, Python 3 at protocol 2 adds _codecs.encode for bytes, and
# protocol 5 uses numpy's _frombuffer. Each maps to the object numpy itself uses to pickle,
# found without importing the deprecated numpy.core module.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_FROMBUFFER = np.ndarray.__reduce_ex__(np.zeros(1), 5)[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise _Forbidden(f"{module}.{name}")


class _Forbidden(Exception):
    pass


def read_pickle(path: str | Path) -> dict[str, Any]:
    """Read one CIFAR pickle safely; bytes keys (Python 2 files) are decoded to str.

    Args:
        path: a CIFAR batch or meta file.

    Returns:
        The file's dict with str keys; values as stored (numpy arrays, lists, bytes).

    Raises:
        UserError: the file names any global other than numpy's array reconstruction ("contains
            code, refusing to load"), is truncated, or is not a pickled dict.
    """
    try:
        with open(path, "rb") as f:
            obj = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except _Forbidden as error:
        raise UserError(
            f"{path} is not a plain CIFAR pickle: it contains code ({error}), refusing to load"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise UserError(f"{path} is not a readable CIFAR pickle ({error}); delete it") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a CIFAR pickle (holds {type(obj).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _field(entry: dict[str, Any], key: str, path: Path) -> Any:
    if key not in entry:
        raise UserError(f"{path} has no '{key}' entry; is it a CIFAR file?")
    return entry[key]


def _images_and_labels(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    entry = read_pickle(path)
    data = np.asarray(_field(entry, "data", path))
    labels = np.asarray(_field(entry, label_key, path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise UserError(f"{path}: {labels.size} labels for {data.shape[0]} images")
    if not data.flags.writeable:  # protocol-5 pickles give read-only views of their buffer
        data = data.copy()
    return data.reshape(-1, 3, 32, 32), labels  # rows are R, G, B planes: CHW already


def _names(path: Path, key: str) -> list[str]:
    names = _field(read_pickle(path), key, path)
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _image_data(
    name: str,
    train: list[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    class_names: list[str],
    files: list[Path],
) -> ImageData:
    train_x = np.concatenate([x for x, _ in train])  # (N, 3, 32, 32)
    train_y = np.concatenate([y for _, y in train])
    for path, y in zip(files, [y for _, y in train] + [test[1]], strict=True):
        if y.size and (y.min() < 0 or y.max() >= len(class_names)):
            raise UserError(f"{path} has labels outside 0..{len(class_names) - 1}")
    return ImageData(
        name=name,
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(test[0]),
        test_y=torch.from_numpy(test[1]),
        class_names=class_names,
    )


def load_cifar10(root: str | Path | None = None) -> ImageData:
    """CIFAR-10: 50,000 train and 10,000 test 32×32 colour images in 10 classes.

    Reads ``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``; when they
    are missing, extracts ``root/cifar-10-python.tar.gz`` or downloads it (MD5-checked).

    Args:
        root: the data directory; ``DEFAULT_DATA_DIR`` (sslscope.data.download) when None.

    Returns:
        ImageData with train_x (50000, 3, 32, 32) and test_x (10000, 3, 32, 32), uint8, and
        the official split (the test batch is the test set).

    Raises:
        UserError: offline without the files, a bad checksum, or a malformed file.
    """
    root = Path(DEFAULT_DATA_DIR if root is None else root)
    names = [*CIFAR10_TRAIN, "test_batch", "batches.meta"]
    ensure_files(
        root,
        [f"{CIFAR10_DIR}/{n}" for n in names],
        url=CIFAR10_URL,
        archive_name=CIFAR10_ARCHIVE,
        md5=CIFAR10_MD5,
    )
    folder = root / CIFAR10_DIR
    train_files = [folder / n for n in CIFAR10_TRAIN]
    train = [_images_and_labels(p, "labels") for p in train_files]
    test = _images_and_labels(folder / "test_batch", "labels")
    class_names = _names(folder / "batches.meta", "label_names")
    return _image_data("cifar10", train, test, class_names, [*train_files, folder / "test_batch"])


def load_cifar100(root: str | Path | None = None, *, labels: str = "fine") -> ImageData:
    """CIFAR-100: 50,000 train and 10,000 test 32×32 colour images, 100 fine or 20 coarse labels.

    Reads ``root/cifar-100-python/{train, test, meta}``; when they are missing, extracts
    ``root/cifar-100-python.tar.gz`` or downloads it (MD5-checked).

    Args:
        root: the data directory; ``DEFAULT_DATA_DIR`` (sslscope.data.download) when None.
        labels: "fine" (100 classes) or "coarse" (the 20 superclasses, e.g. "aquatic_mammals");
            the images are the same either way.

    Returns:
        ImageData with train_x (50000, 3, 32, 32) and test_x (10000, 3, 32, 32), uint8; named
        "cifar100" (fine) or "cifar100_coarse".

    Raises:
        ValueError: ``labels`` is neither "fine" nor "coarse".
        UserError: offline without the files, a bad checksum, or a malformed file.
    """
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    root = Path(DEFAULT_DATA_DIR if root is None else root)
    ensure_files(
        root,
        [f"{CIFAR100_DIR}/{n}" for n in ("train", "test", "meta")],
        url=CIFAR100_URL,
        archive_name=CIFAR100_ARCHIVE,
        md5=CIFAR100_MD5,
    )
    folder = root / CIFAR100_DIR
    train = _images_and_labels(folder / "train", f"{labels}_labels")
    test = _images_and_labels(folder / "test", f"{labels}_labels")
    class_names = _names(folder / "meta", f"{labels}_label_names")
    name = "cifar100" if labels == "fine" else "cifar100_coarse"
    return _image_data(name, [train], test, class_names, [folder / "train", folder / "test"])


def load_cifar100_coarse(root: str | Path | None = None) -> ImageData:
    """CIFAR-100 with its 20 coarse (superclass) labels; see :func:`load_cifar100`."""
    return load_cifar100(root, labels="coarse")
