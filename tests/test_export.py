"""Export: the loaded encoder computes exactly what the trained one does, with no pickle."""

import json

import pytest
import torch

from sslscope import config as config_lib
from sslscope.checkpoint import save_checkpoint
from sslscope.cli import main
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.export import load_encoder
from sslscope.files import atomic_write_json
from sslscope.losses import METHODS
from sslscope.operations import load_trained_parts
from sslscope.parts import build_parts
from sslscope.runs import RunFiles
from sslscope.train import train
from tests.conftest import tiny_config

# Every method: each architecture (SimSiam's BatchNorm-ended projector, one encoder per
# modality, K views) must come back from its export. Two methods go through real training; the
# others get a finished run directory written directly, with every weight and BatchNorm
# statistic randomised, which checks the same builder, checkpoint and export path in a second.
VIEWS = {"mmcr": 4, "mmcr_momentum": 3, "nt_xent": 3}
TRAINED = ("vicreg", "clip")


def finished_run_without_training(cfg, run_dir):
    """A run directory as training leaves it, with random weights in place of trained ones."""
    parts = build_parts(cfg, load_dataset("digits"), torch.device("cpu"))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, tensor in parts.modules.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5 if "running_var" in name
                             else torch.randn(tensor.shape, generator=g))
    files = RunFiles(run_dir)
    atomic_write_json(files.config, config_lib.to_dict(cfg))
    optimizer = torch.optim.SGD(parts.trained.parameters(), lr=0.1)
    save_checkpoint(files.checkpoint, {"parts": parts.modules}, optimizer,
                    {"step": cfg.steps, "elapsed": 0.0})


@pytest.mark.parametrize("method", list(METHODS))
def test_exported_encoder_matches_the_trained_one(tmp_path, capsys, method):
    run_dir = tmp_path / method
    cfg = tiny_config(method=method, steps=2, warmup_steps=1, n_views=VIEWS.get(method, 2))
    if method in TRAINED:
        train(cfg, run_dir, progress=False)
    else:
        finished_run_without_training(cfg, run_dir)
    assert main(["export", str(run_dir)]) == 0
    assert "load_encoder" in capsys.readouterr().out
    description = json.loads((run_dir / "export" / "encoder.json").read_text())
    assert description["backbone"] == "small_cnn" and description["input_shape"] == [1, 8, 8]

    encoder = load_encoder(run_dir / "export")
    data = load_dataset("digits")
    trained = load_trained_parts(RunFiles(run_dir), cfg, data, torch.device("cpu")).encoder.eval()
    fresh = build_parts(cfg, data, torch.device("cpu")).encoder.eval()
    x = data.test_x[:16].float() / 255
    with torch.no_grad():
        for a, b, c in zip(encoder(x), trained(x), fresh(x), strict=True):
            assert torch.equal(a, b) and not torch.equal(a, c)  # the saved weights, not new ones


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
