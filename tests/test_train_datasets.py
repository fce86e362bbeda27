"""Training end to end on the real loaders' formats: an image folder, labeled and unlabeled."""

import json

import pytest
import torch

from sslscope.cli import main
from sslscope.config import replace, to_dict
from sslscope.report import build_report
from sslscope.runs import RunFiles
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
    assert build_report(files.root).is_file()


def test_train_on_an_unlabeled_image_folder_from_the_command_line(tmp_path, capsys):
    write_folder(tmp_path / "images", labeled=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(to_dict(folder_config(tmp_path / "images"))))
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--run-dir", str(run_dir),
                 "--no-progress"]) == 0
    assert f"report: {run_dir / 'report.html'}" in capsys.readouterr().out
    files = RunFiles(run_dir)
    assert not files.evaluation.exists()  # no labels: nothing to probe
    assert files.checkpoint.is_file() and files.report.is_file()
    info = json.loads(files.run_info.read_text())
    assert info["status"] == "finished"
