"""Export: the loaded encoder computes exactly what the trained one does, with no pickle."""

import json

import pytest
import torch

from sslscope.cli import main
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.export import load_encoder
from sslscope.losses import METHODS
from sslscope.operations import load_trained_parts
from sslscope.runs import RunFiles
from sslscope.train import train
from tests.conftest import tiny_config

# Every method: each architecture (SimSiam's BatchNorm-ended projector, one encoder per
# modality, K views) must come back from its export. Two steps are enough for weights that
# differ from the initialisation.
VIEWS = {"mmcr": 4, "mmcr_momentum": 3, "nt_xent": 3}


@pytest.mark.parametrize("method", list(METHODS))
def test_exported_encoder_matches_the_trained_one(tmp_path, capsys, method):
    run_dir = tmp_path / method
    cfg = tiny_config(method=method, steps=2, warmup_steps=1, n_views=VIEWS.get(method, 2))
    train(cfg, run_dir, progress=False)
    assert main(["export", str(run_dir)]) == 0
    assert "load_encoder" in capsys.readouterr().out
    description = json.loads((run_dir / "export" / "encoder.json").read_text())
    assert description["backbone"] == "small_cnn" and description["input_shape"] == [1, 8, 8]

    encoder = load_encoder(run_dir / "export")
    data = load_dataset("digits")
    trained = load_trained_parts(RunFiles(run_dir), cfg, data, torch.device("cpu")).encoder.eval()
    x = data.test_x[:16].float() / 255
    with torch.no_grad():
        for a, b in zip(encoder(x), trained(x), strict=True):
            assert torch.equal(a, b)


def test_load_encoder_from_a_wrong_directory(tmp_path):
    with pytest.raises(UserError, match="run sslscope export"):
        load_encoder(tmp_path)


def test_a_damaged_export_is_one_sentence(tmp_path, finished_run):
    assert main(["export", str(finished_run)]) == 0
    export = finished_run / "export"
    description = json.loads((export / "encoder.json").read_text())
    (tmp_path / "encoder.safetensors").write_bytes((export / "encoder.safetensors").read_bytes())
    for text, message in [("{not json", "not valid JSON"), ("[1]", "JSON object"),
                          (json.dumps({**description, "method": None}), "'method'"),
                          (json.dumps({**description, "projector_dims": [8]}),
                           "does not match the architecture")]:
        (tmp_path / "encoder.json").write_text(text)
        with pytest.raises(UserError, match=message):
            load_encoder(tmp_path)
