"""The training loop: outputs, exact resumption, the divergence guard, re-evaluation."""

import dataclasses
import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from sslscope import losses
from sslscope.checkpoint import read_checkpoint
from sslscope.errors import Interrupted, TrainingDiverged, UserError
from sslscope.files import read_jsonl
from sslscope.operations import evaluate_run
from sslscope.schedules import log_spaced_steps
from sslscope.train import batch_indices, train
from tests.conftest import tiny_config


def patch_terms(monkeypatch, name, terms):
    """Make method ``name`` train on ``terms`` instead of its own terms function."""
    monkeypatch.setitem(losses.METHODS, name, dataclasses.replace(losses.METHODS[name],
                                                                  terms=terms))


def _train_rows(run_dir):
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_finished_run_has_every_file(finished_run):
    for name in ("config.json", "run.json", "metrics.jsonl", "evaluation.json",
                 "checkpoints/last.safetensors", "arrays/final_embeddings.safetensors"):
        assert (finished_run / name).is_file(), name
    assert not (finished_run / "report.html").exists()  # the core writes files, not the report
    arrays = load_file(str(finished_run / "arrays" / "final_embeddings.safetensors"))
    assert arrays["test/h"].shape == (450, 128) and arrays["train/z"].shape == (1347, 64)
    assert torch.equal(arrays["train/index"], torch.arange(1347))
    info = json.loads((finished_run / "run.json").read_text())
    assert info["status"] == "finished" and info["torch"] == torch.__version__
    assert info["loss_kwargs"] == losses.resolve_loss_kwargs("vicreg", {})
    rows = read_jsonl(finished_run / "metrics.jsonl")
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]  # log_every=2, steps=6
    for r in train_rows:  # the logged terms add up to the logged loss
        terms = sum(v for k, v in r.items() if k.startswith("train/loss/"))
        assert terms == pytest.approx(r["train/loss"], rel=1e-5)
    eval_steps = [r["step"] for r in rows if "eval/h/linear/test_acc" in r]
    assert eval_steps == log_spaced_steps(6, 2) == [0, 6]
    table = json.loads((finished_run / "evaluation.json").read_text())
    names = [row["name"] for row in table["rows"]]
    assert names[0] == "raw pixels" and "trained, backbone h" in names
    pixels = table["rows"][0]["linear"]["test_acc"]
    assert 0.95 < pixels < 0.99  # logistic regression on digits pixels: 96.9 % on this split


# LARS: its momentum is checkpointed (tests/test_optim.py resumes it step by step, fast).
@pytest.mark.parametrize("optimizer", ["adamw", pytest.param("lars", marks=pytest.mark.slow)])
def test_resumed_run_equals_uninterrupted_run(tmp_path, optimizer):
    cfg = tiny_config(steps=8, checkpoint_every=3, log_every=1, eval_points=3, optimizer=optimizer)
    train(cfg, tmp_path / "straight", progress=False)
    train(cfg, tmp_path / "resumed", progress=False, stop_at=5)
    assert not (tmp_path / "resumed" / "evaluation.json").exists()
    stopped = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert stopped["status"] == "stopped" and stopped["stopped_at"] == 5
    train(cfg, tmp_path / "resumed", progress=False, resume=True)

    a = load_file(str(tmp_path / "straight" / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _train_rows(tmp_path / "straight") == _train_rows(tmp_path / "resumed")
    eval_a = json.loads((tmp_path / "straight" / "evaluation.json").read_text())
    eval_b = json.loads((tmp_path / "resumed" / "evaluation.json").read_text())
    assert eval_a == eval_b


def test_resume_rejects_a_changed_config(tmp_path):
    cfg = tiny_config()
    train(cfg, tmp_path / "run", progress=False, stop_at=2)
    with pytest.raises(UserError, match="config differs"):
        train(tiny_config(lr=0.1), tmp_path / "run", progress=False, resume=True)


def test_fresh_run_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        train(tiny_config(), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}

    def breaks_at_step_5(z_a, z_b, **kwargs):
        calls["n"] += torch.is_grad_enabled()  # training steps; not the config's dry run
        terms = losses.vicreg_terms(z_a, z_b, **kwargs)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] >= 5 else terms

    patch_terms(monkeypatch, "vicreg", breaks_at_step_5)
    cfg = tiny_config(steps=10, log_every=1, checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match="at step 5"):
        train(cfg, tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.safetensors"
    tensors = load_file(str(checkpoint))
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point())
    _, header = read_checkpoint(checkpoint)
    assert header["info"]["step"] == 4
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"
    logged = [r["train/loss"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")
              if "train/loss" in r]
    assert len(logged) == 4 and all(math.isfinite(v) for v in logged)


def test_evaluate_run_reproduces_the_final_table(finished_run):
    before = json.loads((finished_run / "evaluation.json").read_text())
    assert evaluate_run(finished_run) == before


def test_batch_indices_cover_each_epoch_once():
    n, batch = 50, 16  # 3 batches per epoch, 2 images dropped
    epoch0 = torch.cat([batch_indices(n, batch, seed=0, step=s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 48
    assert not torch.equal(batch_indices(n, batch, 0, 0), batch_indices(n, batch, 0, 3))
    assert torch.equal(batch_indices(n, batch, 1, 7), batch_indices(n, batch, 1, 7))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_a_step_boundary_and_resumes_exactly(tmp_path, monkeypatch, signum):
    # Ctrl-C and a scheduler's SIGTERM alike: the step in flight completes, then a checkpoint.

    cfg = tiny_config(steps=8, log_every=1, checkpoint_every=100)
    train(cfg, tmp_path / "straight", progress=False)

    calls = {"n": 0}
    original = losses.METHODS["vicreg"].terms

    def interrupted_in_step_3(z_a, z_b, **kwargs):
        calls["n"] += torch.is_grad_enabled()  # training steps; not the config's dry run
        if calls["n"] == 3:
            os.kill(os.getpid(), signum)  # arrives mid-step; the step still completes
        return original(z_a, z_b, **kwargs)

    patch_terms(monkeypatch, "vicreg", interrupted_in_step_3)
    with pytest.raises(Interrupted) as stopped:
        train(cfg, tmp_path / "resumed", progress=False)
    assert stopped.value.signum == signum
    info = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert info["status"] == "interrupted" and info["stopped_at"] == 3
    patch_terms(monkeypatch, "vicreg", original)
    train(cfg, tmp_path / "resumed", progress=False, resume=True)
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_metrics_are_mirrored_to_tensorboard_when_installed(finished_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run / "tensorboard"))
    events.Reload()
    assert "train/loss" in events.Tags()["scalars"]
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    rows = {r["step"]: r["train/loss"] for r in read_jsonl(finished_run / "metrics.jsonl")
            if "train/loss" in r}
    assert logged.keys() == rows.keys()
    assert all(logged[s] == pytest.approx(rows[s], rel=1e-6) for s in rows)
    assert "eval/h/linear/test_acc" in events.Tags()["scalars"]


def test_view_drawer_fresh_or_fixed():
    from sslscope.data import load_digits
    from sslscope.train import view_drawer
    from sslscope.views import make_views

    images = load_digits().train_x[:40]
    index = torch.arange(8, 24)
    cpu = torch.device("cpu")
    fresh = view_drawer(tiny_config(), images, 2, cpu)
    g = torch.Generator().manual_seed(0 * 2**32 + 5)  # the seed of step 5, as the loop draws it
    assert all(torch.equal(a, b) for a, b in zip(fresh(5, index), make_views(
        images[index], "digits", 2, g), strict=True))
    assert not torch.equal(fresh(5, index)[0], fresh(6, index)[0])
    fixed = view_drawer(tiny_config(fixed_views=True), images, 2, cpu)
    assert all(torch.equal(a, b) for a, b in zip(fixed(0, index), fixed(7, index), strict=True))
    assert not torch.equal(fixed(0, index)[0], fixed(0, index)[1])  # two different views


def test_init_scale_shrinks_only_the_output_layer():
    from sslscope.config import validate
    from sslscope.data import load_digits
    from sslscope.parts import build_model

    data = load_digits()
    plain = build_model(tiny_config(), data.shape, data).state_dict()
    small = build_model(tiny_config(init_scale=0.01), data.shape, data).state_dict()
    last = "projector.3.weight"  # smoke projector (64, 64): Linear, BN, ReLU, Linear
    assert torch.allclose(small[last], 0.01 * plain[last])
    assert all(torch.equal(plain[k], small[k]) for k in plain if not k.startswith("projector.3"))
    with pytest.raises(UserError, match="init_scale must be positive"):
        validate(tiny_config(init_scale=0.0))
    with pytest.raises(UserError, match="no effect on simsiam"):
        validate(tiny_config(method="simsiam", init_scale=0.1))


def test_the_linear_model_of_the_theory_trains_through_the_loop(tmp_path):
    cfg = tiny_config(method="barlow_twins_linear", backbone="linear:4", projector_dims=(),
                      init_scale=0.01, optimizer="sgd", momentum=0.0, warmup_steps=0,
                      final_lr_fraction=1.0, weight_decay=0.0, fixed_views=True, lr=0.05)
    files = train(cfg, tmp_path / "linear", progress=False)
    weights = load_file(str(files.checkpoint))
    assert weights["parts/encoder.backbone.weight_map.weight"].shape == (4, 64)
    losses_logged = [r["train/loss"] for r in read_jsonl(files.metrics) if "train/loss" in r]
    assert losses_logged[0] == pytest.approx(4.0, abs=0.05)  # ‖C − I‖² ≈ d from small init


def test_the_final_table_reuses_the_last_steps_probes(tmp_path, monkeypatch):
    """The trained encoder is probed once: the last step's probes are its evaluation row."""
    import sslscope.operations as operations

    calls = []
    real = operations.evaluate_encoder
    monkeypatch.setattr(operations, "evaluate_encoder",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    files = train(tiny_config(steps=4, warmup_steps=1), tmp_path / "run", progress=False)
    assert len(calls) == 1  # the random-init encoder only
    rows = [json.loads(line) for line in files.metrics.read_text().splitlines()]
    last = [r for r in rows if "eval/h/linear/test_acc" in r][-1]
    table = json.loads(files.evaluation.read_text())
    trained = next(r for r in table["rows"] if r["name"] == "trained, backbone h")
    assert last["step"] == 4
    assert trained["linear"]["test_acc"] == last["eval/h/linear/test_acc"]
    assert trained["ncc"]["train_acc"] == last["eval/h/ncc/train_acc"]
