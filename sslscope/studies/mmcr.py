"""Seed 001's experiments: MMCR's capacity error, its double descent, compute scaling, multimodal.

``sslscope study mmcr --out runs/mmcr`` writes, as three sweeps of ordinary run directories
(:func:`sslscope.studies.sweep.run_sweep`; a rerun keeps finished runs):

- ``OUT/capacity/``: MMCR over a P × D × K grid (P images per batch, D the embedding width,
  K views), each run measuring the pretraining percent error PPE of z on a fixed batch of P
  images with its K views (the ``capacity`` instrument, ``instrument_batch = P``) at log-spaced
  steps. Its final PPE per cell asks whether the error peaks on the diagonal P = D, and its
  PPE against compute C = steps · P · K (forward passes) gets a fitted power law
  PPE(C) = E∞ + a · C^(−b) per cell (:mod:`sslscope.studies.mmcr_claims`).
- ``OUT/ablation/``: the local term λ ∈ {0, 5e-3} × K ∈ {2, 4, 8}: linear probe and kNN.
- ``OUT/multimodal/``: ``clip`` against ``mmcr_multimodal`` (the digits' top and bottom halves
  as the two modalities) at batch sizes from 16 to 512, at the same number of images seen:
  cross-modal retrieval top-1 both ways and the linear probe.

It then writes ``OUT/report.html`` (the random-centroid PPE surface of
:mod:`sslscope.theory.capacity` next to the measured one, the scaling curves and fits, the
ablation and the multimodal comparison), ``OUT/summary.md`` and ``OUT/summary.json`` (seed
001's claims next to what was measured, :mod:`sslscope.studies.claims`).

The defaults are a reduced grid that finishes in about 10 minutes on 2 CPU cores; ``--full``
is the grid of methods.md §2.3 (P, D ∈ {16 … 512}, K ∈ {2, 4, 8}), hours on a CPU.

References: Schaeffer et al., "Towards an Improved Understanding and Utilization of Maximum
Manifold Capacity Representations", 2024, arXiv:2406.09366 (PPE, the double descent, the
scaling law, multimodal MMCR); Yerxa et al., NeurIPS 2023, arXiv:2303.03307 (MMCR, λ); seed
001.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.parts import resolve_device
from sslscope.runs import environment
from sslscope.studies import Study
from sslscope.studies.claims import write_summary
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.sweep import plan, run_sweep

PROJECTOR_HIDDEN = 512  # z = Linear(512) → BN → ReLU → Linear(D): D is the grid's axis
# The multimodal pair gets the heads of `sslscope study methods` (multimodal MMCR needs P > D
# to learn at all on the digits; see that study's METHOD_OVERRIDES).
MULTIMODAL_HEADS = (512, 512, 64)


@dataclass(frozen=True)
class Grids:
    """The three grids of the study and their budgets.

    Attributes:
        ps, ds, ks: P (images per batch), D (embedding width) and K (views) of the capacity
            grid; every combination is one run of ``capacity_steps`` steps.
        ablation_lambdas, ablation_ks: λ (MMCR's ``local_weight``) × K of the ablation, at
            batch ``ablation_batch`` and width ``ablation_dim``, ``ablation_steps`` steps.
        multimodal_batches: the batch sizes of clip and mmcr_multimodal; each run sees
            ``multimodal_images`` images (steps = images / batch), so every batch size gets
            the same number of forward passes.
    """

    ps: tuple[int, ...]
    ds: tuple[int, ...]
    ks: tuple[int, ...]
    capacity_steps: int
    ablation_lambdas: tuple[float, ...]
    ablation_ks: tuple[int, ...]
    ablation_batch: int
    ablation_dim: int
    ablation_steps: int
    multimodal_batches: tuple[int, ...]
    multimodal_images: int


REDUCED = Grids(ps=(16, 64, 256), ds=(16, 64, 256), ks=(2, 4), capacity_steps=200,
                ablation_lambdas=(0.0, 5e-3), ablation_ks=(2, 4, 8), ablation_batch=64,
                ablation_dim=64, ablation_steps=300, multimodal_batches=(16, 64, 256, 512),
                multimodal_images=32_768)
FULL = Grids(ps=(16, 32, 64, 128, 256, 512), ds=(16, 32, 64, 128, 256, 512), ks=(2, 4, 8),
             capacity_steps=1000, ablation_lambdas=(0.0, 5e-3), ablation_ks=(2, 4, 8),
             ablation_batch=128, ablation_dim=128, ablation_steps=1000,
             multimodal_batches=(16, 32, 64, 128, 256, 512), multimodal_images=131_072)


def _base(steps: int, device: str, **overrides: Any) -> Config:
    return config_lib.replace(Config(), steps=steps, warmup_steps=max(1, steps // 10),
                              eval_points=0, device=device, tensorboard=False, **overrides)


def capacity_grid(grids: Grids, device: str) -> tuple[Config, dict[str, list[Any]]]:
    """MMCR (λ = 0, the authors' default) over P × D × K, PPE measured on P images, K views."""
    base = _base(grids.capacity_steps, device, method="mmcr", instruments="capacity",
                 instrument_points=20)
    axes = {"batch_size": list(grids.ps),
            "projector_dims": [(PROJECTOR_HIDDEN, d) for d in grids.ds],
            "n_views": list(grids.ks)}
    return base, axes


def ablation_grid(grids: Grids, device: str) -> tuple[Config, dict[str, list[Any]]]:
    """MMCR's local term λ × K at one batch size and width: the probes on h and z."""
    base = _base(grids.ablation_steps, device, method="mmcr", batch_size=grids.ablation_batch,
                 projector_dims=(PROJECTOR_HIDDEN, grids.ablation_dim), instruments="capacity",
                 instrument_points=8)
    return base, {"loss.local_weight": list(grids.ablation_lambdas),
                  "n_views": list(grids.ablation_ks)}


def multimodal_steps(grids: Grids, batch: int) -> int:
    """Steps for ``batch`` so that every batch size sees ``multimodal_images`` images."""
    return max(1, grids.multimodal_images // batch)


def multimodal_grid(grids: Grids, device: str) -> tuple[Config, dict[str, list[Any]]]:
    """The pair ``clip``, ``mmcr_multimodal`` at each batch size; every run sees as many images."""
    base = _base(grids.capacity_steps, device, projector_dims=MULTIMODAL_HEADS,
                 instruments="capacity", instrument_points=8)
    return base, {"method": ["clip", "mmcr_multimodal"],
                  "batch_size": list(grids.multimodal_batches)}


def _capacity_name(cell: dict[str, Any]) -> str:
    return (f"P{cell['batch_size']}-D{cell['projector_dims'][-1]}-K{cell['n_views']}"
            f"-seed{cell['seed']}")


def _ablation_name(cell: dict[str, Any]) -> str:
    return f"lambda{cell['loss.local_weight']:g}-K{cell['n_views']}-seed{cell['seed']}"


def _multimodal_name(cell: dict[str, Any]) -> str:
    return f"{cell['method']}-B{cell['batch_size']}-seed{cell['seed']}"


def run_study(out_dir: str | Path, *, full: bool = False, seeds: list[int] | None = None,
              device: str = "auto", jobs: int = 2, log: Any = print) -> Path:
    """Train (or keep) the three sweeps, then write the report and the claims list.

    Args:
        out_dir: the sweeps go to ``out_dir/{capacity,ablation,multimodal}``.
        full: the full grid (:data:`FULL`) instead of the reduced one (:data:`REDUCED`).
        seeds: one run per cell and seed; the claims use the mean over seeds.
        device: as in the config.
        jobs: runs trained at once, each with cores / jobs threads.
        log: one line per run started, skipped or done.

    Returns:
        The path of ``OUT/summary.md``.
    """
    from sslscope.studies.mmcr_claims import Results, claims_for
    from sslscope.studies.mmcr_report import results_markdown, write_report

    resolve_device(device)  # an unknown device is one sentence before any run starts
    out_dir = Path(out_dir)
    grids = FULL if full else REDUCED
    seeds = seeds or [0]
    plans = {
        "capacity": (*capacity_grid(grids, device), _capacity_name, None),
        "ablation": (*ablation_grid(grids, device), _ablation_name, "compare.html"),
        "multimodal": (*multimodal_grid(grids, device), _multimodal_name, "compare.html"),
    }

    def extra(grid: str):
        def overrides(cell: dict[str, Any]) -> dict[str, Any]:
            if grid == "multimodal":
                steps = multimodal_steps(grids, cell["batch_size"])
                return {"steps": steps, "warmup_steps": max(1, steps // 10),
                        "instrument_batch": cell["batch_size"]}
            # PPE on a fixed batch the size of the training batch: the bound's P.
            return {"instrument_batch": cell.get("batch_size", grids.ablation_batch)}
        return overrides

    # Every cell of every grid validates before the first run starts.
    for grid, (base, axes, name, _) in plans.items():
        plan(base, axes, seeds=seeds, extra=extra(grid), name=name)
    rows: dict[str, list[dict[str, Any]]] = {}
    for grid, (base, axes, name, page) in plans.items():
        log(f"== {grid} grid ==")
        sweep = run_sweep(base, axes, out_dir / grid, jobs=jobs, seeds=seeds,
                          extra=extra(grid), name=name, page=page, log=log)
        rows[grid] = json.loads(sweep.read_text(encoding="utf-8"))["rows"]
    results = Results.load(out_dir, rows, grids)
    claims = claims_for(results)
    command = (f"sslscope study mmcr --out {out_dir}" + (" --full" if full else "")
               + f" --seeds {','.join(map(str, seeds))}")
    write_report(out_dir, results, claims, command=command)
    return write_summary(out_dir, study="mmcr",
                         title="MMCR's capacity error, double descent, scaling and multimodal "
                         "MMCR against CLIP (seed 001) on digits",
                         command=command, environment=environment(resolve_device(device)),
                         claims=claims, body=results_markdown(results))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/mmcr", seeds="0")
    parser.add_argument("--full", action="store_true",
                        help="the full grid: P, D in {16..512} x K in {2,4,8}, 1,000 steps "
                        "(hours on a CPU)")
    add_jobs(parser, default=2)


def _run(args: argparse.Namespace) -> Path:
    return run_study(args.out, full=args.full, seeds=parse_seeds(args.seeds),
                     device=args.device, jobs=positive("--jobs", args.jobs))


STUDY = Study(
    name="mmcr",
    help="seed 001: MMCR's PPE over P x D x K, its peak at P = D, compute scaling, "
    "multimodal MMCR vs CLIP",
    description="Train MMCR on the digits over a P x D x K grid measuring the pretraining "
    "percent error\n(PPE) of z during training; the local term and views ablation; clip "
    "against\nmmcr_multimodal at batch sizes 16-512. Write OUT/report.html (random-centroid "
    "theory next\nto the measured PPE, power-law fits in compute), OUT/summary.md and "
    "OUT/summary.json\n(seed 001's claims). The runs are sweeps under OUT/capacity, "
    "OUT/ablation and\nOUT/multimodal; rerunning keeps finished runs. About 10 minutes on 2 "
    "CPU cores.",
    add_arguments=_add_arguments,
    run=_run,
)
