"""Each extension point takes a new entry from outside the package, with nothing else edited.

An objective, a consumer of the loop's hook, an instrument and a study are each registered
here, from the test file alone, and then used through the ordinary command line or training
call. (A report section: tests/test_report_structure.py.)
"""

import argparse
import json
import re

import pytest
import torch

from sslscope import losses
from sslscope.cli import main
from sslscope.cli_reference import help_texts
from sslscope.consumers import CONSUMERS
from sslscope.files import atomic_write_text, read_jsonl
from sslscope.methods import Method
from sslscope.observe import Consumer
from sslscope.schedules import log_spaced_steps
from sslscope.studies import STUDIES, Study
from sslscope.train import train
from tests.conftest import tiny_config


def toy_terms(z_a, z_b, *, spread_weight):
    """Invariance plus a push of the batch mean's norm towards zero: nothing standard."""
    return {"invariance": (z_a - z_b).pow(2).sum(1).mean(),
            "spread": spread_weight * z_a.mean(0).pow(2).sum()}


def toy_loss(z_a, z_b, *, spread_weight: float = 0.5):
    return sum(toy_terms(z_a, z_b, spread_weight=spread_weight).values())


@pytest.fixture
def toy_method():
    method = losses.register(Method("toy_invariance", "a test's own objective", toy_loss,
                                    toy_terms))
    yield method
    del losses.METHODS[method.name], losses.LOSSES[method.name]


def test_an_objective_registered_from_a_test_trains_from_the_command_line(tmp_path, capsys,
                                                                          toy_method):
    run_dir = tmp_path / "toy"
    argv = ["train", "--preset", "smoke", "--method", "toy_invariance", "--device", "cpu",
            "--loss", "spread_weight=2", "--run-dir", str(run_dir), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "train/loss" in r]
    assert rows and {"train/loss/invariance", "train/loss/spread"} <= rows[-1].keys()
    last = rows[-1]
    assert last["train/loss"] == pytest.approx(
        last["train/loss/invariance"] + last["train/loss/spread"], rel=1e-5)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["loss_kwargs"] == {"spread_weight": 2.0} and info["status"] == "finished"
    assert (run_dir / "report.html").is_file()
    listing = help_texts()["sslscope train"]
    assert re.search(r"\n  toy_invariance +a test's own objective\n", listing)


def test_a_consumer_registered_from_a_test_sees_every_evaluation_step(tmp_path, monkeypatch):
    seen = []

    def mean_norm(cfg, data, files):
        def consume(snapshot):
            h = snapshot.features("test")["h"]
            seen.append((snapshot.step, h.shape))
            return {"toy/test/h_norm": float(h.norm(dim=1).mean())}
        return Consumer("toy", frozenset({0, 3, 6}), consume)  # its own steps, not the probes'

    monkeypatch.setitem(CONSUMERS, "toy", mean_norm)
    train(tiny_config(steps=6, eval_points=2), tmp_path / "run", progress=False)
    rows = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "toy/test/h_norm" in r]
    assert [r["step"] for r in rows] == [s for s, _ in seen] == [0, 3, 6]
    assert all(r["toy/test/h_norm"] > 0 for r in rows)
    probed = [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")
              if "eval/h/linear/test_acc" in r]
    assert probed == log_spaced_steps(6, 2) == [0, 6]  # the probes keep their own steps
    assert seen[0][1] == (450, 128)  # the whole test split, backbone width of the small CNN


def test_two_consumers_logging_the_same_key_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setitem(CONSUMERS, "again", lambda cfg, data, files: Consumer(
        "again", frozenset({0}), lambda s: {"eval/h/knn/test_acc": 0.0}))
    with pytest.raises(ValueError, match="consumer 'again' logs keys another consumer logs"):
        train(tiny_config(eval_points=1), tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_a_study_registered_from_a_test_is_a_subcommand(tmp_path, monkeypatch, capsys):
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True)
        parser.add_argument("--size", type=int, default=3)

    def run(args):
        value = torch.arange(args.size).sum().item()
        return atomic_write_text(f"{args.out}/summary.md", f"sum of 0..{args.size - 1}: {value}\n")

    monkeypatch.setitem(STUDIES, "toy", Study("toy", "adds numbers", "Adds numbers.",
                                              add_arguments, run))
    assert main(["study", "toy", "--out", str(tmp_path), "--size", "5"]) == 0
    assert capsys.readouterr().out.strip() == "sum of 0..4: 10"
    with pytest.raises(SystemExit):
        main(["study", "toy"])  # its own required option


def test_an_instrument_registered_from_a_test_records_its_arrays(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from sslscope.instruments import INSTRUMENTS, Measurement

    def mean_z(pair):  # the mean embedding of view a: a (D,) row per step
        return Measurement({"z/mean_norm": float(pair.z_a.mean(0).norm())},
                           {"mean": pair.z_a.mean(0).double()})

    monkeypatch.setitem(INSTRUMENTS, "mean_z", mean_z)
    train(tiny_config(steps=4, instruments="mean_z", instrument_points=3), tmp_path / "run",
          progress=False)
    arrays = load_file(str(tmp_path / "run" / "arrays" / "mean_z.safetensors"))
    assert arrays["step"].tolist() == log_spaced_steps(4, 3) and arrays["mean"].shape[1] == 64
    rows = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "inst/z/mean_norm" in r]
    assert [r["step"] for r in rows] == arrays["step"].tolist()
    assert all(r["inst/z/mean_norm"] == pytest.approx(float(arrays["mean"][i].norm()), rel=1e-5)
               for i, r in enumerate(rows))
