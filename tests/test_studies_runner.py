"""The study machinery: runs skipped when finished, resumed when stopped, redone when changed;
the claims list; the theory of a linear run rebuilt from its directory."""

import json

import numpy as np
import pytest
import torch

from sslscope import config as config_lib
from sslscope.errors import UserError
from sslscope.studies.claims import Claim, verdict, write_summary
from sslscope.studies.runner import Job, run_jobs, state, threads_per_job
from sslscope.theory.linear_run import predict, training_pairs
from sslscope.theory.stepwise import pair_cross_correlation
from sslscope.train import train
from tests.conftest import tiny_config


def linear_config(**overrides):
    """The theory's linear model on the digits at its smallest: d = 3, full batch, 40 steps."""
    return tiny_config(**{
        "method": "barlow_twins_linear", "backbone": "linear:3", "projector_dims": (),
        "init_scale": 0.01, "fixed_views": True, "optimizer": "sgd", "momentum": 0.0,
        "weight_decay": 0.0, "warmup_steps": 0, "final_lr_fraction": 1.0, "lr": 0.005,
        "steps": 40, "batch_size": 1347, "instrument_batch": 1347, "instruments": "spectrum",
        "instrument_points": 40, **overrides})


@pytest.mark.slow  # four child trainings with their reports: ~50 s
def test_finished_runs_are_skipped_stopped_ones_resumed_changed_ones_redone(tmp_path):
    cfg = tiny_config(steps=6)
    # Stopped halfway (a checkpoint kept) in this process, with the threads the runner's two
    # children get: float reductions depend on the thread count, and the resumed run is
    # compared with an uninterrupted child below.
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_job(2))
    try:
        train(cfg, tmp_path / "a", stop_at=3, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert state(tmp_path / "a", cfg) == "resume"
    assert state(tmp_path / "b", cfg) == "fresh"
    said = []
    run_jobs([Job("a", cfg), Job("b", cfg)], tmp_path, parallel=2, log=said.append)
    assert "a: resuming" in said and "b: training" in said
    for name in ("a", "b"):
        assert json.loads((tmp_path / name / "run.json").read_text())["status"] == "finished"
        assert (tmp_path / name / "report.html").is_file()  # what `sslscope train` leaves
    # The resumed run equals the uninterrupted one (the loop's exact-resume guarantee).
    a, b = ((tmp_path / n / "evaluation.json").read_text() for n in "ab")
    assert json.loads(a)["rows"] == json.loads(b)["rows"]
    stamp = (tmp_path / "a" / "checkpoints" / "last.safetensors").stat().st_mtime_ns
    said.clear()
    run_jobs([Job("a", cfg)], tmp_path, log=said.append)
    assert said == ["a: finished already, skipped"]
    assert (tmp_path / "a" / "checkpoints" / "last.safetensors").stat().st_mtime_ns == stamp
    changed = config_lib.replace(cfg, seed=1)
    assert state(tmp_path / "a", changed) == "fresh"
    run_jobs([Job("a", changed)], tmp_path, log=said.append)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["seed"] == 1


def test_a_failing_run_is_one_sentence_and_duplicate_names_are_refused(tmp_path):
    with pytest.raises(UserError, match="duplicate run names"):
        run_jobs([Job("x", tiny_config()), Job("x", tiny_config())], tmp_path)
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a sslscope run directory"):
        run_jobs([Job("y", tiny_config())], tmp_path)
    assert (tmp_path / "y" / "notes.txt").read_text() == "mine"
    bad = config_lib.replace(tiny_config(), batch_size=100_000)  # more than the data has
    with pytest.raises(UserError, match="run z failed.*exceeds"):
        run_jobs([Job("z", bad)], tmp_path)
    assert threads_per_job(1) >= threads_per_job(2) >= 1


def test_claims_need_a_known_verdict_and_the_summary_lists_them(tmp_path):
    assert [verdict(True), verdict(False), verdict(None)] == ["agrees", "differs",
                                                               "inconclusive"]
    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "c", "s", "p", {}, "maybe")
    claim = Claim("c1", "steps | come", "seed 000", "yes", {"ratio": 1.02}, "agrees")
    md = write_summary(tmp_path, study="t", title="T", command="cmd", environment={},
                       claims=[claim], body="## more")
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved["claims"][0]) >= {"id", "claim", "source", "paper", "measured", "verdict"}
    text = md.read_text()
    assert "steps \\| come" in text and "1 agrees, 0 differs, 0 inconclusive." in text


def test_fixed_view_instruments_measure_the_theory_c_of_the_training_pairs(tmp_path):
    """With fixed views and the whole training set as instrument batch, the saved eigenvalues
    of C are those of W Γ Wᵀ for the Γ of the very pairs the model trains on."""
    cfg = linear_config(steps=3)
    files = train(cfg, tmp_path / "lin", progress=False)
    x, x_prime, w0 = training_pairs(cfg)
    expected = np.linalg.eigvalsh(w0 @ pair_cross_correlation(x, x_prime) @ w0.T)[::-1]
    from safetensors.numpy import load_file
    saved = load_file(str(files.array("spectrum")))
    assert saved["step"][0] == 0
    assert np.allclose(saved["z/xcorr"][0], expected, rtol=1e-4, atol=1e-12)


def test_linear_run_theory_predicts_its_first_step_and_refuses_other_runs(tmp_path):
    files = train(linear_config(steps=120), tmp_path / "lin", progress=False)
    theory = predict(files.root)
    assert theory.lr == 0.005 and len(theory.predicted_steps) == 3
    assert theory.gamma_eigenvalues == sorted(theory.gamma_eigenvalues, reverse=True)
    # Mode 1 crosses within the run; its step is within 30 % of the closed form.
    assert abs(theory.ratios[0] - 1) < 0.3
    # The end-point residual, recomputed here from the checkpoint and the rebuilt pairs.
    from sslscope.checkpoint import read_checkpoint
    from sslscope.theory.stepwise import rotation_residual
    x, x_prime, _ = training_pairs(files.load_config())
    w = read_checkpoint(files.checkpoint)[0]["parts/encoder.backbone.weight_map.weight"]
    assert theory.final_rotation_residual == pytest.approx(
        rotation_residual(w.double().numpy(), pair_cross_correlation(x, x_prime)), rel=1e-12)
    other = train(tiny_config(), tmp_path / "cnn", progress=False)
    with pytest.raises(UserError, match="not the stepwise theory's linear model"):
        predict(other.root)


@pytest.mark.slow
def test_stepwise_study_writes_its_claims_report_and_theory_and_skips_on_rerun(tmp_path,
                                                                               monkeypatch):
    """The whole study at a tiny size (its numbers are the study's own business): every file
    it promises, a claims list of the pattern, and a rerun that trains nothing."""
    from sslscope.studies import stepwise

    real_linear, real_cnn = stepwise.linear_config, stepwise.cnn_config
    monkeypatch.setattr(stepwise, "linear_config", lambda n, **kw: config_lib.replace(
        real_linear(n, **kw), steps=60, instrument_points=20, checkpoint_every=60))
    monkeypatch.setattr(stepwise, "cnn_config", lambda m, **kw: config_lib.replace(
        real_cnn(m, **kw), steps=12, batch_size=64, instrument_points=6, instrument_batch=64,
        log_every=2))
    import sslscope.theory.ntk_experiment as ntk
    real_ntk = ntk.ntk_prediction
    monkeypatch.setattr(ntk, "ntk_prediction", lambda *a, **kw: real_ntk(
        *a, **{**kw, "steps": 50}))
    summary = stepwise.run_study(tmp_path, device="cpu", parallel=2, log=lambda s: None)
    saved = json.loads((tmp_path / "summary.json").read_text())
    ids = [c["id"] for c in saved["claims"]]
    assert {"linear-step-times", "linear-final-embedding", "cnn-stepwise-vicreg",
            "byol-less-clear", "speedup-linear", "speedup-cnn", "ntk-prediction"} <= set(ids)
    assert all(c["verdict"] in ("agrees", "differs", "inconclusive") for c in saved["claims"])
    theory = json.loads((tmp_path / "runs" / "linear-seed0" / "theory.json").read_text())
    assert {"gamma_eigenvalues", "init_scale", "lr", "predicted_steps",
            "measured_steps"} <= set(theory)
    assert theory["init_scale"] == 0.01
    html = (tmp_path / "report.html").read_text()
    assert "Figure 3" in html and 'href="runs/linear-seed0/report.html"' in html
    assert summary.read_text().startswith("# The stepwise nature")
    said = []
    stepwise.run_study(tmp_path, device="cpu", log=said.append)
    assert [s for s in said if s.endswith("skipped")] and not [
        s for s in said if s.endswith("training")]
