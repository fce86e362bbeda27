"""I-Con's experiments on the digits: the equivalences, debiasing, InfoNCE clustering, maps.

``sslscope study icon --out runs/icon`` writes, besides the runs:

- the equivalence table (``sslscope icon-table``): every named method as an I-Con loss against
  its own formula, in float64;
- the debias sweep: ``--method icon`` with SimCLR's Gaussian q and t-SimCLR's Student-t q
  (ν = 2, as the paper's App. A), α ∈ {0, 0.2, 0.4, 0.6} on both sides (p and q, the paper's
  best setting), 3 seeds each, linear and kNN probes of h; ordinary run directories under
  ``OUT/runs/`` (a rerun keeps finished ones) and ``OUT/sweep.csv``;
- the clustering ladder: on the frozen h of each seed's SimCLR (α = 0) model, debiased InfoNCE
  clustering with augmentations + kNN (k = 3) + walks against k-means, and the ablation rungs
  of the paper's Table 3 (``OUT/clustering/seed<s>.json``);
- the maps: non-parametric and parametric SNE and t-SNE of the digits through I-Con, next to
  scikit-learn's t-SNE, with trustworthiness at k = 10 (``OUT/maps/``);

then ``OUT/report.html``, ``OUT/summary.md`` and ``OUT/summary.json`` (the claims list).

Reference: Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
Representation Learning", ICLR 2025, arXiv:2504.16929 (Table 1, §3.3, §5, Tables 3–4, App. A);
methods.md §5.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.files import atomic_write_json, read_json_object
from sslscope.parts import resolve_device
from sslscope.runs import environment
from sslscope.studies import Study
from sslscope.studies.claims import write_summary
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.sweep import Cell, run_cells

ALPHAS = (0.0, 0.2, 0.4, 0.6)
# Kernel name → the learned kernel's loss options (App. A: t-SimCLR's Student-t with ν = 2).
KERNELS: dict[str, dict[str, Any]] = {
    "SimCLR": {"q": "gaussian"},
    "t-SimCLR": {"q": "student_t", "dof": 2.0},
}
CLUSTERED = "SimCLR"  # whose α = 0 models the clustering ladder clusters


def cell_name(kernel: str, alpha: float, seed: int) -> str:
    """The run directory name of one sweep cell, e.g. ``simclr-alpha0.2-seed1``."""
    return f"{kernel.lower()}-alpha{alpha:g}-seed{seed}"


def variant_config(kernel: str, alpha: float, *, steps: int, seed: int, device: str) -> Config:
    """The base config as ``--method icon`` with the kernel's q and α on both sides."""
    return config_lib.validate(config_lib.replace(
        Config(), method="icon",
        loss_kwargs={**KERNELS[kernel], "debias": alpha, "debias_q": alpha}, steps=steps,
        warmup_steps=max(1, steps // 10), eval_points=0, instruments="", tensorboard=False,
        seed=seed, device=device))


def clustering_results(out_dir: Path, seeds: list[int], *, steps: int,
                       log: Any = print) -> dict[int, dict]:
    """The ladder on each seed's clustered model (read back when its settings match)."""
    from sslscope.icon.clustering import LADDER
    from sslscope.studies.icon_clusters import COPIES, feature_bank, ladder

    results = {}
    for seed in seeds:
        run = cell_name(CLUSTERED, 0.0, seed)
        path = out_dir / "clustering" / f"seed{seed}.json"
        settings = {"run": run, "copies": COPIES, "steps": steps, "ladder": LADDER}
        saved = read_json_object(path) if path.is_file() else None
        if saved and saved.get("settings") == settings:
            log(f"clustering {run}: finished, skipped")
            results[seed] = saved
            continue
        log(f"clustering {run}: k-means and the ladder on its frozen h")
        clean, views, labels = feature_bank(out_dir / "runs" / run, seed=seed)
        results[seed] = {"settings": settings, "images": int(labels.size),
                         "accuracy": ladder(clean, views, labels, steps=steps, seed=seed)}
        atomic_write_json(path, results[seed])
    return results


def run_study(out_dir: str | Path, *, steps: int = 200, seeds: list[int] | None = None,
              device: str = "auto", jobs: int = 2, cluster_steps: int | None = None,
              map_steps: int | None = None, map_points: int | None = None,
              log: Any = print) -> Path:
    """Train (or keep) the sweep, cluster, draw the maps, then write the report and claims.

    ``cluster_steps``, ``map_steps`` and ``map_points`` (all the digits by default) shrink
    the clustering head's and the maps' optimisation, for tests; the defaults are
    :data:`sslscope.studies.icon_clusters.STEPS` and :data:`sslscope.studies.icon_maps.STEPS`.

    Returns:
        The path of ``OUT/summary.md``.
    """
    from sslscope.icon.table import equivalence_rows
    from sslscope.studies import icon_clusters, icon_maps
    from sslscope.studies.icon_claims import claims_for, load_results
    from sslscope.studies.icon_report import results_markdown, write_report

    resolve_device(device)  # an unknown device is one sentence before any run starts
    out_dir = Path(out_dir)
    seeds = seeds or [0, 1, 2]
    cells = [Cell(cell_name(k, a, s), {"kernel": k, "alpha": a, "seed": s},
                  variant_config(k, a, steps=steps, seed=s, device=device))
             for k in KERNELS for a in ALPHAS for s in seeds]
    sweep = run_cells(cells, out_dir, cells[0].cfg, jobs=jobs, page=None, log=log)
    rows = json.loads(sweep.read_text(encoding="utf-8"))["rows"]
    clustering = clustering_results(out_dir, seeds, log=log,
                                    steps=cluster_steps or icon_clusters.STEPS)
    maps = icon_maps.compute_maps(out_dir / "maps", steps=map_steps or icon_maps.STEPS,
                                  points=map_points, log=log)
    results = load_results(out_dir, rows, clustering, maps, equivalence_rows())
    claims = claims_for(results)
    command = (f"sslscope study icon --out {out_dir} --steps {steps} --seeds "
               f"{','.join(map(str, seeds))}")
    write_report(out_dir, results, claims, maps, command=command)
    return write_summary(out_dir, study="icon",
                         title="I-Con's equivalences, debiasing, clustering and maps on digits",
                         command=command, environment=environment(resolve_device(device)),
                         claims=claims, body=results_markdown(results, steps=steps))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/icon")
    parser.add_argument("--steps", type=int, default=200,
                        help="steps per training run (default: %(default)s)")
    add_jobs(parser, default=2)


def _run(args: argparse.Namespace) -> Path:
    return run_study(args.out, steps=positive("--steps", args.steps),
                     seeds=parse_seeds(args.seeds), device=args.device,
                     jobs=positive("--jobs", args.jobs))


STUDY = Study(
    name="icon",
    help="I-Con: the equivalence table, debiasing, InfoNCE clustering, SNE and t-SNE maps",
    description="Check the I-Con equivalences; train --method icon with SimCLR's Gaussian and "
    "t-SimCLR's Student-t\nkernel at debias alpha 0, 0.2, 0.4, 0.6 (3 seeds each); cluster "
    "the SimCLR models' frozen\nfeatures with debiased InfoNCE clustering against k-means; draw "
    "SNE and t-SNE maps of the\ndigits through I-Con next to scikit-learn's. Writes "
    "OUT/report.html, OUT/summary.md and\nOUT/summary.json (the claims list). Runs go to "
    "OUT/runs/; rerunning keeps finished work.\nAbout 9 minutes on 2 CPU cores.",
    add_arguments=_add_arguments,
    run=_run,
)
