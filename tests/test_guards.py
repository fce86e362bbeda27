"""The collapse guard (sslscope.guards): measured, reported with the step and cause, handled.

Targets asserted: the spread is about 1 for embeddings spread over the sphere and 0 for
collapsed ones (hand-made cases); a healthy run logs it at every probe step without a word;
with a threshold every run falls under, "warn" says so once on stderr and finishes, "stop" ends
the run with status 3, run.json "collapsed" and the checkpoint kept, and "off" only logs; a bad
action is one sentence.
"""

import json
import math

import pytest
import torch

from sslscope.cli import main
from sslscope.errors import TrainingCollapsed
from sslscope.files import read_jsonl
from sslscope.guards import CollapseWatch
from sslscope.instruments.geometry import normalized_std
from sslscope.train import train
from tests.conftest import tiny_config

TINY = ["--preset", "smoke", "--backbone", "linear:8", "--instruments", "", "--device", "cpu",
        "--no-progress", "--steps", "12", "--warmup-steps", "1", "--eval-points", "4",
        "--checkpoint-every", "2"]


def test_the_spread_of_spread_and_collapsed_embeddings():
    z = torch.randn(4000, 64, generator=torch.Generator().manual_seed(0))
    assert normalized_std(z) * math.sqrt(64) == pytest.approx(1.0, abs=0.02)
    assert normalized_std(torch.ones(100, 64) + 1e-9 * z[:100]) * math.sqrt(64) < 1e-6


def test_the_rule_flags_a_fall_not_a_slow_start():
    watch = CollapseWatch(0.05, 2)
    assert [watch.update(s, v) for s, v in [(0, 0.002), (1, 0.003), (5, 0.5)]] == [None] * 3
    assert watch.update(9, 0.01) is None and watch.update(20, 0.02) == [9, 20]
    assert watch.update(40, 0.3) is None  # spread out again: the count starts over


def spreads(run):
    return [r["guard/z/spread"] for r in read_jsonl(run / "metrics.jsonl")
            if "guard/z/spread" in r]


def test_a_healthy_run_logs_the_spread_silently(tmp_path, capsys):
    train(tiny_config(steps=12, eval_points=4), tmp_path / "r", progress=False)
    assert len(spreads(tmp_path / "r")) >= 3 and spreads(tmp_path / "r")[-1] > 0.3
    assert "collapsed" not in capsys.readouterr().err


@pytest.fixture
def collapsing(monkeypatch):
    """z spreads out at the first measured step after 0, then falls to nothing."""
    from sslscope import guards

    measured = iter([0.002, 0.8, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001])
    monkeypatch.setattr(guards, "spread_of", lambda z: next(measured))


def test_warn_says_so_once_and_finishes(tmp_path, capsys, collapsing):
    train(tiny_config(steps=12, eval_points=4), tmp_path / "r",
          progress=False)
    err = capsys.readouterr().err
    assert err.count("sslscope: warning: the embeddings z collapsed") == 1
    assert "learning rate" in err and "measured steps from" in err
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "finished"


def test_stop_ends_the_run_and_keeps_the_checkpoint(tmp_path, collapsing):
    cfg = tiny_config(steps=12, eval_points=4, checkpoint_every=2,
                      on_collapse="stop")
    with pytest.raises(TrainingCollapsed, match="collapsed: .* measured steps from"):
        train(cfg, tmp_path / "r", progress=False)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "collapsed"
    assert (tmp_path / "r" / "checkpoints" / "last.safetensors").is_file()


def test_off_only_logs(tmp_path, capsys, collapsing):
    train(tiny_config(steps=12, eval_points=4, on_collapse="off"),
          tmp_path / "r", progress=False)
    assert "collapsed" not in capsys.readouterr().err and spreads(tmp_path / "r")


def test_the_command_line(tmp_path, capsys, collapsing):
    code = main(["train", *TINY, "--on-collapse", "stop", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 3 and "collapsed" in err and "Traceback" not in err
    assert main(["train", *TINY, "--on-collapse", "maybe", "--run-dir",
                 str(tmp_path / "s")]) == 2
    assert "unknown on_collapse action 'maybe'; choose one of: warn, stop, off" in \
        capsys.readouterr().err
