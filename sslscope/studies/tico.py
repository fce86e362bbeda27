"""Seed 003's proposal: VICReg with TiCo's EMA covariance term, against VICReg and TiCo.

``sslscope study tico --out runs/tico`` trains, at the same budget on the digits (the base
config: small CNN, batch 256, AdamW), three seeds of each variant, one factor at a time around
the recommended hybrid of methods.md §4.3 (off-diagonal, raw centred embeddings, ν_h = 2ν):

- ``vicreg`` and ``tico``, the two ends;
- ``hybrid-beta{0,0.5,0.9,0.99}``: the EMA weight β (β = 0 is VICReg exactly, tested to 1e-10);
- ``hybrid-beta0.9-diag``: the diagonal of tr(C B) kept (it fights VICReg's variance hinge);
- ``hybrid-beta0.9-l2``: the covariance term on L2-normalised copies (TiCo's own form).

Every run has the spectrum instrument on, so the report shows how the covariance term changes
what is learned (the effective rank of z over training, the final covariance spectrum), not only
the probes. It writes ``OUT/report.html``, ``OUT/summary.md`` and ``OUT/summary.json`` (the
claims list), and ``OUT/sweep.csv`` / ``sweep.json`` with every run's numbers. The runs are
ordinary run directories under ``OUT/runs/``; a rerun keeps finished ones.

References: Bardes, Ponce & LeCun, "VICReg", ICLR 2022; Zhu, Liu & Huang, "TiCo: Transformation
Invariance and Covariance Contrast for Self-Supervised Visual Representation Learning", 2022,
arXiv:2206.10698; seed 003 and methods.md §4.3.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.parts import resolve_device
from sslscope.runs import environment
from sslscope.studies import Study
from sslscope.studies.claims import write_summary
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.sweep import Cell, run_cells

# Variant name → (method, loss options): one factor at a time around hybrid-beta0.9.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "vicreg": ("vicreg", {}),
    "hybrid-beta0": ("vicreg_tico", {"beta": 0.0}),
    "hybrid-beta0.5": ("vicreg_tico", {"beta": 0.5}),
    "hybrid-beta0.9": ("vicreg_tico", {"beta": 0.9}),
    "hybrid-beta0.99": ("vicreg_tico", {"beta": 0.99}),
    "hybrid-beta0.9-diag": ("vicreg_tico", {"beta": 0.9, "offdiag_only": False}),
    "hybrid-beta0.9-l2": ("vicreg_tico", {"beta": 0.9, "cov_embedding": "l2"}),
    "tico": ("tico", {}),
}


def variant_config(variant: str, *, steps: int, seed: int, device: str) -> Config:
    """The base config with the variant's method and loss options, spectrum instrument on."""
    method, loss = VARIANTS[variant]
    return config_lib.validate(config_lib.replace(
        Config(), method=method, loss_kwargs=dict(loss), steps=steps,
        warmup_steps=max(1, steps // 10), eval_points=0, instruments="spectrum",
        instrument_points=16, tensorboard=False, seed=seed, device=device))


def run_study(out_dir: str | Path, *, steps: int = 300, seeds: list[int] | None = None,
              device: str = "auto", jobs: int = 2, log: Any = print) -> Path:
    """Train (or keep) every variant for every seed, then write the report and the claims.

    Returns:
        The path of ``OUT/summary.md``.
    """
    from sslscope.studies.tico_claims import claims_for, load_results
    from sslscope.studies.tico_report import results_markdown, write_report

    resolve_device(device)  # an unknown device is one sentence before any run starts
    out_dir = Path(out_dir)
    seeds = seeds or [0, 1, 2]
    cells = [Cell(f"{v}-seed{s}", {"variant": v, "seed": s},
                  variant_config(v, steps=steps, seed=s, device=device))
             for v in VARIANTS for s in seeds]
    sweep = run_cells(cells, out_dir, cells[0].cfg, jobs=jobs, page=None, log=log)
    results = load_results(out_dir, json.loads(sweep.read_text(encoding="utf-8"))["rows"])
    claims = claims_for(results)
    command = (f"sslscope study tico --out {out_dir} --steps {steps} --seeds "
               f"{','.join(map(str, seeds))}")
    write_report(out_dir, results, claims, command=command)
    return write_summary(out_dir, study="tico",
                         title="VICReg with TiCo's EMA covariance term (seed 003) on digits",
                         command=command, environment=environment(resolve_device(device)),
                         claims=claims, body=results_markdown(results, steps=steps))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/tico")
    parser.add_argument("--steps", type=int, default=300,
                        help="steps per run (default: %(default)s)")
    add_jobs(parser, default=2)


def _run(args: argparse.Namespace) -> Path:
    return run_study(args.out, steps=positive("--steps", args.steps),
                     seeds=parse_seeds(args.seeds), device=args.device,
                     jobs=positive("--jobs", args.jobs))


STUDY = Study(
    name="tico",
    help="seed 003: VICReg against its TiCo-covariance hybrid (beta, diagonal, l2) and TiCo",
    description="Train VICReg, TiCo and the VICReg-TiCo hybrid (beta in {0, 0.5, 0.9, 0.99}, "
    "the diagonal kept,\nthe L2-normalised covariance) on the digits, 3 seeds each, with the "
    "spectrum instrument;\nwrite OUT/report.html, OUT/summary.md and OUT/summary.json (the "
    "claims list) and\nOUT/sweep.csv. Runs go to OUT/runs/; rerunning keeps finished ones. "
    "About 8 minutes on\n2 CPU cores (300 steps per run).",
    add_arguments=_add_arguments,
    run=_run,
)
