"""The stepwise study's page: seed 000's Figures 1–3 re-made on the digits, and the claims.

Figure 1: the linear model, measured loss and eigenvalues of C against the closed form.
Figure 2: the small CNN from small init for each method, loss and eigenvalues over training.
Figure 3: the speed-up, eigenvalues with and without the preconditioner.
Everything is read from the run directories; the page is one self-contained HTML file.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sslscope.files import atomic_write_text
from sslscope.report.figures import embed_figure
from sslscope.report.page import CSS
from sslscope.report.record import RunRecord
from sslscope.runs import RunFiles
from sslscope.studies.claims import Claim, claims_table
from sslscope.studies.stepwise_claims import spectrum_key
from sslscope.theory.stepwise import embedding_eigenvalues, loss_curve

CURVES = 10  # eigenvalues drawn per panel


def _spectrum(files: RunFiles) -> tuple[np.ndarray, np.ndarray]:
    arrays = RunRecord.load(files.root).arrays("spectrum")
    return arrays["step"].numpy(), arrays[spectrum_key(files.load_config().method)].numpy()


def _linear_figure(files: RunFiles, theory: dict) -> Figure:
    steps, eig = _spectrum(files)
    d = len(theory["predicted_steps"])
    lam = np.asarray(theory["gamma_eigenvalues"][:d])
    s0 = np.asarray(theory["initial_singular_values"])
    t = np.linspace(0, steps[-1], 600)
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    loss_ax, eig_ax = fig.subplots(1, 2)
    at, loss = RunRecord.load(files.root).series("train/loss")
    loss_ax.plot(at, loss, color="C0", label="measured")
    loss_ax.plot(t, loss_curve(t * theory["lr"], lam, s0), "k--", lw=1, label="closed form")
    for step in theory["predicted_steps"]:
        loss_ax.axvline(step, color="0.8", lw=0.8, zorder=0)
    loss_ax.set(xlabel="step", ylabel="loss ‖C − I‖²", title="loss: a staircase")
    loss_ax.legend(fontsize="small")
    predicted = embedding_eigenvalues(t * theory["lr"], lam, s0)
    for j in range(d):
        eig_ax.plot(steps, eig[:, j], color=f"C{j % 10}")
        eig_ax.plot(t, predicted[:, j], "--", color=f"C{j % 10}", lw=1)
    eig_ax.set(xlabel="step", ylabel="eigenvalue of C",
               title="eigenvalues of C: measured (solid), closed form (dashed)")
    return fig


def _cnn_figure(runs: dict[str, RunFiles], methods: tuple[str, ...], seed: int) -> Figure:
    fig = Figure(figsize=(12.0, 5.6), layout="constrained")
    axes = fig.subplots(2, len(methods), squeeze=False)
    for col, method in enumerate(methods):
        files = runs[f"cnn-{method}-seed{seed}"]
        at, loss = RunRecord.load(files.root).series("train/loss")
        axes[0, col].plot(at, loss, color="C0")
        axes[0, col].set(title=method, xlabel="step", ylabel="loss" if col == 0 else None)
        steps, eig = _spectrum(files)
        for j in range(min(CURVES, eig.shape[1])):
            axes[1, col].plot(steps, np.clip(eig[:, j], 1e-8, None), color=f"C{j % 10}")
        axes[1, col].set(yscale="log", xlabel="step", ylabel=(
            "eigenvalues of C" if method == "barlow_twins_linear" else "covariance eigenvalues"))
    return fig


def _speedup_figure(runs: dict[str, RunFiles], seed: int) -> Figure:
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    for ax, (title, plain, sped) in zip(fig.subplots(1, 2), (
            ("linear model", f"linear-seed{seed}", f"linear-precondition-seed{seed}"),
            ("CNN, barlow_twins_linear", f"cnn-barlow_twins_linear-seed{seed}",
             f"cnn-barlow_twins_linear-precondition-seed{seed}")), strict=True):
        for name, style in ((plain, "-"), (sped, "--")):
            steps, eig = _spectrum(runs[name])
            for j in range(min(CURVES, eig.shape[1])):
                ax.plot(steps + 1, eig[:, j], style, color=f"C{j % 10}", lw=1.2)
        ax.set(xscale="log", xlabel="step + 1", ylabel="eigenvalue of C", title=title)
    fig.suptitle("solid: plain gradient · dashed: eigen-preconditioned", fontsize="medium")
    return fig


def _step_table(theory: dict, title: str) -> str:
    head = "".join(f"<th>{j + 1}</th>" for j in range(len(theory["predicted_steps"])))

    def row(label: str, values: list[float], fmt: str) -> str:
        return f"<tr><th>{label}</th>" + "".join(
            f'<td class="num">{"—" if v is None else format(v, fmt)}</td>'
            for v in values) + "</tr>"

    return (f"<h3>{escape(title)}</h3><table><tr><th>mode</th>{head}</tr>"
            + row("λ_j of Γ", theory["gamma_eigenvalues"][: len(theory["predicted_steps"])],
                  ".3g")
            + row("predicted step", theory["predicted_steps"], ".0f")
            + row("measured step", theory["measured_steps"], ".0f")
            + row("measured / predicted", theory["ratios"], ".2f") + "</table>")


def write_report(out_dir: Path, runs: dict[str, RunFiles], claims: list[Claim],
                 results: dict, *, seeds: list[int], command: str) -> Path:
    """Write ``out_dir/report.html`` (figures also under ``out_dir/figures``)."""
    from sslscope.studies.stepwise import CNN_METHODS

    seed = seeds[0]
    figures = out_dir / "figures"
    theory = results["linear"][seed]["theory"]
    fig1 = embed_figure(_linear_figure(runs[f"linear-seed{seed}"], theory), figures,
                        "fig1_linear", "linear model: loss and eigenvalues against the theory")
    fig2 = embed_figure(_cnn_figure(runs, CNN_METHODS, seed), figures, "fig2_cnn",
                        "small CNN: loss and eigenvalues over training, per method")
    fig3 = embed_figure(_speedup_figure(runs, seed), figures, "fig3_speedup",
                        "eigenvalues with and without the preconditioner")
    links = " · ".join(f'<a href="runs/{escape(n)}/report.html">{escape(n)}</a>'
                       for n in runs)
    body = f"""<h1>The stepwise nature of SSL on the digits</h1>
<p class="sub">seed 000: Simon et al., "On the Stepwise Nature of Self-Supervised Learning",
ICML 2023 · <code>{escape(command)}</code></p>
<h2>Claims</h2>{claims_table(claims)}
<h2>Figure 1 · the linear model against its closed form</h2>{fig1}
<p class="note">f(x) = W(x − x̄) on fixed augmented pairs of all training digits, linear Barlow
Twins (λ = 1, no standardisation), full-batch gradient descent from W(0) ~ N(0, σ²), seed {seed}.
Dashed: the aligned closed form with s_j(0) = ‖W(0) v_j‖ (time = lr × step). Grey lines: the
predicted step times.</p>
{_step_table(theory, "Predicted and measured step times, plain gradient descent")}
{_step_table(results["precondition"][seed]["theory"], "… with the preconditioner")}
<h2>Figure 2 · the small CNN from small init</h2>{fig2}
<p class="note">Small CNN, z = Linear(h) with its weights ×0.01 (d = 16), fixed views, SGD
at a constant rate (lr 0.01; momentum 0.9 for VICReg only, see the study module), measured on
two fixed views of 1,024 training images (log scale). For
barlow_twins_linear the eigenvalues of the symmetrised, uncentred C its loss drives to I; for the
others the covariance of z, as the paper's deep-network figures (their losses ignore the mean,
which dominates C).</p>
<h2>Figure 3 · the speed-up</h2>{fig3}
<p class="note">The embeddings' gradient multiplied by (C₊ + εI)⁻¹ (sslscope.precondition):
the late eigenvalues (dashed) rise earlier.</p>
<h2>Runs</h2><p>{links}</p>"""
    html = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>stepwise study</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
    return atomic_write_text(out_dir / "report.html", html)
