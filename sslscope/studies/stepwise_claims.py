"""The stepwise study's measurements and its claims list, read from its finished runs.

Every number here comes from a run directory (``metrics.jsonl``, ``arrays/spectrum.safetensors``,
``theory.json``, the checkpoint, ``embeddings.safetensors``) or from the NTK experiment, so the
claims can be rechecked from the files. Verdicts are computed from the numbers with the
thresholds stated next to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sslscope.files import read_json_object
from sslscope.instruments.steps import ordered_emergences, staircase_steps
from sslscope.report.record import RunRecord
from sslscope.runs import RunFiles
from sslscope.studies.claims import Claim, verdict_over
from sslscope.theory.kernel import linear_cka

SOURCE = "seed 000 (Simon et al., ICML 2023)"
STEP_TOLERANCE = 0.30  # |measured / predicted − 1| for a small random start (methods.md §1.2)
LEADING = 4  # the modes the acceptance asks about: at least four ordered emergences
SPEEDUP_MIN = 1.5  # a speed-up counts when the 4th step arrives at least this much earlier
NTK_CKA_MIN = 0.9  # predicted vs trained embedding: high alignment, as the paper reports
SIMILAR_METHODS = ("barlow_twins_linear", "vicreg", "nt_xent")  # BYOL: one direction by 800
SIMILAR_MARGIN = 0.1  # CKA between methods above CKA with their common start by this much


def spectrum_key(method: str) -> str:
    """The spectrum whose steps a run is judged by: the matrix its loss acts on.

    Linear Barlow Twins drives the uncentred cross-correlation C to I, so its steps are C's
    (``z/xcorr``, the theory's matrix). The other losses ignore the embeddings' mean (VICReg's
    variance and covariance terms are centred; BYOL and NT-Xent compare directions), and on C
    their large mean direction hides the rest; the paper's deep-network figures track the
    covariance, so theirs are ``z/cov``'s.
    """
    return "z/xcorr" if method == "barlow_twins_linear" else "z/cov"


def staircase(files: RunFiles) -> np.ndarray:
    """The ordered emergences (instrument steps) of a run's judged spectrum."""
    arrays = RunRecord.load(files.root).arrays("spectrum")
    key = spectrum_key(files.load_config().method)
    return ordered_emergences(arrays["step"].numpy().astype(np.float64), arrays[key].numpy())


def _r(value: float | None) -> int | None:
    """A step for the claims: rounded, None when it did not happen."""
    return None if value is None or not np.isfinite(value) else round(value)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _fourth(steps: np.ndarray) -> float:
    return float(steps[LEADING - 1]) if steps.size >= LEADING else float("nan")


def _linear(files: RunFiles) -> dict[str, Any]:
    """The linear run's theory.json (written by the study) and its loss staircase."""
    theory = read_json_object(files.root / "theory.json") or {}
    steps, loss = RunRecord.load(files.root).series("train/loss")
    return {
        "theory": theory, "d": len(theory["predicted_steps"]), "staircase": staircase(files),
        "residual": theory["final_rotation_residual"],
        "loss_first": float(loss[0]), "loss_last": float(loss[-1]),
        "loss_drops": staircase_steps(steps.astype(np.float64), loss).size,
    }


def gap(linear: dict[str, Any]) -> float:
    """λ_{d+1} / λ_d of Γ: how well the top-d eigenspace stands out."""
    lam, d = linear["theory"]["gamma_eigenvalues"], linear["d"]
    return lam[d] / lam[d - 1]


def claims_and_results(runs: dict[str, RunFiles], *, seeds: list[int], full: bool,
                       log: Callable[[str], None] = print) -> tuple[list[Claim], dict]:
    """The claims list and the numbers behind it (``results``, also as Markdown)."""
    from sslscope.studies.stepwise import CNN_METHODS
    from sslscope.theory.ntk_experiment import ntk_prediction, study_inputs

    linear = {s: _linear(runs[f"linear-seed{s}"]) for s in seeds}
    pre = {s: _linear(runs[f"linear-precondition-seed{s}"]) for s in seeds}
    cnn = {s: {m: staircase(runs[f"cnn-{m}-seed{s}"]) for m in CNN_METHODS} for s in seeds}
    cnn_pre = {s: staircase(runs[f"cnn-barlow_twins_linear-precondition-seed{s}"])
               for s in seeds}
    log("NTK experiment: predicted against trained embeddings")
    ntk = {s: ntk_prediction(*study_inputs(seed=s), seed=s).as_dict() for s in seeds}
    claims: list[Claim] = []

    def ratios(s: int) -> list[float]:
        return [round(r, 3) if r is not None else float("nan")
                for r in linear[s]["theory"]["ratios"][:LEADING]]

    claims.append(Claim(
        "linear-step-times", "In the linear model from small init, mode j is learned at the "
        "time the closed form predicts from Γ's eigenvalue λ_j and W(0)", SOURCE + ", Fig. 2",
        "step times 'well predicted by our theory' (CIFAR-10, 500 pairs)",
        {f"seed{s}": {"predicted": [_r(t) for t in linear[s]["theory"]["predicted_steps"]],
                      "measured": [_r(t) for t in linear[s]["theory"]["measured_steps"]],
                      "measured/predicted (first 4)": ratios(s)} for s in seeds},
        verdict_over([all(abs(r - 1) <= STEP_TOLERANCE for r in ratios(s)) for s in seeds]),
        "measured / predicted step of the first four modes: " + "; ".join(
            ", ".join(f"{r:.2f}" for r in ratios(s)) for s in seeds)
        + f" (agrees within ±{STEP_TOLERANCE:.0%}, the small-random-start tolerance)"))
    claims.append(Claim(
        "linear-one-at-a-time", "The embedding's eigenvalues rise one at a time: a staircase",
        SOURCE + ", Fig. 2", "eigenvalues emerge one at a time, the loss falls in steps",
        {f"seed{s}": {"ordered emergences": [round(t) for t in linear[s]["staircase"]],
                      "loss at step 1": round(linear[s]["loss_first"], 3),
                      "final loss": round(linear[s]["loss_last"], 5),
                      "loss drops found": linear[s]["loss_drops"], "d": linear[s]["d"]}
         for s in seeds},
        verdict_over([linear[s]["staircase"].size >= LEADING for s in seeds]),
        "separated emergences: " + "; ".join(
            f"{linear[s]['staircase'].size} of {linear[s]['d']} modes at steps "
            + ", ".join(str(round(t)) for t in linear[s]["staircase"]) for s in seeds)
        + f"; loss {linear[seeds[0]]['loss_first']:.2f} → {linear[seeds[0]]['loss_last']:.1e}"))
    claims.append(Claim(
        "linear-final-embedding", "At convergence the model is the top-d eigenprojection of Γ, "
        "whitened: W = U Λ_d^{-1/2} V_dᵀ for an orthogonal U", SOURCE + " (closed form)",
        "a closed form for the final embeddings",
        {f"seed{s}": {"‖M Mᵀ − I‖ with M = W V_d Λ_d^{1/2}": float(f"{linear[s]['residual']:.2e}")}
         for s in seeds},
        verdict_over([linear[s]["residual"] < 0.05 for s in seeds]),
        "‖M Mᵀ − I‖_F = " + ", ".join(f"{linear[s]['residual']:.2f}" for s in seeds)
        + f" at init scale {linear[seeds[0]]['theory']['init_scale']} (agrees below 0.05; the "
        "end point is the limit of a vanishing init: the rows keep the part of v_{d+1} that grew "
        "before mode d was learned, large when λ_{d+1}/λ_d = "
        + f"{gap(linear[seeds[0]]):.2f} is close to 1)"))
    for method in CNN_METHODS:
        if method == "byol":
            continue
        found = {s: cnn[s][method] for s in seeds}
        claims.append(Claim(
            f"cnn-stepwise-{method}", f"A deep network trained with {method} from small init "
            "learns stepwise: eigenvalues of C emerge one after another",
            SOURCE + ", Fig. 3", "clear steps for Barlow Twins, SimCLR and VICReg (ResNet-50, "
            "STL-10, small init and lr)",
            {f"seed{s}": [round(t) for t in found[s]] for s in seeds},
            verdict_over([found[s].size >= LEADING for s in seeds]),
            "ordered emergences at steps " + "; ".join(
                ", ".join(str(round(t)) for t in found[s]) or "none" for s in seeds)
            + f" (agrees with ≥ {LEADING})"))
    others = {s: min(cnn[s][m].size for m in CNN_METHODS if m != "byol") for s in seeds}
    claims.append(Claim(
        "byol-less-clear", "BYOL shows the stepwise behaviour less clearly",
        SOURCE + ", footnote 16", "'not immediately seen for BYOL'",
        {f"seed{s}": {"byol": cnn[s]["byol"].size, "fewest of the others": others[s]}
         for s in seeds},
        verdict_over([cnn[s]["byol"].size < others[s] for s in seeds]),
        "ordered emergences: BYOL " + ", ".join(str(cnn[s]["byol"].size) for s in seeds)
        + ", fewest among the others " + ", ".join(str(others[s]) for s in seeds)))
    for key, plain, sped, what in (
            ("speedup-linear", {s: linear[s]["staircase"] for s in seeds},
             {s: pre[s]["staircase"] for s in seeds}, "the linear model"),
            ("speedup-cnn", {s: cnn[s]["barlow_twins_linear"] for s in seeds}, cnn_pre,
             "the CNN (barlow_twins_linear)")):
        factor = {s: _fourth(plain[s]) / _fourth(sped[s]) for s in seeds}
        measured = {f"seed{s}": {"4th step plain": _r(_fourth(plain[s])),
                                 "4th step preconditioned": _r(_fourth(sped[s])),
                                 "factor": round(factor[s], 2)}
                    for s in seeds if np.isfinite(factor[s])}
        if key == "speedup-linear":
            for s in seeds:
                predicted = (linear[s]["theory"]["predicted_steps"][LEADING - 1]
                             / pre[s]["theory"]["predicted_steps"][LEADING - 1])
                measured.setdefault(f"seed{s}", {})["factor predicted"] = round(predicted, 2)
        claims.append(Claim(
            key, f"Focusing the gradient on small embedding eigendirections makes the late "
            f"steps arrive earlier ({what})", SOURCE + ", 'why it matters'; methods.md §1.6",
            "proposed, not measured in the paper (App. G)", measured,
            verdict_over([bool(factor[s] >= SPEEDUP_MIN) if np.isfinite(factor[s]) else None
                      for s in seeds]),
            "4th step " + "; ".join(f"{factor[s]:.1f}× earlier" for s in seeds)
            + f" with ε = {runs[f'linear-precondition-seed{seeds[0]}'].load_config().precondition}"
            + f" (agrees from {SPEEDUP_MIN}×)"))
    claims.append(Claim(
        "ntk-prediction", "The embeddings predicted from the network's empirical NTK match the "
        "trained ones", SOURCE + ", 'a final experiment'; methods.md §1.4",
        "good agreement between theory and experiment within each method",
        {f"seed{s}": {k: v for k, v in ntk[s].items() if "cka" in k} for s in seeds},
        verdict_over([ntk[s]["cka_train"] >= NTK_CKA_MIN
                  and ntk[s]["cka_train"] > ntk[s]["baseline_cka_train"] for s in seeds]),
        "linear CKA, predicted vs trained: " + ", ".join(
            f"{ntk[s]['cka_train']:.3f} train / {ntk[s]['cka_test']:.3f} held out from the "
            f"NTK after training, {ntk[s]['cka_init_ntk_train']:.3f} from the NTK at init "
            f"(an untrained network: {ntk[s]['baseline_cka_train']:.3f})" for s in seeds)
        + f"; one-hidden-layer MLP, width 1,024, 50 digit pairs (agrees from {NTK_CKA_MIN})"))
    similar = {s: _method_similarity(runs, s) for s in seeds}
    claims.append(Claim(
        "methods-similar", "Different methods learn similar embeddings",
        SOURCE + ", 'a final experiment'", "different methods learn similar embeddings",
        {f"seed{s}": similar[s] for s in seeds},
        verdict_over([_similar_verdict(similar[s]) for s in seeds]),
        "mean linear CKA of the test-set z between barlow_twins_linear, vicreg and nt_xent "
        + ", ".join(f"{similar[s]['mean CKA between methods']:.2f} against "
                    f"{similar[s]['mean CKA with their common initial network']:.2f} with the "
                    "network they all started from" for s in seeds)
        + f" (agrees when higher by {SIMILAR_MARGIN}, differs when lower; BYOL, one direction "
        "learned here, left out)"))
    results = {"linear": linear, "precondition": pre, "cnn": cnn, "cnn_precondition": cnn_pre,
               "ntk": ntk, "similar": similar}
    results["markdown"] = _markdown(results, seeds)
    return claims, results


def _similar_verdict(similar: dict[str, float]) -> bool | None:
    gain = similar["mean CKA between methods"] - similar[
        "mean CKA with their common initial network"]
    return True if gain >= SIMILAR_MARGIN else (False if gain < 0 else None)


def _method_similarity(runs: dict[str, RunFiles], seed: int) -> dict[str, float]:
    """Mean pairwise linear CKA of the stepwise CNN runs' final test-set z, and with their start.

    The runs share seed and architecture, so they all start from one initial network.
    """
    import torch

    from sslscope.evaluate.suite import extract_features
    from sslscope.parts import build_model

    methods = SIMILAR_METHODS
    z = {m: RunRecord.load(runs[f"cnn-{m}-seed{seed}"].root).embeddings["test/z"].numpy()
         for m in methods}
    record = RunRecord.load(runs[f"cnn-{methods[0]}-seed{seed}"].root)
    data = record.dataset()
    cfg = runs[f"cnn-{methods[0]}-seed{seed}"].load_config()
    encoder = build_model(cfg, tuple(data.test_x.shape[1:]), data)  # the common step 0
    initial = extract_features(encoder, data.test_x, device=torch.device("cpu"))["z"].numpy()
    pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    between = [linear_cka(z[a], z[b]) for a, b in pairs]
    with_initial = [linear_cka(z[m], initial) for m in methods]
    return {"mean CKA between methods": round(float(np.mean(between)), 3),
            "mean CKA with their common initial network": round(float(np.mean(with_initial)),
                                                                3),
            **{f"CKA {a} / {b}": round(float(c), 3)
               for (a, b), c in zip(pairs, between, strict=True)}}


def _markdown(results: dict, seeds: list[int]) -> str:
    """Predicted against measured step times, and every run's staircase, as Markdown."""
    lines = ["## Step times of the linear model", "",
             "Steps at which eigenvalue j of C crosses ½; predicted from Γ and W(0) by the "
             "closed form, measured on the run's spectrum (interpolated).", ""]
    for name, key in (("plain gradient descent", "linear"),
                      ("preconditioned", "precondition")):
        for s in seeds:
            theory = results[key][s]["theory"]
            d = len(theory["predicted_steps"])
            lines += [f"**{name}, seed {s}** (λ_j of Γ: "
                      + ", ".join(f"{v:.3g}" for v in theory["gamma_eigenvalues"][:d]) + ")", "",
                      "| mode | " + " | ".join(str(j + 1) for j in range(d)) + " |",
                      "| --- |" + " ---: |" * d,
                      "| predicted | " + " | ".join(_fmt(t, ".0f") for t in
                                                   theory["predicted_steps"]) + " |",
                      "| measured | " + " | ".join(_fmt(t, ".0f") for t in
                                                  theory["measured_steps"]) + " |",
                      "| ratio | " + " | ".join(_fmt(r, ".2f") for r in theory["ratios"])
                      + " |", ""]
    lines += ["## Ordered emergences in the CNN", "", "| run | seed | steps |",
              "| --- | --- | --- |"]
    for s in seeds:
        for method, steps in results["cnn"][s].items():
            lines.append(f"| {method} | {s} | " + ", ".join(str(round(t)) for t in steps) + " |")
        lines.append(f"| barlow_twins_linear, preconditioned | {s} | "
                     + ", ".join(str(round(t)) for t in results["cnn_precondition"][s]) + " |")
    return "\n".join(lines)
