"""Seed 000's experiments: the stepwise nature of self-supervised learning, on the digits.

``sslscope study stepwise --out runs/stepwise`` trains, as ordinary run directories under
``OUT/runs/``:

(a) ``linear``: the theory's exact model (f(x) = W(x − x̄), linear Barlow Twins, fixed augmented
    pairs of every training digit, full-batch plain gradient descent from small random init).
    Its ``theory.json`` holds Γ's eigenvalues, the init scale, the lr and the predicted and
    measured step times (:func:`sslscope.theory.linear_run.predict`);
(b) ``cnn-<method>``: the small CNN with its last layer ×0.01 for ``barlow_twins_linear``,
    ``vicreg``, ``nt_xent`` and ``byol`` (which the paper says shows it less clearly);
(c) ``linear-precondition`` and ``cnn-barlow_twins_linear-precondition``: the same with the
    eigen-preconditioned embedding gradient (:mod:`sslscope.precondition`).

It also compares the embeddings predicted from a small network's empirical NTK with the trained
ones (:mod:`sslscope.theory.ntk_experiment`). It writes ``OUT/report.html`` (the paper's
Figures 1–3 on our data, the table of predicted against measured step times),
``OUT/summary.md`` and ``OUT/summary.json`` with the claims list. Rerunning skips finished runs.

Reference: Simon, Knutins, Ziyin, Geisz, Fetterman & Albrecht, "On the Stepwise Nature of
Self-Supervised Learning", ICML 2023, arXiv:2303.15438; seed 000 (the BAIR blog post).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.data import load_dataset
from sslscope.errors import UserError
from sslscope.files import atomic_write_json
from sslscope.parts import resolve_device
from sslscope.runs import environment
from sslscope.studies import Study
from sslscope.studies.claims import write_summary
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.runner import Job, run_jobs

CNN_METHODS = ("barlow_twins_linear", "vicreg", "nt_xent", "byol")
# SGD at a constant rate from small init, per method, measured on the digits at 800 steps.
# lr 0.01 is near the largest stable rate (barlow_twins_linear diverges at 0.03, VICReg at 0.2).
# VICReg gets momentum 0.9: its variance hinge is met by the first direction alone, and the
# weak covariance term (weight 1 against 25) then adds one direction at lr 0.01 in 800 plain
# steps; with momentum it adds six, in separate steps. Momentum makes NT-Xent's and BYOL's
# steps bunch into one (all modes within a few steps), so they keep plain gradient descent.
CNN_OPTIMISER = {
    "barlow_twins_linear": {"lr": 0.01, "momentum": 0.0},
    "vicreg": {"lr": 0.01, "momentum": 0.9},
    "nt_xent": {"lr": 0.01, "momentum": 0.0},
    "byol": {"lr": 0.01, "momentum": 0.0},
}
PRECONDITION = 0.1  # ε of the speed-up; the closed form predicts ≈ 6× earlier steps at 0.01 init

# Plain gradient descent at a constant rate, the theory's optimiser, for every run.
PLAIN_GD = {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0, "warmup_steps": 0,
            "final_lr_fraction": 1.0, "fixed_views": True, "init_scale": 0.01,
            "eval_points": 0}


def linear_config(n_train: int, *, full: bool, seed: int, device: str) -> Config:
    """(a): linear:8 (linear:10 full), 1,500 (4,000) full-batch steps at lr 0.005.

    Γ's largest eigenvalue is 6.5 on the centred digits, so 8 λ_1 lr ≈ 0.26 per step: stable,
    and fine enough in time for the closed form (a flow) to describe the steps.
    """
    steps = 4000 if full else 1500
    return config_lib.replace(
        Config(), **PLAIN_GD, method="barlow_twins_linear",
        backbone=f"linear:{10 if full else 8}", projector_dims=(), lr=0.005, steps=steps,
        batch_size=n_train, instrument_batch=n_train, instruments="spectrum",
        instrument_points=300 if full else 150, log_every=1, checkpoint_every=steps,
        seed=seed, device=device)


def cnn_config(method: str, *, full: bool, seed: int, device: str) -> Config:
    """(b): the small CNN, z = Linear(h) ×0.01 (d = 16), batch 256, 800 (3,000) steps."""
    steps = 3000 if full else 800
    return config_lib.replace(
        Config(), **{**PLAIN_GD, **CNN_OPTIMISER[method]}, method=method, backbone="small_cnn",
        projector_dims=(16,), steps=steps, batch_size=256, instruments="spectrum,geometry",
        # Denser than the default 40 points: late steps of a log schedule are ~18 % apart, too
        # coarse for modes that arrive 7 % apart (barlow_twins_linear's 3rd and 4th).
        instrument_points=200 if full else 100, log_every=5, seed=seed, device=device)


def jobs(n_train: int, *, full: bool, seeds: list[int], device: str,
         precondition: float = PRECONDITION) -> list[Job]:
    """Every run of the study, named ``<experiment>-seed<seed>``."""
    out = []
    for seed in seeds:
        linear = linear_config(n_train, full=full, seed=seed, device=device)
        out.append(Job(f"linear-seed{seed}", linear))
        out.append(Job(f"linear-precondition-seed{seed}",
                       config_lib.replace(linear, precondition=precondition)))
        for method in CNN_METHODS:
            out.append(Job(f"cnn-{method}-seed{seed}",
                           cnn_config(method, full=full, seed=seed, device=device)))
        bt = cnn_config("barlow_twins_linear", full=full, seed=seed, device=device)
        out.append(Job(f"cnn-barlow_twins_linear-precondition-seed{seed}",
                       config_lib.replace(bt, precondition=precondition)))
    return out


def run_study(out_dir: str | Path, *, full: bool = False, seeds: list[int] | None = None,
              device: str = "auto", parallel: int = 2, precondition: float = PRECONDITION,
              log: Any = print) -> Path:
    """Train (or keep) every run, then write theory.json, the report and the summary.

    Returns:
        The path of ``OUT/summary.md``.
    """
    from sslscope.studies.stepwise_claims import claims_and_results
    from sslscope.studies.stepwise_report import write_report
    from sslscope.theory.linear_run import predict

    out_dir = Path(out_dir)
    seeds = seeds or [0]
    n_train = load_dataset("digits", Config().data_dir).ssl_images().shape[0]
    runs = run_jobs(jobs(n_train, full=full, seeds=seeds, device=device,
                         precondition=precondition), out_dir / "runs", parallel=parallel,
                    log=log)
    for name, files in runs.items():
        if name.startswith("linear"):
            atomic_write_json(files.root / "theory.json", predict(files.root).as_dict())
    claims, results = claims_and_results(runs, seeds=seeds, full=full, log=log)
    command = (f"sslscope study stepwise --out {out_dir}" + (" --full" if full else "")
               + f" --seeds {','.join(map(str, seeds))}")
    env = environment(resolve_device(device))
    write_report(out_dir, runs, claims, results, seeds=seeds, command=command)
    return write_summary(out_dir, study="stepwise",
                         title="The stepwise nature of SSL (seed 000) on the digits",
                         command=command, environment=env, claims=claims,
                         body=results["markdown"])


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/stepwise", seeds="0")
    parser.add_argument("--full", action="store_true",
                        help="the full-size version: d = 10 for the linear model, 3,000 CNN "
                        "steps, denser instruments (about 40 min on 2 CPU cores)")
    add_jobs(parser, default=2)
    parser.add_argument("--precondition", type=float, default=PRECONDITION,
                        help="ε of the speed-up runs (default: %(default)s)")


def _run(args: argparse.Namespace) -> Path:
    if not args.precondition > 0:
        raise UserError(f"--precondition must be positive, got {args.precondition}")
    return run_study(args.out, full=args.full, seeds=parse_seeds(args.seeds),
                     device=args.device, parallel=positive("--jobs", args.jobs),
                     precondition=args.precondition)


STUDY = Study(
    name="stepwise",
    help="seed 000: the linear theory against its runs, the staircase in a CNN, the speed-up",
    description="Train the stepwise theory's linear model and the small CNN from small init "
    "(barlow_twins_linear,\nvicreg, nt_xent, byol), with and without the eigen-preconditioned "
    "speed-up; compare\nmeasured and predicted step times and an NTK prediction; write "
    "OUT/report.html,\nOUT/summary.md and OUT/summary.json (the claims list). Runs go to "
    "OUT/runs/;\nrerunning skips finished runs.",
    add_arguments=_add_arguments,
    run=_run,
)
