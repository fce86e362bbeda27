"""solo-learn's CIFAR recipes as presets: registered, valid, transcribed right, and trainable."""

import json

import pytest

from sslscope import config as config_lib
from sslscope.cli import main
from sslscope.data import cifar
from sslscope.presets import PRESETS
from sslscope.recipes import RECIPE_PRESETS, TABLE, to_config
from sslscope.train import train
from tests.test_datasets import write_cifar10

NAMES = [f"{d}-{m}" for d in ("cifar10", "cifar100")
         for m in ("vicreg", "barlow_twins", "simclr", "byol", "simsiam")]


def test_every_recipe_preset_is_registered_and_valid():
    assert sorted(RECIPE_PRESETS) == sorted(NAMES)
    for name in NAMES:
        assert PRESETS[name] is RECIPE_PRESETS[name]
        cfg = config_lib.validate(PRESETS[name]())
        assert cfg.dataset == name.split("-")[0] and cfg.backbone == "resnet18"
        # 1000 epochs of ⌊50000/256⌋ = 195 steps, 10 of them warm-up, cosine to 0.
        assert (cfg.steps, cfg.warmup_steps, cfg.batch_size) == (195_000, 1_950, 256)
        assert cfg.final_lr_fraction == 0.0
        assert cfg.sync_batchnorm  # every cifar yaml: sync_batchnorm: True, strategy: ddp
        doc = PRESETS[name].__doc__
        acc = TABLE[name.split("-", 1)[1]].acc[cfg.dataset]
        assert f"{acc:.2f} %" in doc and "not reproduced" in doc and "9187ea39" in doc


def test_table_matches_the_solo_learn_files():
    # Typed again from vturrisi/solo-learn@9187ea39: scripts/pretrain/cifar/vicreg.yaml and
    # byol.yaml, and README.md (CIFAR-10 / CIFAR-100 tables, Acc@1).
    vicreg, byol = TABLE["vicreg"], TABLE["byol"]
    assert (vicreg.optimizer, vicreg.lr, vicreg.weight_decay, vicreg.eta) == ("lars", 0.3, 1e-4,
                                                                              0.02)
    assert (vicreg.proj_hidden_dim, vicreg.proj_output_dim) == (2048, 2048)
    assert vicreg.method_kwargs == {"sim_loss_weight": 25.0, "var_loss_weight": 25.0,
                                    "cov_loss_weight": 1.0}
    assert vicreg.acc == {"cifar10": 92.07, "cifar100": 68.54}
    assert (byol.optimizer, byol.lr, byol.weight_decay, byol.eta) == ("lars", 1.0, 1e-5, 0.02)
    assert (byol.proj_hidden_dim, byol.proj_output_dim, byol.pred_hidden_dim) == (4096, 256, 4096)
    assert byol.base_tau == 0.99 and byol.acc == {"cifar10": 92.58, "cifar100": 70.46}
    assert TABLE["simsiam"].optimizer == "sgd" and TABLE["simclr"].method_kwargs == {
        "temperature": 0.2}


def test_configs_map_the_table():
    v = PRESETS["cifar10-vicreg"]()
    assert (v.method, v.optimizer, v.lr, v.weight_decay, v.lars_eta, v.momentum) == (
        "vicreg", "lars", 0.3, 1e-4, 0.02, 0.9)
    assert v.projector_dims == (2048, 2048, 2048)
    # solo-learn sums the two views' variance hinges; sslscope averages them: μ 25 → 50.
    assert v.loss_kwargs == {"inv_weight": 25.0, "var_weight": 50.0, "cov_weight": 1.0}
    b = PRESETS["cifar100-byol"]()
    assert (b.method, b.lr, b.weight_decay, b.ema_decay) == ("byol", 1.0, 1e-5, 0.99)
    assert (b.projector_dims, b.predictor_hidden, b.dataset) == ((4096, 256), 4096, "cifar100")
    s = PRESETS["cifar10-simclr"]()
    assert (s.method, s.lr, s.projector_dims, s.loss_kwargs) == (
        "nt_xent", 0.4, (2048, 256), {"temperature": 0.2})
    ss = PRESETS["cifar10-simsiam"]()
    assert (ss.optimizer, ss.lr, ss.weight_decay, ss.predictor_hidden) == ("sgd", 0.5, 1e-5, 512)
    assert PRESETS["cifar10-barlow_twins"]().loss_kwargs == {"offdiag_weight": 0.0051}


def test_train_help_lists_the_recipe_presets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name in NAMES:
        assert f"  {name}  " in out


@pytest.mark.parametrize("name,shrink", [
    ("cifar10-vicreg", {"projector_dims": (64, 64, 64)}),
    ("cifar10-byol", {"projector_dims": (64, 32), "predictor_hidden": 64}),
])
def test_recipe_trains_on_tiny_cifar10(tmp_path, name, shrink):
    # 50 training images, 10 test images: the final k-means needs at least one per class.
    write_cifar10(tmp_path / "data" / cifar.CIFAR10_DIR, n_per_batch=10)
    cfg = config_lib.replace(
        to_config(name.split("-", 1)[1], "cifar10"), data_dir=str(tmp_path / "data"), steps=2,
        batch_size=16, warmup_steps=1, eval_points=0, instruments="", device="cpu",
        tensorboard=False, **shrink,
    )
    files = train(cfg, tmp_path / "run", progress=False)
    assert json.loads(files.run_info.read_text())["status"] == "finished"
