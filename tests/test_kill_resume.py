"""Kill anywhere and lose nothing: SIGKILL at random moments, resume, compare with a clean run.

Targets asserted: a 300-step run that checkpoints every step and records the spectrum
instrument, killed with SIGKILL at random moments (seeded: during training, checkpoint and
array writes, the final evaluation and the report) and resumed after each kill until it
finishes, ends with (a) every file on disk readable after every kill, (b) the same final
weights, instrument arrays and metrics rows (wall-clock times aside) as an uninterrupted run,
(c) no metrics row lost or duplicated, and no temporary file left.
"""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sslscope.checkpoint import read_checkpoint
from sslscope.files import read_json_object, read_jsonl, read_tensors

ARGS = ["--preset", "smoke", "--backbone", "linear:8", "--eval-points", "0", "--instruments",
        "spectrum", "--instrument-points", "20", "--steps", "300", "--warmup-steps", "0",
        "--checkpoint-every", "1", "--log-every", "1", "--tensorboard", "false", "--device",
        "cpu", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
KILLS = 8  # planned: 4 during start-up, 4 inside training, then 2 late ones


def launch(run: Path) -> subprocess.Popen:
    how = (["--resume", str(run), "--no-progress"] if (run / "config.json").is_file()
           else [*ARGS, "--run-dir", str(run)])
    return subprocess.Popen([sys.executable, "-m", "sslscope", "train", *how], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def metrics_lines(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def checkpoint_step(run: Path) -> int | None:
    path = run / "checkpoints" / "last.safetensors"
    return read_checkpoint(path)[1]["info"]["step"] if path.is_file() else None


def readable(run: Path) -> None:
    """Every file a run directory holds loads (a kill never leaves a half-written one)."""
    for path in run.rglob("*"):
        if path.suffix == ".json":
            read_json_object(path)
        elif path.suffix == ".jsonl":
            read_jsonl(path)
        elif path.suffix == ".safetensors":
            (read_checkpoint(path) if path.parent.name == "checkpoints"
             else read_tensors(path, "corrupt"))


def rows(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(run / "metrics.jsonl")]


@pytest.mark.slow  # about 45 s: one clean run and ten killed and resumed launches
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path):
    clean = tmp_path / "clean"
    done = subprocess.run([sys.executable, "-m", "sslscope", "train", *ARGS, "--run-dir",
                           str(clean)], env=ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    run, rng, kills, deadline = tmp_path / "killed", random.Random(0), 0, time.monotonic() + 240
    mid_training = 0  # kills that found a checkpoint strictly between the first and last step
    rows_at = sorted(rng.sample(range(10, 290), KILLS // 2))  # metrics lines at which to kill
    plan = [p for pair in zip([("after", rng.uniform(0.3, 3.5)) for _ in rows_at],
                              [("rows", n) for n in rows_at], strict=True) for p in pair]
    plan += [("after", 4.5), ("after", 6.0)]  # the final evaluation and the report
    while time.monotonic() < deadline:
        proc = launch(run)
        if plan:
            how, when = plan.pop(0)
            if how == "after":  # start-up (about 3 s), evaluation and report (after about 4 s)
                time.sleep(when)
            else:  # inside training (about 1 s, a checkpoint written every step)
                while proc.poll() is None and metrics_lines(run) < when:
                    time.sleep(0.002)
            if proc.poll() is None:
                proc.kill()
                kills += 1
        _, err = proc.communicate(timeout=120)
        if run.exists():
            readable(run)
            mid_training += 0 < (checkpoint_step(run) or 0) < 300 and proc.returncode == -9
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, err.decode()
    assert kills >= KILLS // 2 and mid_training >= 2 and proc.returncode == 0, (kills,
                                                                                mid_training)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert not list(run.rglob("*.tmp"))
    a, _ = read_checkpoint(clean / "checkpoints" / "last.safetensors")
    b, _ = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("spectrum", "final_embeddings"):
        x = read_tensors(clean / "arrays" / f"{name}.safetensors", "")
        y = read_tensors(run / "arrays" / f"{name}.safetensors", "")
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name
    assert rows(run) == rows(clean)
    steps = [r["step"] for r in rows(run) if "train/loss" in r]
    assert steps == list(range(1, 301))  # none lost, none twice
