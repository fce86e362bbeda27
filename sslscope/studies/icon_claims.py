"""The I-Con study's numbers and the paper's claims next to them.

Reads the sweep rows, the clustering ladder's and the maps' saved results and the equivalence
rows; trains nothing. Accuracy differences are compared on the pooled cases of all seeds
(:func:`sslscope.studies.claims.significantly`): the test split for the probes, every image for
the clustering.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslscope.data import load_dataset
from sslscope.icon.clustering import LADDER
from sslscope.runs import RunFiles
from sslscope.studies.claims import Z_SIGNIFICANT, Claim, significantly, verdict
from sslscope.studies.icon_maps import MAPS, REFERENCE, TRUST_K

SOURCE = "I-Con (Alshammari et al., ICLR 2025)"
PROBES = {"h/linear/test_acc": "linear", "h/knn/test_acc": "kNN"}
EQUIVALENCE_TOLERANCE = 1e-10  # float64 rounding is about 1e-15
TRUST_TOLERANCE = 0.02  # the bar for I-Con t-SNE against scikit-learn's


def mean(values: list[float]) -> float:
    """The mean over seeds (or models)."""
    return statistics.mean(values)


def spread(values: list[float]) -> float:
    """The sample standard deviation over seeds; 0 for one value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class Results:
    """Every measured number of the study.

    Attributes:
        debias: (kernel, α) → probe column → one test accuracy per seed.
        n_test: test images behind one probe accuracy.
        seeds: how many seeds.
        clustering: method ("kmeans", "kmeans_l2", each ladder rung, "kNN only") → one
            Hungarian accuracy per clustered model.
        n_images: images behind one clustering accuracy.
        trust: map name → trustworthiness at k = 10; seconds: map name → time to draw it.
        equivalences: :func:`sslscope.icon.table.equivalence_rows`.
    """

    debias: dict[tuple[str, float], dict[str, list[float]]]
    n_test: int
    seeds: int
    clustering: dict[str, list[float]]
    n_images: int
    trust: dict[str, float]
    seconds: dict[str, float]
    equivalences: list[dict[str, Any]]

    def kernels(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self.debias))

    def alphas(self) -> list[float]:
        return sorted({a for _, a in self.debias})

    def compare(self, a: tuple[str, float], b: tuple[str, float], probe: str) -> bool | None:
        """Cell ``a`` better (True), worse (False) or tied with ``b`` on the pooled seeds."""
        return significantly(mean(self.debias[a][probe]), mean(self.debias[b][probe]),
                             self.n_test * self.seeds)

    def compare_clustering(self, a: str, b: str) -> bool | None:
        return significantly(mean(self.clustering[a]), mean(self.clustering[b]),
                             self.n_images * len(self.clustering[a]))

    def kmeans(self) -> str:
        """The stronger k-means (raw or L2-normalised h): the bar InfoNCE clustering must meet."""
        return max(("kmeans", "kmeans_l2"), key=lambda m: mean(self.clustering[m]))


def load_results(out_dir: Path, rows: list[dict[str, Any]], clustering: dict[int, dict],
                 maps: dict[str, Any], equivalences: list[dict[str, Any]]) -> Results:
    """The study's results from the sweep rows (``kernel``, ``alpha``, ``seed``) and the rest."""
    debias: dict[tuple[str, float], dict[str, list[float]]] = {}
    for row in rows:
        cell = debias.setdefault((row["kernel"], float(row["alpha"])), {p: [] for p in PROBES})
        for probe in PROBES:
            cell[probe].append(float(row[probe]))
    cfg = RunFiles(out_dir / rows[0]["run_dir"]).load_config()
    n_test = int(load_dataset(cfg.dataset, cfg.data_dir).test_y.shape[0])
    methods = list(next(iter(clustering.values()))["accuracy"])
    return Results(
        debias, n_test, len({r["seed"] for r in rows}),
        {m: [float(c["accuracy"][m]) for c in clustering.values()] for m in methods},
        int(next(iter(clustering.values()))["images"]),
        dict(maps["trust"]), dict(maps["seconds"]), equivalences)


def pct(values: list[float]) -> str:
    """Accuracies as ``"mean ± std"`` in percent."""
    return f"{100 * mean(values):.2f} ± {100 * spread(values):.2f}"


def _debias_claim(r: Results, kernel: str, paper: str) -> Claim:
    base = (kernel, 0.0)
    outcomes = {f"alpha={a:g} {label}": r.compare((kernel, a), base, probe)
                for a in r.alphas() if a > 0 for probe, label in PROBES.items()}
    better = any(o is True for o in outcomes.values())
    worse = any(o is False for o in outcomes.values())
    ok = True if better and not worse else (False if worse and not better else None)
    detail = "; ".join(
        f"α = {a:g}: " + ", ".join(f"{label} {pct(r.debias[(kernel, a)][p])}"
                                  for p, label in PROBES.items()) for a in r.alphas())
    return Claim(
        f"debias-{kernel.lower()}", f"Debiasing (α = 0.2–0.6, both sides) improves {kernel}'s "
        "linear and kNN accuracy", f"{SOURCE}, §3.3 and App. A", paper, outcomes, verdict(ok),
        f"{detail} (test accuracy of h, mean ± std over {r.seeds} seeds; agrees when some α "
        f"is better by {Z_SIGNIFICANT:g} standard errors of the pooled test cases and none "
        "worse, differs when some is worse and none better)")


def claims_for(r: Results) -> list[Claim]:
    """The paper's claims, each with its verdict computed from the numbers."""
    worst = max(row["abs_diff"] for row in r.equivalences)
    t_vs_gauss = [r.compare(("t-SimCLR", 0.0), ("SimCLR", 0.0), p) for p in PROBES]
    kmeans = r.kmeans()
    full = list(LADDER)[-1]
    beats = r.compare_clustering(full, kmeans)
    rungs = list(LADDER)
    steps = [r.compare_clustering(b, a) for a, b in zip(rungs, rungs[1:], strict=False)]
    ladder_ok = (False if any(s is False for s in steps)
                 else True if all(s is True for s in steps) else None)
    gap = r.trust["t-SNE (I-Con)"] - r.trust[REFERENCE]
    crowding = [r.trust[f"{pre}t-SNE (I-Con)"] > r.trust[f"{pre}SNE (I-Con)"]
                for pre in ("", "parametric ")]
    clustering_rule = (f"Hungarian accuracy on all {r.n_images} images, mean ± std over "
                       f"{len(r.clustering[kmeans])} SimCLR models; a difference counts at "
                       f"{Z_SIGNIFICANT:g} standard errors")
    return [
        Claim("equivalences", "The named methods (SimCLR, SupCon, CE, label smoothing, SNE, "
              "t-SNE, CLIP, ...) are I-Con instances: the same loss exactly", f"{SOURCE}, "
              "Table 1, Thm 1–9", "proved (theorems)",
              {"rows": len(r.equivalences), "max_abs_diff": worst},
              verdict(worst <= EQUIVALENCE_TOLERANCE),
              f"{len(r.equivalences)} rows in float64; largest |I-Con − reference| = "
              f"{worst:.1e} (agrees at ≤ {EQUIVALENCE_TOLERANCE:g})"),
        _debias_claim(r, "SimCLR", "CIFAR-10 linear / kNN: 77.79 / 80.02 at α = 0; "
                      "79.50 / 84.07, 79.07 / 85.06, 79.32 / 85.90 at α = 0.2, 0.4, 0.6"),
        _debias_claim(r, "t-SimCLR", "CIFAR-10 linear / kNN: 90.97 / 88.14 at α = 0; "
                      "91.31 / 88.34, 92.70 / 88.50, 92.86 / 88.92 at α = 0.2, 0.4, 0.6"),
        Claim("student-t-beats-gaussian", "A Student-t q (t-SimCLR) learns better features "
              "than SimCLR's Gaussian q", f"{SOURCE}, App. A (after Hu et al. 2023)",
              "CIFAR-10 linear 90.97 vs 77.79, kNN 88.14 vs 80.02 (α = 0)",
              {label: o for label, o in zip(PROBES.values(), t_vs_gauss, strict=True)},
              verdict(True if all(o is True for o in t_vs_gauss) else
                      False if any(o is False for o in t_vs_gauss) else None),
              "; ".join(f"{label}: t-SimCLR {pct(r.debias[('t-SimCLR', 0.0)][p])} vs SimCLR "
                        f"{pct(r.debias[('SimCLR', 0.0)][p])}" for p, label in PROBES.items())
              + " (α = 0; agrees when both probes are better)"),
        Claim("clustering-beats-kmeans", "Debiased InfoNCE clustering beats k-means on the "
              "same frozen features", f"{SOURCE}, §5, Table 2",
              "ImageNet, DINO ViT-S/B/L: 57.8 / 64.75 / 67.52 vs k-means 51.84 / 52.26 / 53.36",
              {"infonce": mean(r.clustering[full]), kmeans: mean(r.clustering[kmeans])},
              verdict(beats),
              f"{clustering_rule}: InfoNCE clustering {pct(r.clustering[full])} vs the stronger "
              f"k-means ({'L2-normalised' if kmeans == 'kmeans_l2' else 'raw'} h) "
              f"{pct(r.clustering[kmeans])}"),
        Claim("clustering-ladder", "Each rung of the ablation ladder helps: baseline < "
              "+ debias < + kNN propagation", f"{SOURCE}, Table 3",
              "ViT-B/14: 63.03 → 63.72 → 64.87", {"steps": steps},
              verdict(ladder_ok),
              f"{clustering_rule}: " + " → ".join(f"{rung} {pct(r.clustering[rung])}"
                                                  for rung in rungs)
              + " (agrees when every rung beats the one before, differs when one is worse)"),
        Claim("tsne-is-icon", "t-SNE is an I-Con instance: optimising its I-Con form gives "
              "t-SNE's map", f"{SOURCE}, Cor. 1", "proved (Cor. 1)",
              {"icon": r.trust["t-SNE (I-Con)"], "sklearn": r.trust[REFERENCE]},
              verdict(abs(gap) <= TRUST_TOLERANCE),
              f"trustworthiness (k = {TRUST_K}) of the digits map: I-Con t-SNE "
              f"{r.trust['t-SNE (I-Con)']:.4f} vs scikit-learn's t-SNE "
              f"{r.trust[REFERENCE]:.4f} (agrees within {TRUST_TOLERANCE:g})"),
        Claim("student-t-map", "The Student-t q gives a more faithful map than SNE's Gaussian "
              "q (the crowding problem)", "van der Maaten & Hinton 2008; I-Con Fig. 1 rows",
              "t-SNE's maps preserve neighbourhoods better than SNE's",
              {name: r.trust[name] for name in MAPS}, verdict(all(crowding)),
              "trustworthiness: " + ", ".join(f"{name} {r.trust[name]:.4f}" for name in MAPS)
              + " (agrees when t-SNE beats SNE in both parametrisations)"),
    ]
