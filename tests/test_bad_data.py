"""Damaged data handed to `sslscope train`: one sentence naming the file, exit 2, nothing written.

The loaders' own tests (test_datasets.py) check each reader; these go through the command line,
as a user meets them, over a table of the damage real folders and downloads carry: text saved
as .png, a truncated PNG or JPEG, a zero-byte file, images of mixed sizes, images beside class
folders, an empty folder, truncated and foreign CIFAR pickles, a truncated STL-10 binary.
"""

import pickle
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sslscope.cli import main
from sslscope.data import cifar, stl10
from tests.test_datasets import _stl_bytes, write_cifar10

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
TINY = ["--preset", "smoke", "--backbone", "linear:8", "--steps", "2", "--warmup-steps", "0",
        "--device", "cpu", "--no-progress"]


def _png(path, size=(8, 8), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _good_folder(root):
    for cls in ("cat", "dog"):
        for i in range(4):
            _png(root / cls / f"{i}.png", seed=i)


def text_as_png(root):
    _good_folder(root)
    (root / "cat" / "4.png").write_text("this is not an image")
    return "cannot read image .*4.png"


def truncated_png(root):
    _good_folder(root)
    data = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "0.png").write_bytes(data[: len(data) // 2])
    return "cannot read image .*0.png"


def truncated_jpeg(root):
    _good_folder(root)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(root / "cat" / "9.jpg", quality=90)
    data = (root / "cat" / "9.jpg").read_bytes()
    (root / "cat" / "9.jpg").write_bytes(data[:-60])
    return "cannot read image .*9.jpg"


def zero_bytes(root):
    _good_folder(root)
    (root / "dog" / "empty.jpg").write_bytes(b"")
    return "cannot read image .*empty.jpg"


def mixed_sizes(root):
    _good_folder(root)
    _png(root / "dog" / "wide.png", size=(12, 8))
    return "images differ in size .*wide.png is 12×8.*pass a size"


def images_beside_folders(root):
    _good_folder(root)
    _png(root / "stray.png")
    return "holds both images and class sub-folders"


def empty_folder(root):
    root.mkdir()
    (root / "notes.txt").write_text("no images here")
    return "no images"


def truncated_cifar(root):
    folder = root / cifar.CIFAR10_DIR
    write_cifar10(folder)
    data = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(data[: len(data) // 3])
    return "data_batch_3 is not a readable CIFAR pickle"


def foreign_cifar(root):
    folder = root / cifar.CIFAR10_DIR
    write_cifar10(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 10), np.float32), b"labels": [0] * 4}, f)
    return "test_batch: 'data' is float32 \\(4, 10\\), expected uint8"


def truncated_stl(root):
    folder = root / stl10.STL10_DIR
    folder.mkdir(parents=True)
    images = np.zeros((3, 96, 96, 3), np.uint8)
    for name in ("train_X.bin", "test_X.bin", "unlabeled_X.bin"):
        (folder / name).write_bytes(_stl_bytes(images))
    (folder / "train_X.bin").write_bytes(_stl_bytes(images)[:-7])
    (folder / "train_y.bin").write_bytes(bytes([1, 2, 3]))
    (folder / "test_y.bin").write_bytes(bytes([1, 2, 3]))
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    return "train_X.bin.*truncated"


CASES = {
    "imagefolder": [text_as_png, truncated_png, truncated_jpeg, zero_bytes, mixed_sizes,
                    images_beside_folders, empty_folder],
    "cifar10": [truncated_cifar, foreign_cifar],
    "stl10": [truncated_stl],
}


@pytest.mark.parametrize("dataset, damage", [(d, f) for d, fs in CASES.items() for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_damaged_data_is_one_sentence_and_nothing_is_written(dataset, damage, tmp_path, capsys,
                                                             monkeypatch):
    def offline(url, *args, **kwargs):  # the damaged files are all there is
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data = tmp_path / "data"
    sentence = damage(data)
    run = tmp_path / "run"
    code = main(["train", *TINY, "--dataset", dataset, "--data-dir", str(data),
                 "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sslscope: error: "), err
    assert re.search(sentence, lines[0]), lines[0]
    assert not run.exists()


@pytest.fixture(scope="module")
def encoded_images(tmp_path_factory):
    """One 16×16 image in each format the folder reader takes, as bytes."""
    folder = tmp_path_factory.mktemp("formats")
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    encoded = {}
    for suffix in ("png", "jpg", "bmp", "webp"):
        Image.fromarray(pixels).save(folder / f"x.{suffix}")
        encoded[suffix] = (folder / f"x.{suffix}").read_bytes()
    return encoded


# A flipped byte in a header can claim a huge image: Pillow warns (a decompression bomb) and the
# decode then fails on the missing pixels, which is the case under test.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(["png", "jpg", "bmp", "webp"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12))
def test_any_damage_to_an_image_loads_or_names_the_file(encoded_images, tmp_path_factory,
                                                        suffix, cut, flips):
    """Truncated anywhere, bytes overwritten anywhere: the folder loads (the damage hit pixels
    only) or the error is one UserError naming the file, never an exception from Pillow."""
    from sslscope.data.folder import load_image_folder
    from sslscope.errors import UserError

    data = bytearray(encoded_images[suffix])
    data = data[: max(1, round(cut * len(data)))] if cut < 1 else data
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    folder = tmp_path_factory.mktemp("damaged")
    (folder / f"x.{suffix}").write_bytes(bytes(data))
    try:
        loaded = load_image_folder(folder)
    except UserError as error:
        assert f"x.{suffix}" in str(error)
    else:
        assert loaded.unlabeled_x.shape == (1, 3, 16, 16)
