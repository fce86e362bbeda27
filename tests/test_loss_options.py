"""A loss option the loss cannot run with is one sentence before training (Method.problem).

Targets asserted: every registered method's defaults pass at the batch sizes and view counts it
accepts (no false alarm); bad values found by trying them (issue 13's list) are the loss's own
sentence through the config, exit status 2, and nothing is written.
"""

import pytest

from sslscope import config as config_lib
from sslscope.cli import main
from sslscope.config import Config
from sslscope.errors import UserError
from sslscope.losses import METHODS


@pytest.mark.parametrize("name", sorted(METHODS))
def test_defaults_pass_the_dry_run(name):
    method = METHODS[name]
    for views in ((method.views,) if method.views else (2, 4)):
        for batch in (8, 300):
            assert method.problem(method.resolve({}), batch=batch, views=views) is None


@pytest.mark.parametrize("method, options, sentence", [
    ("nt_xent", {"temperature": 0.0}, "temperature must be positive, got 0.0"),
    ("nt_xent", {"temperature": -1.0}, "temperature must be positive, got -1.0"),
    ("tico", {"beta": 2.0}, "beta must lie in [0, 1], got 2.0"),
    ("vicreg_tico", {"cov_embedding": "foo"}, "cov_embedding must be 'raw' or 'l2'"),
    ("icon", {"p": "augmentation_knn", "knn_k": 600}, "k must be in [1, B − 1 = 511]"),
])
def test_a_bad_option_is_the_losses_sentence(method, options, sentence):
    cfg = config_lib.replace(Config(), method=method, loss_kwargs=options)
    with pytest.raises(UserError, match="cannot run with its options") as e:
        config_lib.validate(cfg)
    assert sentence in str(e.value)


def test_the_command_line_stops_before_writing(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--preset", "smoke", "--method", "nt_xent", "--loss", "temperature=0",
            "--run-dir", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "temperature must be positive, got 0.0" in err and "Traceback" not in err
    assert not run.exists()
