"""SIGTERM, what a cluster scheduler sends before preemption, stops `sslscope train` cleanly.

Targets asserted: the process stops at a step boundary with exit status 143 and one sentence
(no traceback); run.json says "interrupted" at the step its checkpoint holds; no metrics row
past that step; `--resume` then finishes the run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sslscope.checkpoint import read_checkpoint
from sslscope.files import read_jsonl

TINY = ["--preset", "smoke", "--backbone", "linear:8", "--instruments", "", "--eval-points", "0",
        "--device", "cpu", "--no-progress", "--log-every", "1", "--checkpoint-every", "100000"]


def test_sigterm_stops_at_a_step_boundary_with_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "sslscope", "train", *TINY, "--steps", "100000",
               "--warmup-steps", "0", "--run-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 120
        metrics = run / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    _, header = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert header["info"]["step"] == info["stopped_at"] >= 3
    assert max(row["step"] for row in read_jsonl(metrics)) == info["stopped_at"]
    finish = [sys.executable, "-m", "sslscope", "train", "--resume", str(run), "--no-progress",
              "--stop-at", str(info["stopped_at"] + 2)]
    done = subprocess.run(finish, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    _, header = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert header["info"]["step"] == info["stopped_at"] + 2


def test_ctrl_c_while_starting_is_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "sslscope", "train", "--help"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)  # importing torch takes seconds: the signal lands inside an import
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # the machine was fast enough to finish first: nothing to check
        return
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and err.strip().startswith("sslscope: interrupted"), err


def test_the_same_signal_twice_at_once_is_one_notice_a_later_one_aborts(monkeypatch):
    """A scheduler signalling every process and torchrun's agent passing it on reach a rank
    milliseconds apart: one notice. A second Ctrl-C a second later, or another signal, aborts."""
    from sslscope.errors import Interrupted
    from sslscope.train import GracefulInterrupt

    clock = {"now": 100.0}
    monkeypatch.setattr("sslscope.train.time.monotonic", lambda: clock["now"])
    with GracefulInterrupt() as interrupt:
        interrupt._handle(signal.SIGTERM, None)
        clock["now"] += 0.01
        interrupt._handle(signal.SIGTERM, None)  # the duplicate: ignored
        assert interrupt.requested and interrupt.signum == signal.SIGTERM
        clock["now"] += 1.0
        with pytest.raises(Interrupted) as aborted:
            interrupt._handle(signal.SIGTERM, None)
        assert aborted.value.signum == signal.SIGTERM
    with GracefulInterrupt() as interrupt:
        interrupt._handle(signal.SIGINT, None)
        with pytest.raises(Interrupted):
            interrupt._handle(signal.SIGTERM, None)  # another signal, however soon
