"""Feature taps, label levels, randomness targets and the clustering consumer in a run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from sslscope import anatomy
from sslscope import config as config_lib
from sslscope.anatomy import level_names, sample_level_views, tap_selection
from sslscope.consumers import consumers_for
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.evaluate.suite import extract_features
from sslscope.models import build_backbone, build_encoder
from sslscope.observe import Snapshot
from sslscope.parts import build_parts
from sslscope.runs import RunFiles
from sslscope.supervised import SupervisedRun, randomness, randomness_targets
from sslscope.train import train

BACKBONES = {
    "small_cnn": ((1, 8, 8), ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6"]),
    "mlp": ((1, 8, 8), ["layer1", "layer2"]),
    "linear:4": ((1, 8, 8), ["linear"]),
    "res_lh:3,8": ((1, 8, 8), ["stem", "block1", "block2", "block3"]),
    "resnet18": ((3, 16, 16), ["stem", "layer1", "layer2", "layer3", "layer4"]),
}


@pytest.mark.parametrize("spec", BACKBONES)
def test_every_backbone_has_taps_whose_last_is_h(spec):
    shape, names = BACKBONES[spec]
    torch.manual_seed(0)
    encoder = build_encoder(build_backbone(spec, shape), (6,), [0.5] * shape[0],
                            [0.25] * shape[0]).eval()
    assert encoder.tap_names() == names
    x = torch.rand(4, *shape)
    features = extract_features(encoder, x, device="cpu", taps=names)
    plain = extract_features(encoder, x, device="cpu")
    torch.testing.assert_close(features["h"], plain["h"])
    torch.testing.assert_close(features["z"], plain["z"])
    torch.testing.assert_close(features[names[-1]], plain["h"])
    for name in names:
        assert features[name].shape == (4, encoder.backbone.feature_dims[name])


def test_level_and_tap_names():
    assert level_names("") == []
    assert level_names("all") == ["sample", "class", "superclass", "random"]
    assert level_names("class, sample") == ["sample", "class"]  # canonical order
    with pytest.raises(UserError, match="unknown label level 'kind'"):
        level_names("class,kind")
    taps = ["conv1", "conv2", "conv3"]
    assert tap_selection("all", taps) == taps
    assert tap_selection("conv3,conv1", taps) == ["conv1", "conv3"]
    with pytest.raises(UserError, match="no tap 'block9'; its taps are: conv1, conv2, conv3"):
        tap_selection("block9", taps)


def test_sample_level_views_are_images_as_classes():
    images = load_dataset("digits").train_x
    train_x, train_y, test_x, test_y = sample_level_views(images, "digits", 7, 4, 2, seed=3)
    assert train_x.shape == (28, 1, 8, 8) and test_x.shape == (14, 1, 8, 8)
    assert torch.bincount(train_y).tolist() == [4] * 7
    assert torch.bincount(test_y).tolist() == [2] * 7
    again = sample_level_views(images, "digits", 7, 4, 2, seed=3)
    assert torch.equal(again[0], train_x) and torch.equal(again[2], test_x)
    assert not torch.equal(train_x[:7], test_x[:7])  # test views are fresh augmentations
    with pytest.raises(UserError, match="sample_images 5000 exceeds"):
        sample_level_views(images, "digits", 5000, 4, 2, seed=0)


def test_randomness_is_normalised_disagreement():
    truth = torch.tensor([0, 1, 2, 3] * 5)
    chance = torch.tensor([1, 2, 3, 0, 0] * 4)  # agrees on 1 in 4: chance for K = 4
    labels = torch.stack([truth, chance, torch.where(torch.arange(20) < 10, truth, chance)])
    r = randomness(labels, truth, num_classes=4)
    assert r[0] == 0.0 and r[1] == pytest.approx(1.0)
    agreement = (labels[2] == truth).double().mean()
    assert r[2] == pytest.approx((1 - agreement) / (1 - 1 / 4))


def test_randomness_targets_spread_from_arbitrary_to_true():
    truth = torch.arange(4).repeat(25)
    steps, sets = [], []
    gen = torch.Generator().manual_seed(0)
    for i, keep in enumerate([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]):
        noisy = torch.randint(0, 4, (100,), generator=gen)
        sets.append(torch.where(torch.rand(100, generator=gen) < keep, truth, noisy))
        steps.append(i * 10)
    sets[1] = torch.zeros(100, dtype=torch.int64)  # one class: never chosen
    run = SupervisedRun(None, tuple(steps), torch.stack(sets), torch.stack(sets))
    targets = randomness_targets(run, truth, 4, count=3)
    r = targets.randomness.tolist()
    # Targets 1, 2/3, 1/3: the true labels (r = 0) are the class level, not a random one.
    assert r == sorted(r, reverse=True) and r[0] > 0.8 and 0.1 < r[-1] < 0.5
    assert 10 not in targets.steps.tolist()
    assert targets.train.shape == (3, 100)


def test_default_run_builds_no_clustering_consumer(tmp_path):
    data = load_dataset("digits")
    names = [c.name for c in consumers_for(config_lib.Config(), data, RunFiles(tmp_path))]
    assert "clustering" not in names
    cfg = config_lib.replace(config_lib.Config(), taps="conv2")
    assert "clustering" in [c.name for c in consumers_for(cfg, data, RunFiles(tmp_path))]


def test_bad_level_options_are_one_sentence():
    base = config_lib.Config()
    with pytest.raises(UserError, match="unknown label level"):
        config_lib.validate(config_lib.replace(base, levels="pixels"))
    with pytest.raises(UserError, match="one encoder per modality"):
        config_lib.validate(config_lib.replace(base, method="clip", levels="class"))
    with pytest.raises(UserError, match="mine_seeds must be"):
        config_lib.validate(config_lib.replace(base, mine_seeds=-1))


def small_config(**overrides):
    return config_lib.replace(
        config_lib.Config(), steps=4, warmup_steps=1, batch_size=64, eval_points=1,
        projector_dims=(32,), instruments="", levels="all", taps="conv2,conv6",
        sample_images=10, sample_train_views=3, sample_test_views=2, random_targets=2,
        tensorboard=False, **overrides,
    )


def check_row(row):
    for rep in ("h", "conv2", "conv6"):
        for level in ("sample", "class", "superclass", "random0", "random1"):
            for metric in ("ncc_train_acc", "ncc_test_acc", "linear_test_acc",
                           "ncc_linear_ratio", "cdnv", "within_variance", "between_distance"):
                assert f"clus/{rep}/{level}/{metric}" in row
    assert 0 <= row["clus/randomness/random1"] < row["clus/randomness/random0"] <= 1
    # conv6 is h's tap: the same features give the same numbers.
    assert row["clus/conv6/class/ncc_test_acc"] == row["clus/h/class/ncc_test_acc"]


def test_the_consumer_measures_every_level_and_tap_and_reuses_its_targets(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(anatomy, "TARGET_STEPS", 30)
    monkeypatch.setattr(anatomy, "TARGET_RECORDS", 8)
    cfg, data = small_config(), load_dataset("digits")
    files = RunFiles(tmp_path)
    files.array("targets").parent.mkdir(parents=True)
    cpu = torch.device("cpu")
    parts = build_parts(cfg, data, cpu)
    row = anatomy.clustering(cfg, data, files).consume(Snapshot(0, parts, data, cpu))
    check_row(row)
    targets = load_file(str(files.array("targets")))
    assert targets["train"].shape == (2, data.train_x.shape[0])

    def no_training(*args, **kwargs):
        raise AssertionError("a saved targets file is reused, not trained again")

    monkeypatch.setattr(anatomy, "train_classifier", no_training)  # as after a resume
    again = anatomy.clustering(cfg, data, files).consume(Snapshot(0, parts, data, cpu))
    assert again == row


@pytest.mark.slow
def test_a_run_logs_every_level_tap_and_keeps_its_targets(tmp_path, monkeypatch):
    monkeypatch.setattr(anatomy, "TARGET_STEPS", 30)
    monkeypatch.setattr(anatomy, "TARGET_RECORDS", 8)
    cfg = small_config()
    files = train(cfg, tmp_path / "run", stop_at=2, progress=False)
    targets = load_file(str(files.array("targets")))
    train(cfg, tmp_path / "run", resume=True, progress=False)
    assert torch.equal(load_file(str(files.array("targets")))["train"], targets["train"])
    rows = [json.loads(line) for line in files.metrics.read_text().splitlines()]
    last = [r for r in rows if "clus/h/class/cdnv" in r][-1]
    assert last["step"] == 4
    check_row(last)
    # Measuring changes nothing in training, and a resumed run measures what a straight one does.
    straight = train(cfg, tmp_path / "straight", progress=False)
    plain = train(config_lib.replace(cfg, levels="", taps=""), tmp_path / "plain",
                  progress=False)
    weights = [load_file(str(f.checkpoint)) for f in (files, straight, plain)]
    assert all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in weights[0])

    def clus_rows(f):
        return [{k: v for k, v in json.loads(line).items() if k.startswith("clus/")}
                for line in f.metrics.read_text().splitlines() if "clus/" in line]

    assert clus_rows(files) == clus_rows(straight)
