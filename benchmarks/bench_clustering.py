"""What the clustering anatomy costs per evaluation point, against the probes of the same point.

Command (writes the table to benchmarks/clustering.md as well as printing it):

    python benchmarks/bench_clustering.py [--repeats 3] [--steps 200] [--threads 2]

The demo config (VICReg, small CNN, digits) is trained for ``--steps`` steps with no consumer,
so the features are those of a network in training rather than of the initialisation. Then,
on that one network, each configuration's consumer is called ``--repeats`` times and timed,
alternating with the probes every run does at an evaluation point (linear probe with its
weight-decay search, kNN, NCC and k-means on h and z). The figure to quote is the median over
repeats of each configuration's time divided by the probes' time in the same repeat. The
one-time work of the first call (drawing the sample-level views, training the supervised
network of the random targets) is timed separately. With every option off (the default) no
consumer is built: a run does no new work.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sslscope import anatomy
from sslscope import config as config_lib
from sslscope.consumers import probes
from sslscope.data import load_dataset
from sslscope.observe import Snapshot
from sslscope.presets import demo
from sslscope.runs import RunFiles
from sslscope.train import train

CASES = {
    "class level": {"levels": "class"},
    "sample level (100 × 20 / 5)": {"levels": "sample"},
    "superclass level": {"levels": "superclass"},
    "random level (4 targets)": {"levels": "random"},
    "all levels": {"levels": "all"},
    "all levels, all 6 taps": {"levels": "all", "taps": "all"},
    "MINE, 5 seeds": {"mine_seeds": 5},
    "all levels, all taps, MINE 5 seeds (the study)": {"levels": "all", "taps": "all",
                                                       "mine_seeds": 5},
}


def main() -> None:
    """Time every configuration and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).with_name("clustering.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = config_lib.replace(demo(), steps=args.steps, warmup_steps=min(100, args.steps),
                              eval_points=0, instruments="", tensorboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        files = train(base, Path(tmp) / "trained", progress=False)
        from sslscope.operations import load_trained_parts

        data = load_dataset(base.dataset)
        parts = load_trained_parts(files, base, data, torch.device("cpu"))
        probe = probes(base, data, files)

        def seconds(consumer) -> float:
            start = time.perf_counter()
            consumer.consume(Snapshot(args.steps, parts, data, torch.device("cpu")))
            return time.perf_counter() - start

        seconds(probe)  # warm-up: the first optimiser use, first kernels
        rows = []
        for name, options in CASES.items():
            run_files = RunFiles(Path(tmp) / name.replace(" ", "_").replace("/", "-"))
            run_files.array("targets").parent.mkdir(parents=True)
            cfg = config_lib.replace(base, **options)
            consumer = anatomy.clustering(cfg, data, run_files)
            first = seconds(consumer)
            ratios, times, probe_times = [], [], []
            for _ in range(args.repeats):
                t_probe, t_case = seconds(probe), seconds(consumer)
                probe_times.append(t_probe)
                times.append(t_case)
                ratios.append(t_case / t_probe)
            rows.append((name, first, statistics.median(times), statistics.median(probe_times),
                         statistics.median(ratios), min(ratios), max(ratios)))
            print(rows[-1], flush=True)
    lines = [
        "# Cost of the clustering anatomy per evaluation point", "",
        f"`python benchmarks/bench_clustering.py --repeats {args.repeats} --steps {args.steps} "
        f"--threads {args.threads}` on {datetime.date.today()}, {platform.machine()}, torch "
        f"{torch.__version__}, {args.threads} threads. The demo network after {args.steps} "
        "steps; each configuration's consumer against the probes every run evaluates at the "
        "same point (linear probe with its search, kNN, NCC, k-means on h and z), alternated, "
        "median of the per-repeat ratios. First call: the one-time work (sample-level views, "
        "the random targets' supervised network). The default (every option off) builds no "
        "consumer and costs nothing.", "",
        "| configuration | first call (s) | per point (s) | probes (s) | ratio to the probes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, first, t, tp, ratio, lo, hi in rows:
        lines.append(f"| {name} | {first:.2f} | {t:.2f} | {tp:.2f} | {ratio:.2f} "
                     f"(min {lo:.2f}, max {hi:.2f}) |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
