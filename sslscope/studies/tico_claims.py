"""The TiCo study's numbers (per variant, over seeds) and seed 003's claims next to them.

Reads the sweep rows and each run's ``metrics.jsonl`` and ``arrays/spectrum.safetensors``;
trains nothing. Accuracy differences are compared on the pooled test cases of all seeds
(:func:`sslscope.studies.claims.significantly`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslscope.data import load_dataset
from sslscope.files import read_jsonl, read_tensors
from sslscope.runs import RunFiles
from sslscope.studies.claims import Z_SIGNIFICANT, Claim, significantly, verdict

SOURCE = "seed 003; methods.md §4.3"
PROBES = {"h/linear/test_acc": "linear", "h/knn/test_acc": "kNN"}


@dataclass
class Variant:
    """One variant over its seeds: final probes, the rank of z over training, its spectrum."""

    name: str
    accuracy: dict[str, list[float]]  # probe column → one value per seed
    eff_rank: list[float]  # final effective rank of z's covariance, per seed
    steps: list[int]  # instrument steps
    eff_rank_curve: list[float]  # mean over seeds at each instrument step
    spectrum: np.ndarray  # final z covariance eigenvalues, mean over seeds, descending

    def mean(self, probe: str) -> float:
        return statistics.mean(self.accuracy[probe])

    def spread(self, probe: str) -> float:
        values = self.accuracy[probe]
        return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class Results:
    """Every variant, in the study's order, and the test cases behind one accuracy."""

    variants: dict[str, Variant]
    n_test: int
    seeds: int

    def compare(self, a: str, b: str, probe: str = "h/linear/test_acc") -> bool | None:
        """Variant ``a`` better (True), worse (False) or tied with ``b`` on the pooled seeds."""
        return significantly(self.variants[a].mean(probe), self.variants[b].mean(probe),
                             self.n_test * self.seeds)


def _variant(name: str, rows: list[dict[str, Any]], out_dir: Path) -> Variant:
    curves, spectra = [], []
    for row in rows:
        files = RunFiles(out_dir / row["run_dir"])
        logged = [r for r in read_jsonl(files.metrics) if "inst/z/eff_rank" in r]
        curves.append(([int(r["step"]) for r in logged],
                       [float(r["inst/z/eff_rank"]) for r in logged]))
        spectra.append(read_tensors(files.array("spectrum"), "delete the run to train it again")
                       ["z/cov"][-1].numpy())
    steps = curves[0][0]
    return Variant(
        name, {p: [float(r[p]) for r in rows] for p in PROBES},
        [float(r["inst/z/eff_rank"]) for r in rows], steps,
        [statistics.mean(c[1][i] for c in curves) for i in range(len(steps))],
        np.mean(spectra, axis=0))


def load_results(out_dir: Path, rows: list[dict[str, Any]]) -> Results:
    """The variants of the sweep rows (each row has ``variant`` and ``seed``)."""
    names = list(dict.fromkeys(r["variant"] for r in rows))
    variants = {n: _variant(n, [r for r in rows if r["variant"] == n], out_dir) for n in names}
    cfg = RunFiles(out_dir / rows[0]["run_dir"]).load_config()
    n_test = int(load_dataset(cfg.dataset, cfg.data_dir).test_y.shape[0])
    return Results(variants, n_test, len({r["seed"] for r in rows}))


def _pct(results: Results, name: str, probe: str = "h/linear/test_acc") -> str:
    v = results.variants[name]
    return f"{100 * v.mean(probe):.2f} ± {100 * v.spread(probe):.2f}"


def claims_for(r: Results) -> list[Claim]:
    """Seed 003's claims and methods.md §4.3's recommendations, each with its verdict."""
    rule = (f"linear test accuracy of h, mean ± std over {r.seeds} seeds; a difference counts "
            f"at {Z_SIGNIFICANT:g} standard errors of the {r.seeds} × {r.n_test} pooled test "
            "cases")
    ties = [r.compare("hybrid-beta0", "vicreg", p) for p in PROBES]
    betas = [b for b in r.variants if b.startswith("hybrid-beta") and b.count("-") == 1
             and b != "hybrid-beta0"]
    better = [r.compare(b, "vicreg") for b in betas]
    helps = (True if any(o is True for o in better) and not any(o is False for o in better)
             else False if all(o is False for o in better) else None)
    diag = r.compare("hybrid-beta0.9", "hybrid-beta0.9-diag")
    l2 = r.compare("hybrid-beta0.9", "hybrid-beta0.9-l2")
    return [
        Claim("beta0-is-vicreg", "At β = 0, with ν_h = 2ν and the off-diagonal raw form, the "
              "hybrid is VICReg", SOURCE, "by construction (loss and gradient; tested to 1e-10)",
              {"ties": sum(o is None for o in ties), "of": len(ties)},
              "agrees" if all(o is None for o in ties) else "differs",
              f"{rule}: hybrid β = 0 {_pct(r, 'hybrid-beta0')} vs VICReg {_pct(r, 'vicreg')} "
              f"(kNN {_pct(r, 'hybrid-beta0', 'h/knn/test_acc')} vs "
              f"{_pct(r, 'vicreg', 'h/knn/test_acc')}); agrees when both probes tie"),
        Claim("adaptive-helps", "The EMA covariance (β > 0) makes VICReg's regulariser more "
              "adaptive, and better", SOURCE, "proposed, not measured (the open question)",
              {b: o for b, o in zip(betas, better, strict=True)}, verdict(helps),
              f"{rule}: " + "; ".join(f"{b} {_pct(r, b)}" for b in betas)
              + f" vs VICReg {_pct(r, 'vicreg')} (agrees: some β better and none worse)"),
        Claim("offdiag-better", "Keeping the diagonal of tr(C B) fights the variance hinge: the "
              "off-diagonal form is better", "methods.md §4.3 item 2",
              "recommended default, not measured", {"offdiag_vs_diag": diag}, verdict(diag),
              f"{rule}: off-diagonal {_pct(r, 'hybrid-beta0.9')} vs with the diagonal "
              f"{_pct(r, 'hybrid-beta0.9-diag')} (β = 0.9)"),
        Claim("raw-not-worse", "Raw centred embeddings in the covariance term do at least as "
              "well as L2-normalised ones (TiCo's form)", "methods.md §4.3 item 1",
              "recommended default, not measured", {"raw_vs_l2": l2},
              "differs" if l2 is False else "agrees",
              f"{rule}: raw {_pct(r, 'hybrid-beta0.9')} vs L2 {_pct(r, 'hybrid-beta0.9-l2')} "
              "(β = 0.9; agrees unless raw is worse)"),
    ]
