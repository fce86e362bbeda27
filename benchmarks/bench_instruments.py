"""What the instruments cost: the demo trained with its default instruments versus none.

Command (writes the table to benchmarks/instruments.md as well as printing it):

    python benchmarks/bench_instruments.py [--pairs 3] [--steps 800] [--threads 2]

Each pair trains the demo config (VICReg, small CNN, digits) twice in this process, A then B,
once with the default instruments (spectrum and geometry at about 40 log-spaced steps on a
fixed batch of 1,024 images) and once with ``instruments=""``; probes are evaluated at the
same steps in both, so the difference is the instruments alone. The order alternates between
pairs so that a drift of the machine's speed does not favour one side, and an untimed short
run with the instruments on comes first, so that neither side pays the process's one-time
costs (first use of each kernel, the data set's load). The figure to quote is the median of the
per-pair ratios.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sslscope import config as config_lib
from sslscope.presets import demo
from sslscope.train import train


def timed_run(cfg: config_lib.Config, run_dir: Path) -> float:
    """Wall seconds of one training run from scratch (evaluation included)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    train(cfg, run_dir, progress=False)
    return time.perf_counter() - start


def main() -> None:
    """Time the pairs, print a markdown table and write benchmarks/instruments.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=800, help="the demo's 800 by default")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (cores / jobs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("instruments.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    on = config_lib.replace(demo(), steps=args.steps, device="cpu", tensorboard=False)
    off = config_lib.replace(on, instruments="")
    ratios, times_on, times_off = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        timed_run(config_lib.replace(on, steps=50, warmup_steps=5, instrument_points=5),
                  Path(tmp) / "warm-up")
        for pair in range(args.pairs):
            order = [("on", on), ("off", off)] if pair % 2 == 0 else [("off", off), ("on", on)]
            seconds = {name: timed_run(cfg, Path(tmp) / name) for name, cfg in order}
            times_on.append(seconds["on"])
            times_off.append(seconds["off"])
            ratios.append(seconds["on"] / seconds["off"])
            print(f"pair {pair}: with {seconds['on']:.1f} s, without {seconds['off']:.1f} s, "
                  f"ratio {ratios[-1]:.3f}", flush=True)
    ratio = statistics.median(ratios)
    table = (
        "| demo, steps | with instruments (s) | without (s) | ratio, median of pairs | "
        "overhead |\n| ---: | ---: | ---: | ---: | ---: |\n"
        f"| {args.steps} | {statistics.median(times_on):.1f} | {statistics.median(times_off):.1f} "
        f"| {ratio:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}) | "
        f"{100 * (ratio - 1):+.1f} % |\n"
    )
    header = (
        "# Cost of the default instruments\n\n"
        f"`python benchmarks/bench_instruments.py --pairs {args.pairs} --steps {args.steps} "
        f"--threads {args.threads}` on {datetime.date.today()}, {platform.machine()}, torch "
        f"{torch.__version__}, {args.threads} threads. Whole training runs (final evaluation "
        "included) of the demo config with the default instruments (spectrum, geometry; about "
        "40 log-spaced steps, 1,024 fixed images) and without, after an untimed warm-up run; "
        "target: at most 10 % overhead.\n\n"
    )
    print(table)
    args.out.write_text(header + table)


if __name__ == "__main__":
    main()
