"""The MMCR study's page and tables: theory next to measurement, fits, ablation, multimodal."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sslscope.files import atomic_write_text
from sslscope.report.figures import embed_figure
from sslscope.report.page import CSS
from sslscope.studies.claims import Claim, claims_table
from sslscope.studies.mmcr_claims import PPE_KEY, Results


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def ppe_tables(r: Results) -> str:
    """Markdown: final PPE of z over P × D for each K, the random-centroid PPE in brackets."""
    g = r.grids
    parts = []
    for k in g.ks:
        table = r.final_table(k)
        lines = [f"Final PPE of z, K = {k} (random unit centroids in brackets):", "",
                 "| P \\ D | " + " | ".join(map(str, g.ds)) + " |",
                 "| --- |" + " ---: |" * len(g.ds)]
        for i, p in enumerate(g.ps):
            cells = [f"{'**' if p == d else ''}{table[i, j]:.3f}{'**' if p == d else ''} "
                     f"({r.theory[i, j]:.3f})" for j, d in enumerate(g.ds)]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def fits_table(r: Results) -> str:
    """Markdown: every cell's power-law fit PPE(C) = E∞ + a·C^(−b) and its log-log slope."""
    lines = ["| P | D | K | final PPE | E∞ | a | b | R² | −d log PPE / d log C |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in sorted(r.cells, key=lambda c: (c.k, c.p, c.d)):
        f = c.fit
        fit = (f"{f.e_inf:.3f} | {f.a:.3g} | {f.b:.3f} | {f.r2:.3f}" if f
               else "— | — | — | —")
        mark = "**" if c.p == c.d else ""
        lines.append(f"| {mark}{c.p}{mark} | {mark}{c.d}{mark} | {c.k} | {c.final:.3f} | {fit} "
                     f"| {-c.slope:.3f} |")
    return "\n".join(lines)


def ablation_table(r: Results) -> str:
    """Markdown: λ × K, linear and kNN test accuracy of h and z, final PPE."""
    lines = ["| λ | K | h linear | h kNN | z linear | z kNN | final PPE |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in sorted(r.ablation, key=lambda x: (x["local_weight"], x["k"])):
        lines.append(f"| {row['local_weight']:g} | {row['k']} | "
                     + " | ".join(_pct(row[k]) for k in ("h/linear/test_acc", "h/knn/test_acc",
                                                         "z/linear/test_acc", "z/knn/test_acc"))
                     + f" | {row[PPE_KEY]:.3f} |")
    return "\n".join(lines)


def multimodal_table(r: Results) -> str:
    """Markdown: clip vs mmcr_multimodal per batch size: retrieval both ways, linear probe."""
    g = r.grids
    lines = ["| batch | steps | method | top→bottom | bottom→top | mean | h linear | PPE |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in sorted(r.multimodal, key=lambda x: (x["batch"], x["method"])):
        steps = max(1, g.multimodal_images // row["batch"])
        lines.append(f"| {row['batch']} | {steps} | `{row['method']}` | {_pct(row['a_to_b'])} | "
                     f"{_pct(row['b_to_a'])} | {_pct(row['retrieval'])} | "
                     f"{_pct(row['h/linear/test_acc'])} | {row[PPE_KEY]:.3f} |")
    return "\n".join(lines)


def results_markdown(r: Results) -> str:
    """The summary's body: the PPE grids, the fits, the ablation and the multimodal table."""
    g = r.grids
    seeds = f"mean over {r.seeds} seeds" if r.seeds > 1 else "one seed"
    return "\n".join([
        f"## The P × D × K grid ({g.capacity_steps} steps each, PPE on P images × K views, "
        f"{seeds})", "", ppe_tables(r), "",
        "## Power laws in compute C = steps × P × K (points after the warm-up)", "",
        fits_table(r), "",
        f"## λ × K (batch {g.ablation_batch}, D = {g.ablation_dim}, {g.ablation_steps} steps): "
        "test accuracy (%)", "", ablation_table(r), "",
        f"## clip vs mmcr_multimodal, {g.multimodal_images:,} images seen per run: test "
        "accuracy (%)", "", multimodal_table(r), ""])


def _heatmap(ax, table: np.ndarray, ps, ds, title: str, vmax: float) -> None:
    image = ax.imshow(table, origin="lower", cmap="magma_r", vmin=0, vmax=vmax)
    ax.set_xticks(range(len(ds)), ds)
    ax.set_yticks(range(len(ps)), ps)
    for i in range(len(ps)):
        for j in range(len(ds)):
            ax.text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if table[i, j] > 0.6 * vmax else "black")
    ax.set(xlabel="D (embedding width)", ylabel="P (batch)", title=title)
    return image


def _surface_figure(r: Results) -> Figure:
    g = r.grids
    fig = Figure(figsize=(3.3 * (1 + len(g.ks)), 3.2), layout="constrained")
    axes = fig.subplots(1, 1 + len(g.ks))
    _heatmap(axes[0], r.theory, g.ps, g.ds, "random unit centroids",
             float(r.theory.max()) * 1.2)
    vmax = max(float(r.final_table(k).max()) for k in g.ks)
    for ax, k in zip(axes[1:], g.ks, strict=True):
        _heatmap(ax, r.final_table(k), g.ps, g.ds, f"trained MMCR, K = {k}", vmax)
    return fig


def _scaling_figure(r: Results) -> Figure:
    g = r.grids
    fig = Figure(figsize=(4.2 * len(g.ks), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(g.ks), sharey=True))
    span = max(abs(math.log2(p / d)) for p in g.ps for d in g.ds) or 1.0
    for ax, k in zip(axes, g.ks, strict=True):
        for c in sorted((c for c in r.cells if c.k == k), key=lambda c: math.log2(c.p / c.d)):
            ratio = math.log2(c.p / c.d)
            color = "black" if c.p == c.d else ("tab:blue" if ratio < 0 else "tab:red")
            alpha = 1.0 if c.p == c.d else 0.35 + 0.65 * abs(ratio) / span
            steps = [s for s in c.steps if s > 0]
            compute = [s * c.p * c.k for s in steps]
            ax.loglog(compute, [y for s, y in zip(c.steps, c.ppe, strict=True) if s > 0],
                      color=color, alpha=alpha, lw=2 if c.p == c.d else 1,
                      label=f"P{c.p} D{c.d}")
            if c.fit:
                x = np.geomspace(min(c.fitted_points()[0]), max(compute), 50)
                ax.loglog(x, c.fit.e_inf + c.fit.a * x ** (-c.fit.b), ls="--", lw=0.8,
                          color=color, alpha=alpha)
        ax.set(xlabel="compute C = steps × P × K", title=f"K = {k}")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("PPE of z (log)")
    return fig


def _ablation_figure(r: Results) -> Figure:
    fig = Figure(figsize=(7.5, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, probe in zip(axes, ("h/linear/test_acc", "h/knn/test_acc"), strict=True):
        for lam in sorted({x["local_weight"] for x in r.ablation}):
            rows = sorted((x for x in r.ablation if x["local_weight"] == lam),
                          key=lambda x: x["k"])
            ax.plot([x["k"] for x in rows], [100 * x[probe] for x in rows], "o-",
                    label=f"λ = {lam:g}")
        ax.set(xlabel="views K", ylabel="test accuracy (%)", title=probe.split("/")[1] + " on h")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize="small")
    return fig


def _multimodal_figure(r: Results) -> Figure:
    fig = Figure(figsize=(7.5, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "retrieval", "retrieval top-1, mean of both ways"),
                           (axes[1], "h/linear/test_acc", "linear probe on h")):
        for method in ("clip", "mmcr_multimodal"):
            rows = sorted((x for x in r.multimodal if x["method"] == method),
                          key=lambda x: x["batch"])
            ax.plot([x["batch"] for x in rows], [100 * x[key] for x in rows], "o-", label=method)
        ax.set(xlabel="batch size", ylabel="test accuracy (%)", title=label)
        ax.set_xscale("log", base=2)
        ax.legend(fontsize="small")
    return fig


def write_report(out_dir: Path, r: Results, claims: list[Claim], *, command: str) -> Path:
    """Write ``out_dir/report.html`` (its figures under ``out_dir/figures``)."""
    figures = out_dir / "figures"
    surface = embed_figure(_surface_figure(r), figures, "ppe_surface",
                           "PPE over P and D: random centroids and trained MMCR")
    scaling = embed_figure(_scaling_figure(r), figures, "ppe_scaling",
                           "PPE against compute per cell, with power-law fits")
    ablation = embed_figure(_ablation_figure(r), figures, "ablation",
                            "linear and kNN accuracy against K for each λ")
    multimodal = embed_figure(_multimodal_figure(r), figures, "multimodal",
                              "clip against mmcr_multimodal over batch sizes")
    links = " · ".join(f'<a href="{g}/{escape(p)}">{g}</a>' for g, p in
                       (("capacity", "sweep.csv"), ("ablation", "compare.html"),
                        ("multimodal", "compare.html")))
    body = f"""<h1>MMCR's capacity error on digits</h1>
<p class="sub">seed 001: Schaeffer et al., "Towards an Improved Understanding and Utilization of
Maximum Manifold Capacity Representations", 2024 · <code>{escape(command)}</code></p>
<h2>Claims</h2>{claims_table(claims)}
<h2>The double descent: PPE over P × D</h2>{surface}
<p class="note">PPE = 1 − ‖M‖<sub>*</sub> / √(P·min(P, D)) of the centroids of K views of a fixed
batch of P training images (z, at the last step). Left: P random unit centroids in D dimensions
(the theory's baseline, 1 − 8/(3π) ≈ 0.151 on the diagonal in the limit).</p>
<h2>PPE against compute</h2>{scaling}
<p class="note">Black: P = D; blue: P &lt; D; red: P &gt; D (fainter nearer the diagonal). Dashed:
PPE(C) = E∞ + a·C<sup>−b</sup> fitted after the warm-up.</p>
<h2>The local term and the number of views</h2>{ablation}
<h2>Multimodal MMCR against CLIP</h2>{multimodal}
<p class="note">The two modalities are the top and bottom halves of each digit; every batch
size sees the same number of images.</p>
<h2>Runs</h2><p>{links}</p>"""
    html = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>MMCR study</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
    return atomic_write_text(out_dir / "report.html", html)
