"""Schedules, checkpoints, the digits data, the small backbones, atomic files."""

import math
import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits

from sslscope.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.files import atomic_write_text, read_jsonl
from sslscope.models import BACKBONES, MLP, build_backbone, build_encoder, check_backbone
from sslscope.models.resnet import ResLH
from sslscope.schedules import log_spaced_steps, warmup_cosine


def test_warmup_cosine_hand_values():
    lr = warmup_cosine(1.0, 12, warmup_steps=2, final_fraction=0.1)
    assert lr.shape == (12,)
    assert lr[0] == pytest.approx(0.5) and lr[1] == pytest.approx(1.0)
    assert lr[2] == pytest.approx(1.0) and lr[-1] == pytest.approx(0.1)
    # halfway through the decay (t − W = 4.5 of 9): f + (1 − f)·½(1 + cos(π/2))
    midpoint = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 9))
    assert lr[6] == pytest.approx(midpoint)
    assert np.all(np.diff(lr[2:]) <= 0) and lr.min() > 0
    assert warmup_cosine(2.0, 1).tolist() == [2.0]


def test_log_spaced_steps():
    steps = log_spaced_steps(1000, 10)
    assert steps[0] == 0 and steps[-1] == 1000 and steps == sorted(set(steps))
    assert 8 <= len(steps) <= 11
    gaps = np.diff(steps)
    assert gaps[0] < gaps[-1]  # denser early
    assert log_spaced_steps(5, 0) == [5]


def test_digits_split_is_fixed_stratified_and_exact():
    data = load_dataset("digits")
    assert data.train_x.shape == (1347, 1, 8, 8) and data.test_x.shape == (450, 1, 8, 8)
    assert data.train_x.dtype == torch.uint8
    test_counts = torch.bincount(data.test_y, minlength=10)
    all_counts = test_counts + torch.bincount(data.train_y, minlength=10)
    assert ((test_counts - 0.25 * all_counts).abs() <= 1).all()  # stratified: 25 % of each class
    # uint8 storage is an exact, invertible map of the 0..16 pixel counts
    stored = torch.cat([data.train_x, data.test_x])
    assert len(stored.unique()) == 17  # the 17 levels 0..16 stay distinct
    recovered = (stored.double() * 16 / 255).round()  # round(v·255/16) inverts by rounding
    assert recovered.sum().item() == sklearn_digits().images.sum()
    assert np.array_equal(np.sort(recovered.flatten().numpy()),
                          np.sort(sklearn_digits().images.flatten()))
    again = load_dataset("digits")
    assert torch.equal(again.train_x, data.train_x) and torch.equal(again.test_y, data.test_y)
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("mnist-but-offline")


@pytest.mark.parametrize("name", ["mlp", "small_cnn"])
def test_small_backbones(name):
    backbone = build_backbone(name, (1, 8, 8))
    h = backbone(torch.rand(5, 1, 8, 8))
    assert h.shape == (5, backbone.out_dim)
    encoder = build_encoder(backbone, (16, 7), mean=(0.3,), std=(0.4,))
    h, z = encoder(torch.rand(5, 1, 8, 8))
    assert h.shape == (5, backbone.out_dim) and z.shape == (5, 7)
    assert set(BACKBONES) >= {"mlp", "small_cnn", "resnet18", "resnet34", "resnet50", "res_lh"}


def test_res_lh_backbone_spec():
    backbone = build_backbone("res_lh:3,16", (1, 8, 8))
    assert isinstance(backbone, ResLH) and backbone.out_dim == 16
    assert len(backbone.blocks) == 3 and backbone.stem[0].in_channels == 1
    assert backbone(torch.rand(2, 1, 8, 8)).shape == (2, 16)
    check_backbone("res_lh:10,250")  # validates without building RES-10-250
    check_backbone("small_cnn")


@pytest.mark.parametrize("spec,message", [
    ("res_lh:2", "backbone 'res_lh' takes L,H as positive integers, e.g. res_lh:10,250; "
                 "got 'res_lh:2'"),
    ("res_lh", "takes L,H"),
    ("res_lh:2,8,4", "takes L,H"),
    ("res_lh:2,x", "takes L,H"),
    ("res_lh:0,8", "positive integers"),
    ("res_lh:2.5,8", "takes L,H"),
    ("small_cnn:3", "backbone 'small_cnn' takes no arguments, got 'small_cnn:3'"),
    ("resnet99", "unknown backbone 'resnet99'; choose one of: mlp, small_cnn, .*res_lh:L,H"),
    ("resnet99:1,2", "unknown backbone 'resnet99'"),
])
def test_bad_backbone_specs(spec, message):
    with pytest.raises(UserError, match=message):
        check_backbone(spec)
    with pytest.raises(UserError, match=message):
        build_backbone(spec, (1, 8, 8))


def test_registered_builder_declares_its_arguments(monkeypatch):
    monkeypatch.setitem(BACKBONES, "wide_mlp", lambda shape, width: MLP(math.prod(shape), (width,)))
    assert build_backbone("wide_mlp:12", (1, 8, 8)).out_dim == 12
    with pytest.raises(UserError, match=r"takes width as positive integers; got 'wide_mlp'"):
        check_backbone("wide_mlp")


def test_any_module_can_be_the_backbone():
    custom = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 12))
    encoder = build_encoder(custom, (), mean=(0.0,), std=(1.0,), out_dim=12)
    x = torch.rand(3, 1, 8, 8)
    h, z = encoder(x)
    assert torch.equal(h, z) and torch.allclose(h, custom(x))  # empty projector: z = h


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    rng = torch.get_rng_state()
    save_checkpoint(tmp_path / "c.safetensors", {"m": model}, opt, {"step": 7})
    torch.rand(3)  # move the RNG on

    clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt2 = torch.optim.AdamW(clone.parameters(), lr=0.5)
    info = load_checkpoint(tmp_path / "c.safetensors", {"m": clone}, opt2)
    assert info == {"step": 7}
    assert torch.equal(torch.get_rng_state(), rng)
    for a, b in zip(model.state_dict().values(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 0.1
    for idx in s1["state"]:
        for key in s1["state"][idx]:
            assert torch.equal(torch.as_tensor(s1["state"][idx][key]),
                               torch.as_tensor(s2["state"][idx][key]))


def test_corrupt_or_mismatched_checkpoint_is_a_user_error(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_checkpoint(tmp_path / "c.safetensors", {"m": model}, opt, {"step": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="unreadable or corrupt"):
        read_checkpoint(path)
    path = save_checkpoint(tmp_path / "d.safetensors", {"m": model}, opt, {"step": 1})
    with pytest.raises(UserError, match="does not match"):
        load_checkpoint(path, {"m": torch.nn.Linear(5, 3)}, None)
    with pytest.raises(UserError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.safetensors")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    mode = os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask

    from sslscope.files import atomic_write

    def fails(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fails)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_read_jsonl_tolerates_a_partial_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
