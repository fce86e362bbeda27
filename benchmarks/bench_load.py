"""Training under CPU load: spin-waiting OpenMP threads against sslscope's thread choice.

Command (writes the table to benchmarks/load.md as well as printing it):

    python benchmarks/bench_load.py [--load 2] [--steps 20]

Runs `sslscope train --preset demo` (small CNN, batch 256) for ``--steps`` steps, idle and
beside ``--load`` busy processes (each a Python loop on one core: other trainings, in effect),
in two settings: "before", the behaviour before the fix (2 threads, OpenMP's default wait
policy, which spins), and "sslscope", the defaults now (the thread count from the cores the load
leaves free and, when some are taken, OMP_WAIT_POLICY=PASSIVE: sslscope.threads). The figure
is seconds per step from the second half of the run (the metrics' wall-clock times: start-up
and warm-up excluded), and the ratio loaded / idle of each setting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SETTINGS = {
    "before (2 threads, spinning)": {"env": {"OMP_WAIT_POLICY": ""}, "args": ["--threads", "2"]},
    "sslscope (free cores, passive if loaded)": {"env": {}, "args": []},
}


def seconds_per_step(env: dict[str, str], args: list[str], steps: int) -> tuple[float, int]:
    """Seconds per training step over the run's second half, and the threads it used."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "sslscope", "train", "--preset", "demo", "--steps",
                   str(steps), "--warmup-steps", "1", "--eval-points", "0", "--instruments", "",
                   "--log-every", "1", "--tensorboard", "false", "--no-progress", "--run-dir",
                   str(run), "--stop-at", str(steps - 1), *args]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
        subprocess.run(command, env={**clean, **env}, check=True, capture_output=True)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        times = {r["step"]: r["time"] for r in rows if "train/loss" in r}
        half = steps // 2
        threads = json.loads((run / "run.json").read_text())["threads"]
        return (times[steps - 1] - times[half]) / (steps - 1 - half), threads


def busy(n: int) -> list[subprocess.Popen]:
    """Start ``n`` processes that each keep one core busy."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(2)  # running before the measured run starts, as other jobs would be
    return procs


def main() -> None:
    """Time both settings idle, then loaded; write load.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=2, help="busy processes (default: 2)")
    parser.add_argument("--steps", type=int, default=20, help="steps per run (default: 20)")
    args = parser.parse_args()
    results = {}
    for name, s in SETTINGS.items():
        results[(name, "idle")] = seconds_per_step(s["env"], s["args"], args.steps)
    procs = busy(args.load)
    try:
        for name, s in SETTINGS.items():
            results[(name, "loaded")] = seconds_per_step(s["env"], s["args"], args.steps)
    finally:
        for p in procs:
            p.kill()
    lines = ["# Training under CPU load", "",
             f"`python benchmarks/bench_load.py --load {args.load} --steps {args.steps}` on "
             f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, torch "
             f"{torch.__version__}. `sslscope train --preset demo`, seconds per step over the "
             f"second half of the run; loaded: beside {args.load} busy processes (one core "
             "each) started 2 s before.", "",
             "| setting | threads idle / loaded | s / step idle | s / step loaded | "
             "loaded / idle |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in SETTINGS:
        (idle, t_idle), (loaded, t_loaded) = results[(name, "idle")], results[(name, "loaded")]
        lines.append(f"| {name} | {t_idle} / {t_loaded} | {idle:.3f} | {loaded:.3f} | "
                     f"{loaded / idle:.1f}× |")
    text = "\n".join(lines) + "\n"
    (Path(__file__).parent / "load.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
