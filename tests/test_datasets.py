"""Real-data loaders on tiny files written in the official formats; never touches the network.

Each test writes a few images in the real on-disk layout (CIFAR python pickles with bytes keys,
STL-10 column-major binaries, a folder of PNGs), then loads them through the real code, including
the archive, checksum and extraction path, with urllib's urlopen patched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from sslscope.data import cifar, stl10
from sslscope.data.download import (
    downloads_disabled,
    ensure_files,
    extract,
    fetch_archive,
    md5sum,
)
from sslscope.errors import UserError


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test is offline unless it installs its own urlopen."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _rows(n, seed):
    """n CIFAR rows (3072 uint8, R then G then B planes) with known values."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _tar(archive, src_dir, names):
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            tar.add(src_dir / name, arcname=name)
    return md5sum(archive)


CIFAR10_NAMES = [*cifar.CIFAR10_TRAIN, "test_batch", "batches.meta"]


def write_cifar10(folder, n_per_batch=4):
    """The five train batches, test batch and meta of CIFAR-10, n images each."""
    batches = {}
    for i, name in enumerate([*cifar.CIFAR10_TRAIN, "test_batch"]):
        rows = _rows(n_per_batch, seed=i)
        labels = [(i + j) % 10 for j in range(n_per_batch)]
        _dump(
            folder / name,
            {
                b"batch_label": name.encode(),
                b"labels": labels,
                b"data": rows,
                b"filenames": [b"x.png"] * n_per_batch,
            },
        )
        batches[name] = (rows, labels)
    names = [f"class{c}".encode() for c in range(10)]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": n_per_batch})
    return batches


def test_cifar10_from_archive_with_checksum(tmp_path, monkeypatch):
    src = tmp_path / "src"
    batches = write_cifar10(src / cifar.CIFAR10_DIR)
    root = tmp_path / "data"
    root.mkdir()
    members = [f"{cifar.CIFAR10_DIR}/{n}" for n in CIFAR10_NAMES]
    md5 = _tar(root / cifar.CIFAR10_ARCHIVE, src, members)
    monkeypatch.setattr(cifar, "CIFAR10_MD5", md5)

    data = cifar.load_cifar10(root)
    assert data.name == "cifar10" and data.class_names == [f"class{c}" for c in range(10)]
    assert data.train_x.shape == (20, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (4, 3, 32, 32) and data.train_y.dtype == torch.int64
    rows, labels = batches["data_batch_2"]
    # A row is 1024 red, 1024 green, 1024 blue values, each plane row-major:
    # pixel (c, y, x) = row[c·1024 + 32·y + x].
    assert data.train_x[4 + 1, 2, 5, 7] == rows[1, 2 * 1024 + 5 * 32 + 7]
    assert torch.equal(data.train_x[4:8], torch.from_numpy(rows.reshape(4, 3, 32, 32)))
    assert data.train_y[4:8].tolist() == labels
    assert data.test_y.tolist() == batches["test_batch"][1]
    # Second call: the extracted files are used as they are (no MD5 needed any more).
    monkeypatch.setattr(cifar, "CIFAR10_MD5", "0" * 32)
    assert torch.equal(cifar.load_cifar10(root).test_x, data.test_x)


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / cifar.CIFAR100_DIR
    train_rows, test_rows = _rows(6, seed=10), _rows(3, seed=11)
    fine, coarse = [0, 99, 5, 42, 7, 63], [0, 19, 3, 11, 4, 17]
    _dump(
        folder / "train",
        {
            b"data": train_rows,
            b"fine_labels": fine,
            b"coarse_labels": coarse,
            b"filenames": [b"a.png"] * 6,
            b"batch_label": b"training batch",
        },
    )
    _dump(
        folder / "test",
        {b"data": test_rows, b"fine_labels": [1, 2, 3], b"coarse_labels": [1, 1, 2]},
    )
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [f"f{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"c{i}".encode() for i in range(20)],
        },
    )

    fine_data = cifar.load_cifar100(tmp_path)
    coarse_data = cifar.load_cifar100_coarse(tmp_path)
    assert fine_data.name == "cifar100" and coarse_data.name == "cifar100_coarse"
    assert fine_data.num_classes == 100 and coarse_data.num_classes == 20
    assert fine_data.train_y.tolist() == fine and coarse_data.train_y.tolist() == coarse
    assert coarse_data.test_y.tolist() == [1, 1, 2] and coarse_data.class_names[19] == "c19"
    assert torch.equal(fine_data.train_x, coarse_data.train_x)
    assert torch.equal(fine_data.test_x, torch.from_numpy(test_rows.reshape(3, 3, 32, 32)))
    with pytest.raises(ValueError, match="fine' or 'coarse"):
        cifar.load_cifar100(tmp_path, labels="medium")


def test_offline_error_names_files_and_directory(tmp_path):
    root = tmp_path / "nothing here"
    with pytest.raises(UserError) as info:
        cifar.load_cifar10(root)
    message = str(info.value)
    assert cifar.CIFAR10_URL in message and "network disabled" in message
    assert cifar.CIFAR10_ARCHIVE in message and str(root) in message
    assert all(f"{cifar.CIFAR10_DIR}/{n}" in message for n in CIFAR10_NAMES)
    assert not any(root.glob("*"))  # no temporary file left behind
    with pytest.raises(UserError, match="stl10_binary/unlabeled_X.bin"):
        stl10.load_stl10(root)


def test_existing_corrupt_archive_is_deleted_and_not_extracted(tmp_path):
    archive = tmp_path / cifar.CIFAR10_ARCHIVE
    archive.write_bytes(b"not the real archive")
    with pytest.raises(UserError) as info:
        cifar.load_cifar10(tmp_path)
    message = str(info.value)
    assert cifar.CIFAR10_MD5 in message and "deleted" in message
    assert hashlib.md5(b"not the real archive").hexdigest() in message
    assert not archive.exists() and not (tmp_path / cifar.CIFAR10_DIR).exists()


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_checks_md5_before_keeping_the_file(tmp_path, monkeypatch):
    payload = b"archive bytes" * 1000
    served = []

    def serve(url, timeout=None):
        served.append(url)
        return _FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    with pytest.raises(UserError) as info:
        fetch_archive("https://example.org/a.tar.gz", tmp_path, filename="a.tar.gz", md5="0" * 32)
    assert "a.tar.gz" in str(info.value) and "0" * 32 in str(info.value)
    good = hashlib.md5(payload).hexdigest()
    assert good in str(info.value)
    assert not any(tmp_path.iterdir())  # the bad download is gone, temporary file included
    path = fetch_archive("https://example.org/a.tar.gz", tmp_path, filename="a.tar.gz", md5=good)
    assert path.read_bytes() == payload and served == ["https://example.org/a.tar.gz"] * 2


def test_ensure_files_downloads_then_extracts(tmp_path, monkeypatch):
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "a.bin").write_bytes(b"\x01\x02")
    md5 = _tar(tmp_path / "served.tar.gz", src, ["set/a.bin"])
    payload = (tmp_path / "served.tar.gz").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _FakeResponse(payload))
    root = tmp_path / "data"
    url = "https://example.org/s.tgz"
    ensure_files(root, ["set/a.bin"], url=url, archive_name="s.tgz", md5=md5)
    assert (root / "set" / "a.bin").read_bytes() == b"\x01\x02"
    assert sorted(p.name for p in root.iterdir()) == ["s.tgz", "set"]  # no temporary folders


def test_downloads_disabled_uses_disk_but_never_fetches(tmp_path, monkeypatch):
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "a.bin").write_bytes(b"\x03")
    md5 = _tar(tmp_path / "s.tgz", src, ["set/a.bin"])
    fetched = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: fetched.append(url))
    root = tmp_path / "data"
    with downloads_disabled(), pytest.raises(UserError, match="nothing is downloaded here"):
        ensure_files(root, ["set/a.bin"], url="https://example.org/s.tgz", archive_name="s.tgz",
                     md5=md5)
    assert fetched == [] and not root.exists()
    root.mkdir()
    shutil.copy(tmp_path / "s.tgz", root / "s.tgz")  # an archive on disk is still extracted
    with downloads_disabled():
        ensure_files(root, ["set/a.bin"], url="https://example.org/s.tgz", archive_name="s.tgz",
                     md5=md5)
    assert (root / "set" / "a.bin").read_bytes() == b"\x03" and fetched == []


def test_report_never_downloads(tmp_path, monkeypatch):
    from sslscope.report.record import RunRecord

    fetched = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: fetched.append(url))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"dataset": "cifar10",
                                                 "data_dir": str(tmp_path / "d")}))
    record = RunRecord.load(run)
    with pytest.raises(UserError, match="nothing is downloaded here"):
        record.dataset()
    assert fetched == []


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / cifar.CIFAR10_DIR / "data_batch_1"
    _dump(path, {b"data": Evil()})
    with pytest.raises(UserError, match="contains code.*refusing to load"):
        cifar.read_pickle(path)


def test_extract_refuses_unsafe_members(tmp_path):
    for bad in ["../escape.txt", "/abs/escape.txt", "ok/../../escape.txt"]:
        archive = tmp_path / "bad.tar"
        with tarfile.open(archive, "w") as tar:
            info = tarfile.TarInfo(bad)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
        dest = tmp_path / "dest"
        with pytest.raises(UserError, match="unsafe path"):
            extract(archive, dest)
        assert not (tmp_path / "escape.txt").exists() and not any(dest.rglob("*"))
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UserError, match="link"):
        extract(archive, dest)


def _stl_bytes(images_hwc):
    """Encode (N, 96, 96, 3) images the STL-10 way: channel by channel, column-major."""
    return np.ascontiguousarray(images_hwc.transpose(0, 3, 2, 1)).tobytes()  # (N, C, W, H)


def test_stl10_binary_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(stl10, "CHUNK_IMAGES", 3)  # 4 unlabeled images: two chunks
    folder = tmp_path / stl10.STL10_DIR
    folder.mkdir()
    rng = np.random.default_rng(0)
    train, test, unlabeled = (
        rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8) for n in (3, 2, 4)
    )
    (folder / "train_X.bin").write_bytes(_stl_bytes(train))
    (folder / "test_X.bin").write_bytes(_stl_bytes(test))
    (folder / "unlabeled_X.bin").write_bytes(_stl_bytes(unlabeled))
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 4]))
    (folder / "test_y.bin").write_bytes(bytes([2, 3]))
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")

    data = stl10.load_stl10(tmp_path)
    assert data.class_names == names and data.train_y.tolist() == [0, 9, 3]
    assert data.test_y.tolist() == [1, 2] and data.unlabeled_x.shape == (4, 3, 96, 96)
    # image[c, y, x] is pixel (row y, column x) of channel c: the file's transpose is undone.
    assert data.train_x[1, 2, 10, 70] == train[1, 10, 70, 2]
    assert torch.equal(data.train_x, torch.from_numpy(train.transpose(0, 3, 1, 2)))
    assert torch.equal(data.unlabeled_x, torch.from_numpy(unlabeled.transpose(0, 3, 1, 2)))
    assert data.test_x[1, 0, 5, 90] == test[1, 5, 90, 0]
    # Training images are train then unlabeled, as a view of one buffer: no 2.9 GB copy.
    ssl = data.ssl_images()
    assert ssl.data_ptr() == data.train_x.data_ptr() and ssl.shape == (7, 3, 96, 96)
    assert torch.equal(ssl, torch.cat([data.train_x, data.unlabeled_x]))
    # The first bytes of the file are red's first column (y = 0, 1, 2, … at x = 0).
    raw = (folder / "train_X.bin").read_bytes()
    assert list(raw[:3]) == data.train_x[0, 0, :3, 0].tolist()

    (folder / "test_X.bin").write_bytes(_stl_bytes(test)[:-5])
    with pytest.raises(UserError, match="test_X.bin.*truncated"):
        stl10.load_stl10(tmp_path)


def test_image_folder_labeled_and_unlabeled(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    rng = np.random.default_rng(0)
    pixels = {}
    for cls in ("cat", "dog"):
        (tmp_path / "labeled" / cls).mkdir(parents=True)
        for i in range(5):
            arr = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # H=6, W=8
            image_module.fromarray(arr).save(tmp_path / "labeled" / cls / f"{i}.png")
            pixels[(cls, i)] = arr
    from sslscope.data.folder import load_image_folder

    data = load_image_folder(tmp_path / "labeled", test_fraction=0.4, seed=1)
    assert data.class_names == ["cat", "dog"] and data.train_x.shape == (6, 3, 6, 8)
    assert torch.bincount(data.test_y).tolist() == [2, 2]  # stratified: 0.4 · 5 per class
    every = {
        tuple(x.flatten().tolist()): y
        for x, y in zip(data.train_x, data.train_y.tolist(), strict=True)
    }
    every |= {
        tuple(x.flatten().tolist()): y
        for x, y in zip(data.test_x, data.test_y.tolist(), strict=True)
    }
    for (cls, _), arr in pixels.items():  # exact pixels, each under its folder's label
        assert every[tuple(arr.transpose(2, 0, 1).flatten().tolist())] == ["cat", "dog"].index(cls)
    again = load_image_folder(tmp_path / "labeled", test_fraction=0.4, seed=1)
    assert torch.equal(again.test_x, data.test_x)
    # The project's split rounds halves up: 0.5 · 5 sends 3 of each class to test. Each split
    # keeps the files' order, so the labels come class by class.
    half = load_image_folder(tmp_path / "labeled", test_fraction=0.5, seed=1)
    assert half.test_y.tolist() == [0, 0, 0, 1, 1, 1] and half.train_y.tolist() == [0, 0, 1, 1]
    with pytest.raises(UserError, match="needs --data-dir set"):
        load_image_folder(None)
    assert load_image_folder(tmp_path / "labeled", size=4).train_x.shape[1:] == (3, 4, 4)

    (tmp_path / "loose").mkdir()
    for i in range(3):
        gray = np.full((5, 5), 40 * i, dtype=np.uint8)
        image_module.fromarray(gray).save(tmp_path / "loose" / f"{i}.png")
    loose = load_image_folder(tmp_path / "loose")
    assert loose.unlabeled_x.shape == (3, 1, 5, 5) and loose.num_classes == 0
    assert loose.train_x.shape == (0, 1, 5, 5) and loose.unlabeled_x[2, 0, 4, 4] == 80
    assert loose.mean == pytest.approx((40 / 255,)) and np.isfinite(loose.std).all()
    assert torch.equal(loose.ssl_images(), loose.unlabeled_x)

    (tmp_path / "loose" / "3.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*3.png"):
        load_image_folder(tmp_path / "loose")
    image_module.fromarray(np.zeros((7, 5), np.uint8)).save(tmp_path / "loose" / "3.png")
    with pytest.raises(UserError, match="differ in size"):
        load_image_folder(tmp_path / "loose")


def test_image_folder_without_pillow(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    from sslscope.data.folder import load_image_folder

    with pytest.raises(UserError, match="needs Pillow"):
        load_image_folder(tmp_path)


def test_published_checksums():
    # Verified against torchvision/datasets/cifar.py and stl10.py (see the module docstrings).
    assert (cifar.CIFAR10_MD5, cifar.CIFAR100_MD5, stl10.STL10_MD5) == (
        "c58f30108f718f92721af3b95e74349a",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "91f7769df0f17e558f3565bffb0c7dfb",
    )


def _python2_pickle(rows, labels):
    """Pickle bytes as Python 2's cPickle (protocol 2) wrote the official CIFAR files.

    Strings are SHORT_BINSTRING/BINSTRING opcodes ('U', 'T'), which Python 3 reads as bytes
    under encoding="bytes"; the array names numpy.core.multiarray._reconstruct, as numpy 1.x did.
    """
    n = rows.shape[0]
    data = rows.tobytes()
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R("
        + b"K\x01K"
        + bytes([n])
        + b"M\x00\x0c\x86"  # version 1, shape (n, 3072)
        + b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"  # dtype('u1'), then its state:
        + b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89T"
        + len(data).to_bytes(4, "little")
        + data
        + b"tb"
    )
    label_ops = b"".join(b"K" + bytes([y]) for y in labels)
    return b"\x80\x02}(U\x04data" + array + b"U\x06labels](" + label_ops + b"eu."


def test_reads_python2_pickles_as_published(tmp_path):
    rows = _rows(3, seed=5)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_python2_pickle(rows, [3, 0, 9]))
    entry = cifar.read_pickle(path)
    assert np.array_equal(entry["data"], rows) and entry["labels"] == [3, 0, 9]


def test_ssl_images_is_a_view_only_for_adjacent_rows():
    from sslscope.data.images import ImageData

    buffer = torch.arange(6 * 3 * 2 * 2, dtype=torch.int64).remainder(256).to(torch.uint8)
    buffer = buffer.reshape(6, 3, 2, 2)
    test = buffer[:1].clone()
    cases = {  # (train, unlabeled) → is the result a view of the buffer?
        "adjacent": (buffer[:2], buffer[2:], True),
        "gap": (buffer[:2], buffer[3:], False),
        "reversed": (buffer[2:], buffer[:2], False),
        "separate": (buffer[:2].clone(), buffer[2:].clone(), False),
    }
    for name, (train, unlabeled, view) in cases.items():
        data = ImageData("t", train, torch.zeros(len(train), dtype=torch.int64), test,
                         torch.zeros(1, dtype=torch.int64), ["a"], unlabeled_x=unlabeled)
        ssl = data.ssl_images()
        assert torch.equal(ssl, torch.cat([train, unlabeled])), name
        assert (ssl.data_ptr() == buffer.data_ptr()) == view, name
