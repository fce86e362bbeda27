"""The clustering study's claims: the paper's findings 1–9 (methods.md §3) against our runs.

Each ``finding_*`` function reads one seed's run (its ``clus/...`` metrics, logged by
:mod:`sslscope.anatomy`) and returns ``(ok, measured, detail)``: whether the finding holds by
the stated test (None when it cannot be measured here), the numbers, and one sentence. The
test of each finding is written in its docstring; the paper's words are in ``CLAIMS``.
"Early" is the evaluation point nearest 10 % of training (the paper's epoch 100 of 1,000) and
"late" the half from the point nearest 50 % to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from sslscope.report.record import RunRecord
from sslscope.runs import RunFiles
from sslscope.studies.claims import Claim, verdict_over

SOURCE = "seed 002; Ben-Shaul et al. 2023"
Result = tuple[bool | None, dict[str, Any], str]


class Curves:
    """One run's ``clus/`` series, sorted by step (rows of every kind)."""

    def __init__(self, files: RunFiles) -> None:
        self.record = RunRecord.load(files.root)
        self.steps_total = files.load_config().steps

    def __call__(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        steps, values = self.record.series(key, rows="all")
        order = np.argsort(steps, kind="stable")
        return steps[order], values[order]

    def end(self, key: str) -> float:
        """The value at the last evaluation point."""
        return float(self(key)[1][-1])

    def at(self, key: str, fraction: float) -> float:
        """The value at the evaluation point nearest ``fraction`` of training."""
        steps, values = self(key)
        return float(values[np.argmin(np.abs(steps - fraction * self.steps_total))])

    def start(self, key: str) -> float:
        """The value at the first evaluation point (step 0: the initialisation)."""
        return float(self(key)[1][0])

    def keys(self) -> list[str]:
        """Every metrics key, in first-seen order (the loop puts them in evaluation rows)."""
        return list(dict.fromkeys(self.record.keys("eval") + self.record.keys("train")))

    def levels(self) -> list[str]:
        """The random levels logged, ``random0`` (the most random) first."""
        return [k.split("/")[2] for k in self.keys() if k.startswith("clus/randomness/")]

    def randomness(self, level: str) -> float:
        """A random level's randomness in [0, 1]."""
        return self.end(f"clus/randomness/{level}")

    def taps(self) -> list[str]:
        """Representations in forward order: the taps, then h."""
        keys = self.keys()
        reps = list(dict.fromkeys(k.split("/")[1] for k in keys
                                  if k.startswith("clus/")
                                  and k.endswith("/class/linear_test_acc")))
        return [r for r in reps if r != "h"] + ["h"]


def _spearman(x: list[float], y: list[float]) -> float:
    """Spearman's ρ; NaN when either side is constant (no ranking to compare)."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(spearmanr(x, y)[0])


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def finding_1(c: Curves) -> Result:
    """Agrees when the final sample-level NCC train accuracy is ≥ 0.95 and above the class's."""
    sample, cls = c.end("clus/h/sample/ncc_train_acc"), c.end("clus/h/class/ncc_train_acc")
    return (sample >= 0.95 and cls < sample, {"sample_ncc_train": sample, "class_ncc_train": cls},
            f"final NCC train accuracy of h: sample level {_pct(sample)}, class level "
            f"{_pct(cls)}")


def _early_fraction(c: Curves, key: str) -> float:
    gain = c.end(key) - c.start(key)
    return (c.at(key, 0.1) - c.start(key)) / gain if gain else float("nan")


def finding_2(c: Curves) -> Result:
    """Finding 2's test on one seed.

    Agrees when the sample level has ≥ 90 % of its NCC-train gain by 10 % of training, the
    class level a smaller share, and the class level still gains in the late half.
    """
    keys = {lvl: f"clus/h/{lvl}/ncc_train_acc" for lvl in ("sample", "class")}
    early = {lvl: _early_fraction(c, key) for lvl, key in keys.items()}
    late = {lvl: c.end(key) - c.at(key, 0.5) for lvl, key in keys.items()}
    ok = early["sample"] >= 0.9 and early["class"] < early["sample"] and late["class"] > 0
    return (ok, {"early_share_sample": early["sample"], "early_share_class": early["class"],
                 "late_gain_sample": late["sample"], "late_gain_class": late["class"]},
            f"share of the NCC-train gain reached by 10 % of training: sample "
            f"{early['sample']:.2f}, class {early['class']:.2f}; late-half gain: sample "
            f"{100 * late['sample']:+.1f}, class {100 * late['class']:+.1f} points")


def finding_3(c: Curves) -> Result:
    """Finding 3's test on one seed.

    Agrees when the sample-level NCC/linear ratio is ≥ 0.9 at 10 % of training and the
    class-level ratio is higher at the end than at 10 %.
    """
    sample, cls = "clus/h/sample/ncc_linear_ratio", "clus/h/class/ncc_linear_ratio"
    s10, s_end, c10, c_end = c.at(sample, 0.1), c.end(sample), c.at(cls, 0.1), c.end(cls)
    return (s10 >= 0.9 and c_end > c10,
            {"sample_at_10pc": s10, "sample_end": s_end, "class_at_10pc": c10, "class_end": c_end},
            f"NCC/linear ratio at 10 % of training → end: sample {s10:.2f} → {s_end:.2f}, "
            f"class {c10:.2f} → {c_end:.2f}")


def finding_4(c: Curves) -> Result:
    """Finding 4's test on one seed.

    Agrees when the final I(X; h), a mean over MINE seeds, is more than 2 standard errors
    (seed std / √seeds) below its peak; differs when the peak is the last point or the drop is
    under half a standard error; inconclusive in between, or with fewer than two MINE seeds.
    """
    steps, mi = c("clus/mine/mi")
    if not mi.size:
        return None, {}, "MINE was off"
    seeds = int(c.record.config.get("mine_seeds") or 0)
    if seeds < 2:
        return None, {}, f"MINE ran {seeds} seed(s): no standard error to judge a drop by"
    std = c.end("clus/mine/mi_std")
    error = std / np.sqrt(seeds)
    peak, final = int(np.nanargmax(mi)), float(mi[-1])
    drop = float(mi[peak]) - final
    ok = (True if drop > 2 * error else
          (False if peak == mi.size - 1 or drop < 0.5 * error else None))
    return (ok, {"peak": float(mi[peak]), "peak_step": int(steps[peak]), "final": final,
                 "final_std": std, "final_standard_error": error},
            f"I(X; h) peaks at {mi[peak]:.2f} nats (step {steps[peak]}) and ends at "
            f"{final:.2f} (seed std {std:.2f}, standard error {error:.2f}): a drop of "
            + (f"{drop / error:.1f} standard errors" if error > 0 else f"{drop:.2f} nats"))


def finding_5(c: Curves) -> Result:
    """Finding 5's test on one seed.

    Agrees when the variance and covariance terms make ≥ 90 % of the loss's decrease from
    the first to the last logged steps (mean of three rows each); VICReg only.
    """
    names = ("invariance", "variance", "covariance")
    steps = c.record.series("train/loss/invariance")[0]
    series = {n: c.record.series(f"train/loss/{n}")[1] for n in names}
    if any(not v.size for v in series.values()):
        return None, {}, "not measurable: the method's loss has no invariance/regularisation split"

    def changes(rows: slice) -> tuple[float, float, float]:
        """(Δ invariance, Δ variance + covariance, the latter's share of the loss's fall)."""
        first = {n: float(np.mean(v[rows][:3])) for n, v in series.items()}
        last = {n: float(np.mean(v[rows][-3:])) for n, v in series.items()}
        d_inv = last["invariance"] - first["invariance"]
        d_reg = (last["variance"] + last["covariance"]) - (first["variance"]
                                                          + first["covariance"])
        return d_inv, d_reg, (d_reg / (d_inv + d_reg) if d_inv + d_reg < 0 else float("nan"))

    d_inv, d_reg, share = changes(slice(None))
    # Shown, not judged: the same from 10 % of training on, past the first steps' transient.
    late = changes(slice(int(np.searchsorted(steps, 0.1 * c.steps_total)), None))
    return (bool(share >= 0.9), {"invariance_change": d_inv, "regularisation_change": d_reg,
                                 "regularisation_share": share,
                                 "from_10pc": {"invariance_change": late[0],
                                               "regularisation_change": late[1],
                                               "regularisation_share": late[2]}},
            f"loss terms from the first to the last logged steps: invariance {d_inv:+.3f}, "
            f"variance + covariance {d_reg:+.3f} (a {share:.0%} share of the decrease); from "
            f"10 % of training on: {late[0]:+.3f} and {late[1]:+.3f} ({late[2]:.0%})")


def finding_6(c: Curves, sup: dict[str, dict]) -> list[Result]:
    """Finding 6's test on one seed.

    6a: the plain supervised network's NCC train accuracy is ≥ 0.99. 6b: the SSL run's NCC
    test accuracy is above the plain supervised one's. 6c: augmentation lowers the supervised
    NCC train accuracy and raises its NCC test accuracy.
    """
    plain, aug = sup["plain"], sup["augmented"]
    ssl = c.end("clus/h/class/ncc_test_acc")
    numbers = {"supervised_ncc_train": plain["ncc_train_acc"],
               "supervised_ncc_test": plain["ncc_test_acc"],
               "augmented_ncc_train": aug["ncc_train_acc"],
               "augmented_ncc_test": aug["ncc_test_acc"], "ssl_ncc_test": ssl}
    return [
        (plain["ncc_train_acc"] >= 0.99, numbers,
         f"supervised (no augmentation) NCC train {_pct(plain['ncc_train_acc'])}"),
        (ssl > plain["ncc_test_acc"], numbers,
         f"NCC test: SSL {_pct(ssl)}, supervised {_pct(plain['ncc_test_acc'])}, supervised with "
         f"augmentation {_pct(aug['ncc_test_acc'])}"),
        (aug["ncc_train_acc"] < plain["ncc_train_acc"] and aug["ncc_test_acc"] >
         plain["ncc_test_acc"], numbers,
         f"supervised NCC train / test without augmentation {_pct(plain['ncc_train_acc'])} / "
         f"{_pct(plain['ncc_test_acc'])}, with {_pct(aug['ncc_train_acc'])} / "
         f"{_pct(aug['ncc_test_acc'])}"),
    ]


def finding_7(c: Curves) -> list[Result]:
    """Finding 7's test on one seed.

    7a: the linear-accuracy gain of h falls with randomness (Spearman ρ < 0) and the most
    random target gains less than half the class level's. 7b: for every target the last layer
    beats the first, and the class level's first-to-last gap exceeds the most random's.
    """
    levels = c.levels()
    if not levels:
        return [(None, {}, "not measurable: the run logged no random targets")] * 2
    r = {lvl: c.randomness(lvl) for lvl in levels}
    key = "clus/h/{}/linear_test_acc".format
    gain = {lvl: c.end(key(lvl)) - c.start(key(lvl)) for lvl in ["class", *levels]}
    rho = _spearman([r[lvl] for lvl in levels], [gain[lvl] for lvl in levels])
    most = max(levels, key=lambda lvl: r[lvl])
    ok_a = None if np.isnan(rho) else bool(rho < 0 and gain[most] < 0.5 * gain["class"])
    taps = c.taps()
    depth_gap = {lvl: c.end(f"clus/{taps[-1]}/{lvl}/linear_test_acc")
                 - c.end(f"clus/{taps[0]}/{lvl}/linear_test_acc") for lvl in ["class", *levels]}
    ok_b = all(g > 0 for g in depth_gap.values()) and depth_gap["class"] > depth_gap[most]
    gains = ", ".join(f"r = {r[lvl]:.2f}: {100 * gain[lvl]:+.1f}" for lvl in levels)
    gaps = ", ".join(f"{lvl}: {100 * g:+.1f}" for lvl, g in depth_gap.items())
    return [
        (ok_a, {"randomness": r, "gain": gain, "spearman": rho},
         f"linear-accuracy gain of h over training (points), class {100 * gain['class']:+.1f}, "
         f"{gains}; Spearman ρ(r, gain) = {rho:.2f}"),
        (ok_b, {"first_to_last_layer_gap": depth_gap},
         f"final linear accuracy, last layer minus first ({taps[0]}), in points: {gaps}"),
    ]


def finding_8(c: Curves) -> list[Result]:
    """Finding 8's test on one seed.

    8a: at the end, the class level has the higher NCC test accuracy and the lower CDNV than
    the most random target. 8b: over training, the class/random ratio of the mean squared
    distances between class means grows, and it makes at least 2/3 of the log-change of the
    two parts' ratios together (|Δ log distance ratio| / (|Δ log distance ratio| + |Δ log
    variance ratio|)); differs when it shrinks or makes under 1/2, inconclusive between.
    """
    if not c.levels():
        return [(None, {}, "not measurable: the run logged no random targets")] * 2
    most = max(c.levels(), key=c.randomness)
    ncc = {lvl: c.end(f"clus/h/{lvl}/ncc_test_acc") for lvl in ("class", most)}
    cdnv = {lvl: c.end(f"clus/h/{lvl}/cdnv") for lvl in ("class", most)}

    def ratio(part: str, at: Callable[[str], float]) -> float:
        return at(f"clus/h/class/{part}") / at(f"clus/h/{most}/{part}")

    dist = (ratio("between_distance", c.start), ratio("between_distance", c.end))
    var = (ratio("within_variance", c.start), ratio("within_variance", c.end))
    d_dist, d_var = abs(np.log(dist[1] / dist[0])), abs(np.log(var[1] / var[0]))
    share = d_dist / (d_dist + d_var) if d_dist + d_var else float("nan")
    ok_b = (False if dist[1] <= dist[0] or share < 0.5 else (True if share >= 2 / 3 else None))
    return [
        (ncc["class"] > ncc[most] and cdnv["class"] < cdnv[most], {"ncc_test": ncc, "cdnv": cdnv},
         f"final NCC test accuracy class {_pct(ncc['class'])} vs most random "
         f"(r = {c.randomness(most):.2f}) {_pct(ncc[most])}; CDNV {cdnv['class']:.3f} vs "
         f"{cdnv[most]:.3f}"),
        (ok_b, {"distance_ratio": dist, "variance_ratio": var, "distance_share": share},
         f"class/random ratio from start to end: mean distance {dist[0]:.2f} → {dist[1]:.2f}, "
         f"within-class variance {var[0]:.2f} → {var[1]:.2f}; the distances make "
         f"{share:.0%} of the change"),
    ]


def finding_9(c: Curves) -> list[Result]:
    """Finding 9's test on one seed.

    9a: every layer's class-level linear accuracy is higher at the end than at init. 9b: the
    best layer for the classes at the end is not the last (strictly better: a tie with the
    last layer differs). 9c: the superclass/class accuracy
    ratio at the end grows with depth (Spearman ρ > 0.5 over the layers).
    """
    taps = c.taps()
    key = "clus/{}/class/linear_test_acc".format
    gain = {t: c.end(key(t)) - c.start(key(t)) for t in taps}
    final = {t: c.end(f"clus/{t}/class/linear_test_acc") for t in taps}
    best = max(taps, key=lambda t: (final[t], taps.index(t)))  # ties go to the deeper layer
    tied = [t for t in taps if final[t] == final[best]]
    if "clus/h/superclass/linear_test_acc" in c.keys():
        ratio = {t: c.end(f"clus/{t}/superclass/linear_test_acc") / final[t] for t in taps}
        rho = _spearman(list(range(len(taps))), [ratio[t] for t in taps])
        result_c: Result = (None if np.isnan(rho) else bool(rho > 0.5),
                            {"ratio": ratio, "spearman": rho},
                            "superclass/class accuracy ratio per layer: "
                            + ", ".join(f"{t} {v:.3f}" for t, v in ratio.items())
                            + f"; Spearman ρ = {rho:.2f}")
    else:
        result_c = (None, {}, "not measurable: the data set has no superclasses")
    return [
        (all(g > 0 for g in gain.values()), {"gain": gain},
         "class-level linear-accuracy gain per layer (points): "
         + ", ".join(f"{t} {100 * g:+.1f}" for t, g in gain.items())),
        (best != taps[-1], {"final": final, "best": best},
         f"best layer(s) for the classes at the end: {', '.join(tied)} at "
         f"{_pct(final[best])}" + ("" if best != taps[-1] else
                                   " (the last layer is among them)")),
        result_c,
    ]


# id → (the claim in words, what the paper reports), in the order of methods.md §3.
CLAIMS: dict[str, tuple[str, str]] = {
    "1": ("Sample-level NCC train accuracy approaches 1 (neural collapse on augmentations), "
          "class-level stays well below", "sample ≈ 1.0; class 0.41 (CIFAR-100)"),
    "2": ("Sample-level clustering happens early and saturates; semantic clustering keeps "
          "improving throughout training", "Fig. 2 (CIFAR-100, 1,000 epochs)"),
    "3": ("The NCC/linear ratio reaches ≥ 0.9 early at the sample level and saturates; at the "
          "class level it keeps rising", "sample ≥ 0.9 by epoch 100; class rises to ≈ 0.75"),
    "4": ("MINE shows substantial compression of I(X; Z) over training",
          "I(X; Z) falls over training (5 MINE seeds)"),
    "5": ("The invariance term barely improves; the loss falls through the regularisation "
          "(variance + covariance) terms", "VICReg loss split"),
    "6a": ("Supervised training fits its training classes: NCC train accuracy 1.0",
           "NCC train = 1.0"),
    "6b": ("SSL's class-level NCC test accuracy is slightly higher than supervised training's",
           "SSL slightly higher"),
    "6c": ("Augmentation in supervised training lowers NCC train and raises NCC test accuracy",
           "lower train, higher test"),
    "7a": ("Accuracy improves more for low-randomness (semantic) targets; high-randomness "
           "targets barely improve", "Fig. 4"),
    "7b": ("Deeper layers are better for every target, the gap widest for semantic ones",
           "Fig. 4"),
    "8a": ("NCC accuracy and CDNV favour semantic targets over random ones",
           "semantic/random ratios, Fig. 5"),
    "8b": ("Semantic CDNV falls against random because the class means move apart; the "
           "within-class variance ratio stays about constant", "Fig. 5"),
    "9a": ("Accuracy improves at every layer during training", "Fig. 6"),
    "9b": ("The final layer is not the best layer for the original classes", "Fig. 6"),
    "9c": ("The superclass/class accuracy ratio grows with depth", "Fig. 6"),
}


def measure(files: RunFiles, supervised: dict[str, dict]) -> dict[str, Result]:
    """Every finding's result on one seed's run and supervised baselines, keyed as CLAIMS."""
    c = Curves(files)
    out = {"1": finding_1(c), "2": finding_2(c), "3": finding_3(c), "4": finding_4(c),
           "5": finding_5(c)}
    for prefix, results in (("6", finding_6(c, supervised)), ("7", finding_7(c)),
                            ("8", finding_8(c)), ("9", finding_9(c))):
        out.update({f"{prefix}{letter}": r for letter, r in zip("abc", results, strict=False)})
    return out


def claims_and_results(runs: dict[str, RunFiles], supervised: dict[int, dict[str, dict]], *,
                       method: str, seeds: list[int]) -> tuple[list[Claim], dict[int, dict]]:
    """The claims list (one verdict over the seeds) and each seed's results by claim id."""
    per_seed = {seed: measure(runs[f"{method}-seed{seed}"], supervised[seed]) for seed in seeds}
    claims = []
    for cid, (text, paper) in CLAIMS.items():
        results = [per_seed[seed][cid] for seed in seeds]
        detail = "; ".join(f"seed {seed}: {r[2]}" if len(seeds) > 1 else r[2]
                           for seed, r in zip(seeds, results, strict=True))
        claims.append(Claim(cid, text, SOURCE, paper,
                            {f"seed{seed}": r[1] for seed, r in zip(seeds, results, strict=True)},
                            verdict_over([r[0] for r in results]), detail))
    return claims, per_seed
