"""`torchrun --nproc_per_node 2` on gloo (CPU) trains exactly what one process trains.

Target asserted: a 2-process run's loss at every step and its weights after the last step
equal a single-process run's on the same global batch (float reduction order aside: 1e-5),
for one method of each family — two-view (VICReg), K-view (MMCR, 4 views), EMA target (BYOL)
and cross-modal (CLIP); a 2-process run stopped and resumed through ``sslscope train`` equals
the uninterrupted one; a scheduler's SIGTERM stops every rank at one step boundary with a
checkpoint; bad input stops every rank with one sentence and status 2; a rank that
crashes ends the job instead of leaving the other waiting.

The models have no BatchNorm (a linear backbone, a one-layer projector, BYOL with a linear
predictor): per-process BatchNorm statistics would differ from the global batch's by design, and
SyncBatchNorm, which makes them equal, has no CPU kernel.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import sslscope.train
from sslscope import config as config_lib
from sslscope.checkpoint import read_checkpoint
from sslscope.distributed import World
from sslscope.engine import check_engine
from sslscope.errors import UserError
from sslscope.files import read_jsonl
from sslscope.train import train

WORKER = Path(__file__).parent / "workers" / "torchrun_train.py"
TORCHRUN = Path(sys.executable).with_name("torchrun")
# SGD, not AdamW: a gradient that is zero in exact arithmetic (VICReg's projector bias: every
# term is translation invariant) is rounding noise, which Adam's normalisation turns into
# full-size steps that differ between any two reduction orders.
BASE = dict(backbone="linear:24", projector_dims=(16,), steps=5, warmup_steps=1, batch_size=48,
            optimizer="sgd", lr=0.05, instruments="", eval_points=0, log_every=1,
            tensorboard=False, device="cpu")
FAMILIES = {
    "vicreg": dict(method="vicreg"),
    "mmcr": dict(method="mmcr", n_views=4),
    "byol": dict(method="byol", predictor_hidden=0),
    "clip": dict(method="clip", augment="none"),
}


def config(name):
    return config_lib.validate(config_lib.replace(config_lib.Config(), **BASE, **FAMILIES[name]))


def torchrun(*args, nproc=2, timeout=240):
    """Run torchrun; on a timeout kill its whole session, workers included (no orphans)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(nproc), *map(str, args)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"torchrun did not finish in {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").open()]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def weights(run_dir):
    saved = load_file(str(Path(run_dir) / "checkpoints" / "last.safetensors"))
    return {k: v for k, v in saved.items() if k.startswith("parts/")}


def assert_same_training(a, b, tol=1e-5):
    la, lb = losses(a), losses(b)
    assert la.keys() == lb.keys() and len(la) == BASE["steps"]
    for step in la:
        assert la[step] == pytest.approx(lb[step], rel=tol, abs=tol), step
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=tol, atol=tol, msg=key)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torchrun")
    paths = []
    for name in FAMILIES:
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(config_lib.to_dict(config(name))))
        paths.append(path)
    result = torchrun(WORKER, tmp / "runs", *paths)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "runs"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_two_processes_train_what_one_process_trains(two_process_runs, name, tmp_path,
                                                     monkeypatch):
    monkeypatch.setattr(sslscope.train, "write_final_evaluation", lambda *a, **k: None)
    train(config(name), tmp_path / name, progress=False)
    assert_same_training(two_process_runs / name, tmp_path / name)
    info = json.loads((two_process_runs / name / "run.json").read_text())
    assert info["status"] == "finished"


@pytest.mark.slow  # 25 s: the resumed run ends with the final evaluation and the report
def test_resumed_two_process_run_equals_uninterrupted(two_process_runs, tmp_path):
    cfg_path = tmp_path / "vicreg.json"
    cfg_path.write_text(json.dumps(config_lib.to_dict(config("vicreg"))))
    run = tmp_path / "run"
    first = torchrun("-m", "sslscope", "train", "--config", cfg_path, "--run-dir", run,
                     "--stop-at", 2, "--no-progress")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    second = torchrun("-m", "sslscope", "train", "--resume", run, "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("report:") == 1  # rank 0 alone reports
    assert_same_training(run, two_process_runs / "vicreg", tol=1e-6)
    assert (run / "evaluation.json").is_file() and (run / "report.html").is_file()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow  # another torchrun launch; `make test` stays near 5 minutes
def test_batch_that_does_not_divide_stops_every_rank(tmp_path):
    result = torchrun("-m", "sslscope", "train", "--backbone", "linear:8", "--steps", 2,
                      "--warmup-steps", 0, "--batch-size", 31, "--run-dir", tmp_path / "r")
    sentence = "batch_size 31 does not divide among 2 processes"
    assert result.returncode != 0 and result.stderr.count(sentence) == 2
    # torchrun prints its own traceback of the failed launch; none may come from our code.
    assert re.search(r'File "[^"]*/sslscope/', result.stderr) is None
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.parametrize("options, sentence", [
    (["--batch-size", 2], "batch_size 2 is too small for 2 processes"),
    (["--sync-batchnorm", "true"], "sync_batchnorm needs CUDA GPUs"),
])
def test_bad_distributed_options_stop_every_rank(options, sentence, tmp_path):
    result = torchrun("-m", "sslscope", "train", "--backbone", "linear:8", "--steps", 2,
                      "--warmup-steps", 0, "--device", "cpu", *options, "--run-dir", tmp_path)
    assert result.returncode != 0 and result.stderr.count(sentence) == 2
    assert "exitcode  : 2" in result.stderr


@pytest.mark.slow
def test_a_crashed_rank_ends_the_job(tmp_path):
    cfg_path = tmp_path / "vicreg.json"
    cfg_path.write_text(json.dumps(config_lib.to_dict(
        config_lib.replace(config("vicreg"), steps=50))))
    result = torchrun(WORKER, tmp_path / "runs", "--crash-at", 3, "--cli", "train", "--config",
                      cfg_path, "--run-dir", tmp_path / "run", "--no-progress", timeout=120)
    assert result.returncode != 0
    assert "injected crash on rank 1 at step 3" in result.stderr
    assert "Root Cause" in result.stderr and "rank      : 1" in result.stderr
    # Rank 0, waiting in a collective, says why it stops too, unless torchrun's SIGTERM was
    # first (both orders happen; either way the job has ended, which is what matters).
    rank0_said = "rank 0 of 2: another process of the job stopped" in result.stderr
    assert rank0_said or "(SIGTERM)" in result.stderr


def test_engine_checks_are_one_sentence():
    cfg = config("vicreg")
    cpu = torch.device("cpu")
    check_engine(cfg, World(0, 2), cpu)  # 48 = 2 × 24: fine
    with pytest.raises(UserError, match="does not divide among 5 processes"):
        check_engine(cfg, World(0, 5), cpu)
    with pytest.raises(UserError, match="too small for 32 processes"):
        check_engine(cfg, World(0, 32), cpu)
    with pytest.raises(UserError, match="sync_batchnorm needs CUDA"):
        check_engine(config_lib.replace(cfg, sync_batchnorm=True), World(0, 2), cpu)
    check_engine(config_lib.replace(cfg, sync_batchnorm=True), World(), cpu)  # one process: no-op


def test_compile_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(UserError, match="compile is not available here .*C\\+\\+ compiler"):
        check_engine(config_lib.replace(config("vicreg"), compile=True), World(),
                     torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_sync_batchnorm_on_two_gpus_trains_what_one_gpu_trains(tmp_path, monkeypatch):
    # With BatchNorm everywhere (small_cnn, a BN projector), only SyncBatchNorm makes the two
    # halves' statistics the global batch's; nccl reductions are not bitwise: 1e-4.
    options = dict(BASE, backbone="small_cnn", projector_dims=(64, 32), device="cuda",
                   sync_batchnorm=True, method="vicreg")
    cfg = config_lib.validate(config_lib.replace(config_lib.Config(), **options))
    path = tmp_path / "vicreg.json"
    path.write_text(json.dumps(config_lib.to_dict(cfg)))
    result = torchrun(WORKER, tmp_path / "runs", path)
    assert result.returncode == 0, result.stderr[-3000:]
    monkeypatch.setattr(sslscope.train, "write_final_evaluation", lambda *a, **k: None)
    train(cfg, tmp_path / "one", progress=False)
    assert_same_training(tmp_path / "runs" / "vicreg", tmp_path / "one", tol=1e-4)


@pytest.mark.slow  # one torchrun launch stopped and one resumed: about 30 s
def test_sigterm_to_a_torchrun_job_stops_every_rank_at_one_step_with_a_checkpoint(tmp_path):
    """As a scheduler preempts a job: SIGTERM to every process of it (torchrun's agent, which
    passes it on as well, and both ranks). All ranks stop at the same step boundary, the
    checkpoint holds that step, no metrics row is past it, and the job resumes."""
    cfg_path = tmp_path / "vicreg.json"
    cfg_path.write_text(json.dumps(config_lib.to_dict(
        config_lib.replace(config("vicreg"), steps=100_000, checkpoint_every=100_000))))
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "sslscope",
               "train", "--config", str(cfg_path), "--run-dir", str(run), "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        metrics = run / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # torchrun's agent ends with its own SignalException (status 1); our ranks say one line.
    assert err.count("sslscope: interrupted (SIGTERM)") == 2, err[-3000:]
    assert re.search(r'File "[^"]*/sslscope/', err) is None, err[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted", info
    stopped = info["stopped_at"]
    _, header = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert header["info"]["step"] == info["checkpoint_step"] == stopped >= 3
    logged = [r["step"] for r in read_jsonl(metrics) if "train/loss" in r]
    assert logged == list(range(1, stopped + 1))  # none lost, none twice, none past the stop
    again = torchrun("-m", "sslscope", "train", "--resume", run, "--no-progress",
                     "--stop-at", stopped + 2)
    assert again.returncode == 0, again.stderr[-3000:]
    _, header = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert header["info"]["step"] == stopped + 2
