"""Config: JSON round trip, coercion, validation, presets."""

import inspect
import json

import pytest

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.data.download import DEFAULT_DATA_DIR
from sslscope.errors import UserError
from sslscope.evaluate import knn_classify
from sslscope.presets import PRESETS


def test_round_trip_through_json(tmp_path):
    cfg = config_lib.replace(Config(), projector_dims="64,32", loss_kwargs={"inv_weight": 5.0})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_lib.to_dict(cfg)))
    assert config_lib.load(path) == cfg
    assert cfg.projector_dims == (64, 32)


@pytest.mark.parametrize("name,value,expected", [
    ("steps", "12", 12), ("steps", 12.0, 12), ("lr", "3e-4", 3e-4), ("lr", 1, 1.0),
    ("deterministic", "true", True), ("deterministic", "0", False),
    ("projector_dims", [8, 4], (8, 4)), ("projector_dims", "", ()),
])
def test_coerce_accepts(name, value, expected):
    assert config_lib.coerce(name, value) == expected


@pytest.mark.parametrize("name,value", [
    ("steps", "ten"), ("steps", 2.5), ("steps", True), ("lr", "x"), ("lr", None),
    ("method", 3), ("deterministic", "maybe"), ("projector_dims", "a,b"), ("loss_kwargs", [1]),
])
def test_coerce_rejects_with_one_sentence(name, value):
    with pytest.raises(UserError, match=f"'{name}' must be"):
        config_lib.coerce(name, value)


def test_unknown_option():
    with pytest.raises(UserError, match="unknown config option 'lrate'"):
        config_lib.from_dict({"lrate": 0.1})


@pytest.mark.parametrize("overrides,message", [
    ({"lr": 0.0}, "learning rate must be positive"),
    ({"seed": -1}, r"seed must be in \[0, 2\*\*32 − 1\], got -1"),
    ({"seed": 2**70}, r"seed must be in \[0, 2\*\*32 − 1\], got 1180591620717411303424"),
    ({"batch_size": 1}, "batch_size must be at least 2"),
    ({"warmup_steps": 100, "steps": 20}, r"warmup_steps \(100\) must be between 0 and steps "
     r"\(20\); pass --warmup-steps 2 \(a tenth of the steps\) or fewer"),
    ({"method": "byol2"}, "unknown method"),
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"augment": "strong"}, "unknown augment recipe"),
    ({"loss_kwargs": {"temperature": 0.1}}, "no option 'temperature'"),
    ({"projector_dims": (0,)}, "projector widths"),
    ({"optimizer": "adam"}, "unknown optimizer 'adam'; choose one of: adamw, sgd, lars"),
    ({"lars_eta": 0.0}, "lars_eta must be positive"),
    ({"backbone": "res_lh:2"}, "backbone 'res_lh' takes L,H"),
    ({"backbone": "resnet7"}, "unknown backbone 'resnet7'; choose one of: .*res_lh:L,H"),
])
def test_validate_rejects(overrides, message):
    with pytest.raises(UserError, match=message):
        config_lib.validate(config_lib.replace(Config(), **overrides))


def test_validate_accepts_a_backbone_with_arguments():
    cfg = config_lib.replace(Config(), backbone="res_lh:2,8")
    assert config_lib.validate(cfg).backbone == "res_lh:2,8"


def test_defaults_kept_elsewhere_are_read_not_restated():
    knn = inspect.signature(knn_classify).parameters
    assert (Config().knn_k, Config().knn_temperature) == (knn["k"].default,
                                                           knn["temperature"].default)
    assert Config().data_dir == DEFAULT_DATA_DIR


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    assert config_lib.validate(PRESETS[name]()) is not None
