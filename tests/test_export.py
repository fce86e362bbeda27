"""Export: the loaded encoder computes exactly what the trained one does, with no pickle."""

import json

import pytest
import torch

from sslscope.cli import main
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.export import load_encoder
from sslscope.runs import RunFiles
from sslscope.train import load_trained_encoder, train
from tests.conftest import tiny_config


@pytest.mark.parametrize("method", ["vicreg", "clip"])
def test_exported_encoder_matches_the_trained_one(tmp_path, capsys, method):
    run_dir = tmp_path / method
    cfg = tiny_config(method=method)
    train(cfg, run_dir, progress=False)
    assert main(["export", str(run_dir)]) == 0
    assert "load_encoder" in capsys.readouterr().out
    description = json.loads((run_dir / "export" / "encoder.json").read_text())
    assert description["backbone"] == "small_cnn" and description["input_shape"] == [1, 8, 8]

    encoder = load_encoder(run_dir / "export")
    data = load_dataset("digits")
    trained = load_trained_encoder(RunFiles(run_dir), cfg, data, torch.device("cpu")).eval()
    x = data.test_x[:16].float() / 255
    with torch.no_grad():
        for a, b in zip(encoder(x), trained(x), strict=True):
            assert torch.equal(a, b)


def test_load_encoder_from_a_wrong_directory(tmp_path):
    with pytest.raises(UserError, match="run sslscope export"):
        load_encoder(tmp_path)
