"""Every objective at the same budget on the same data, with seeds: one table.

``sslscope study methods --out runs/methods`` trains each method of
:data:`sslscope.losses.METHODS` for each seed with the base config (small CNN, batch 256,
AdamW, the digits augmentation), then writes ``results.md`` with linear-probe, kNN, NCC and
k-means (Hungarian) test accuracy on the backbone output h as mean ± std over seeds, next to
the raw-pixel and random-initialisation baselines measured in the same runs, and
``report.html``: the runs side by side (:func:`sslscope.report.compare.build_comparison`),
self-contained.

The runs are a sweep over method × seed (:func:`sslscope.studies.sweep.run_sweep`), named
``<method>-seed<seed>`` under ``OUT/runs/``, so ``OUT/sweep.csv`` and ``sweep.json`` hold
every run's numbers too, and a killed study rerun keeps its finished runs. The run
directories are removed once the table is written, unless ``--keep-runs``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.errors import UserError
from sslscope.evaluate.suite import PROBES
from sslscope.files import atomic_write_text, read_json_object
from sslscope.losses import METHODS
from sslscope.runs import RunFiles
from sslscope.studies import Study
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.sweep import run_sweep

# What differs from the base config for a method, and why (printed under the table).
METHOD_OVERRIDES: dict[str, dict[str, Any]] = {
    # Multimodal MMCR learns here only with the batch above the embedding width (P > D);
    # at P = 256 < D = 512 it stays at its random-init accuracy. CLIP gets the same heads.
    "mmcr_multimodal": {"projector_dims": (512, 512, 64)},
    "clip": {"projector_dims": (512, 512, 64)},
}


def _row(runs: list[dict[str, Any]], name: str, probe: str) -> list[float]:
    return [100 * next(r for r in run["rows"] if r["name"] == name)[probe]["test_acc"]
            for run in runs]


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def compare_methods(
    out_dir: str | Path,
    *,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 500,
    device: str = "auto",
    keep_runs: bool = False,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> Path:
    """Train every method for every seed; write ``out_dir/results.md`` and ``report.html``.

    Args:
        out_dir: where the table, the sweep's results (and, with ``keep_runs``, the run
            directories) go.
        methods: which methods; default all of METHODS.
        seeds: one run per seed; the table gives mean ± sample std.
        steps: training steps per run (the warm-up is a tenth of it).
        device: as in the config.
        keep_runs: keep each run directory (reports, checkpoints) under out_dir/runs/.
        jobs: runs trained at once (child processes, cores / jobs threads each).
        log: one line per run started, skipped or done.

    Returns:
        The path of results.md.
    """
    out_dir = Path(out_dir)
    subset = methods is not None  # the command names them only when they were chosen
    methods = list(methods or METHODS)
    base = config_lib.replace(Config(), steps=steps, warmup_steps=steps // 10, eval_points=0,
                              device=device)
    sweep = run_sweep(base, {"method": methods}, out_dir, jobs=jobs, seeds=seeds,
                      extra=lambda cell: METHOD_OVERRIDES.get(cell["method"], {}),
                      name=lambda cell: f"{cell['method']}-seed{cell['seed']}",
                      page="report.html", log=log)
    rows = json.loads(sweep.read_text(encoding="utf-8"))["rows"]
    results: dict[str, list[dict[str, Any]]] = {method: [] for method in methods}
    seconds: dict[str, float] = {}
    for row in rows:  # method-major, seeds in order: the sweep's cell order
        results[row["method"]].append(read_json_object(RunFiles(out_dir / row["run_dir"])
                                                       .evaluation))
    for method in methods:
        seconds[method] = statistics.mean(r["wall_seconds"] for r in rows
                                          if r["method"] == method)
    # What the runs ran on, from the first run's run.json: the children, not this process.
    env = read_json_object(RunFiles(out_dir / rows[0]["run_dir"]).run_info) or {}
    if not keep_runs:
        shutil.rmtree(out_dir / "runs")

    first = results[methods[0]]

    def cells(runs: list[dict], row: str) -> str:
        return " | ".join(_fmt(_row(runs, row, probe)) for probe in PROBES)

    lines = [
        "# Every objective on digits at the same budget",
        "",
        f"Backbone output h of the small CNN; test accuracy (%) on the fixed 450-image test "
        f"split of a linear probe, weighted kNN (k = 20, T = 0.1), the nearest class centre "
        f"(NCC) and k-means (10 clusters, no labels, Hungarian-matched to the classes); mean ± "
        f"std over seeds {', '.join(map(str, seeds))}; {steps} steps of batch 256 each.",
        "",
        "| method | " + " | ".join(PROBES.values()) + " | wall s / run |",
        "| --- |" + " ---: |" * (len(PROBES) + 1),
        f"| raw pixels (no training) | {cells(first, 'raw pixels')} | |",
        f"| random-init small CNN | {cells(first, 'random init, backbone h')} | |",
    ]
    for method in methods:
        lines.append(f"| `{method}` | {cells(results[method], 'trained, backbone h')} "
                     f"| {seconds[method]:.0f} |")
    differences = [f"- `{m}`: {', '.join(f'{k}={v}' for k, v in o.items())}"
                   for m, o in METHOD_OVERRIDES.items() if m in methods]
    if differences:  # the heading only with something under it
        lines += ["", "Differences from the base config:", "", *differences]
    chosen = f" --methods {','.join(methods)}" if subset else ""
    lines += [
        "",
        f"Produced by `sslscope study methods --out {out_dir}{chosen} --steps {steps} --seeds "
        f"{','.join(map(str, seeds))}` with sslscope {env.get('sslscope_version')} "
        f"(git {str(env.get('git_sha'))[:8]}), torch {env.get('torch')}, on "
        f"{env.get('device_name')} ({env.get('threads')} threads). The random-init row is the "
        "first method's runs.",
        "",
    ]
    return atomic_write_text(out_dir / "results.md", "\n".join(lines))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/methods")
    parser.add_argument("--methods", help="comma-separated subset of the methods (default: all)")
    parser.add_argument("--steps", type=int, default=500,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep every run directory, with its report")
    add_jobs(parser, default=1)


def _run(args: argparse.Namespace) -> Path:
    methods = args.methods.split(",") if args.methods else None
    for name in methods or []:
        if name not in METHODS:
            raise UserError(f"unknown method '{name}'; choose from: {', '.join(METHODS)}")
    return compare_methods(args.out, methods=methods, seeds=parse_seeds(args.seeds),
                           steps=positive("--steps", args.steps), device=args.device,
                           keep_runs=args.keep_runs, jobs=positive("--jobs", args.jobs))


STUDY = Study(
    name="methods",
    help="every objective at the same budget, with seeds: one table",
    description="Train every objective (or --methods) for each seed at the same budget and write "
    "OUT/results.md\nwith linear-probe, kNN, NCC and k-means accuracy (mean ± std) and "
    "OUT/report.html,\nthe runs side by side. The runs are a sweep over method × seed "
    "(OUT/sweep.csv, sweep.json):\na rerun keeps finished runs while OUT/runs/ is there "
    "(always, with --keep-runs).",
    add_arguments=_add_arguments,
    run=_run,
)
