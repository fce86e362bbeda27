"""Training end to end on the real loaders' formats: an image folder, labeled and unlabeled."""

import json

import pytest
import torch

from sslscope.config import replace
from sslscope.train import train
from tests.conftest import tiny_config

Image = pytest.importorskip("PIL.Image")


def write_folder(root, labeled=True, per_class=12):
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["cats", "dogs"]):
        folder = root / name if labeled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (16, 16, 3), generator=g, dtype=torch.uint8)
            pixels[..., c] = 255  # a class signal in one colour channel
            Image.fromarray(pixels.numpy()).save(folder / f"{name}_{i}.png")


def folder_config(root):
    return replace(tiny_config(), dataset="imagefolder", data_dir=str(root), augment="simclr",
                   batch_size=8, projector_dims=(16, 8), steps=4, checkpoint_every=2)


def test_train_on_a_labeled_image_folder(tmp_path):
    write_folder(tmp_path / "images")
    files = train(folder_config(tmp_path / "images"), tmp_path / "run", progress=False)
    table = json.loads(files.evaluation.read_text())
    assert {r["name"] for r in table["rows"]} >= {"raw pixels", "trained, backbone h"}
    assert files.report.is_file()


def test_train_on_an_unlabeled_image_folder(tmp_path):
    write_folder(tmp_path / "images", labeled=False)
    files = train(folder_config(tmp_path / "images"), tmp_path / "run", progress=False)
    assert not files.evaluation.exists()  # no labels: nothing to probe
    assert files.checkpoint.is_file() and files.report.is_file()
    info = json.loads(files.run_info.read_text())
    assert info["status"] == "finished"
