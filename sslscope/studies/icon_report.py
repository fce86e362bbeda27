"""The I-Con study's page and tables: equivalences, debiasing, clustering ladder, maps."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from sslscope.files import atomic_write_text
from sslscope.icon.clustering import LADDER
from sslscope.report.figures import embed_figure
from sslscope.report.page import CSS
from sslscope.studies.claims import Claim, claims_table
from sslscope.studies.icon_claims import PROBES, Results, mean, pct, spread
from sslscope.studies.icon_maps import MAPS, REFERENCE, TRUST_K

CLUSTERING_LABELS = {"kmeans": "k-means on h", "kmeans_l2": "k-means on L2-normalised h",
                     **{rung: f"InfoNCE clustering: {rung}" for rung in LADDER},
                     "kNN only": "InfoNCE clustering, p without augmentations"}


Table = tuple[list[str], list[list[str]]]  # header, rows of cells


def debias_table(r: Results) -> Table:
    """Test accuracy of h for every kernel and α."""
    return (["q", "α", *(f"h {label} (%)" for label in PROBES.values())],
            [[kernel, f"{alpha:g}", *(pct(cell[p]) for p in PROBES)]
             for (kernel, alpha), cell in r.debias.items()])


def clustering_table(r: Results) -> Table:
    """Hungarian accuracy of each clustering method on the frozen h."""
    return (["method", "Hungarian accuracy (%)"],
            [[CLUSTERING_LABELS.get(m, m), pct(v)] for m, v in r.clustering.items()])


def maps_table(r: Results) -> Table:
    """Each map's trustworthiness and the time it took."""
    return (["map", f"trustworthiness (k = {TRUST_K})", "seconds"],
            [[name, f"{r.trust[name]:.4f}", f"{r.seconds[name]:.1f}"] for name in r.trust])


def equivalence_table(r: Results) -> Table:
    """Each named method as I-Con and as its own formula."""
    return (["method", "p", "q", "I-Con", "reference", "abs. diff"],
            [[row["method"], row["p_sup"], row["log_q"], f"{row['icon']:.12f}",
              f"{row['reference']:.12f}", f"{row['abs_diff']:.1e}"] for row in r.equivalences])


def markdown(table: Table) -> str:
    """A table as Markdown; the first column left-aligned, the others right-aligned."""
    header, rows = table

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "| --- |" + " ---: |" * (len(header) - 1),
                      *map(line, rows)])


def html_table(table: Table) -> str:
    """A table as HTML, every cell escaped."""
    header, rows = table
    head = "".join(f"<th>{escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def results_markdown(r: Results, *, steps: int) -> str:
    """The summary's body: the four tables."""
    return "\n".join([
        "## The equivalences (float64)", "", markdown(equivalence_table(r)), "",
        f"## Debiasing, {steps} steps per run, {r.seeds} seeds", "",
        markdown(debias_table(r)), "",
        f"## InfoNCE clustering on frozen h ({r.n_images} images)", "",
        markdown(clustering_table(r)), "",
        "## Maps of the digits", "", markdown(maps_table(r)), ""])


def _debias_figure(r: Results) -> Figure:
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    for ax, (probe, label) in zip(fig.subplots(1, len(PROBES)), PROBES.items(), strict=True):
        for kernel in r.kernels():
            alphas = r.alphas()
            values = [[100 * v for v in r.debias[(kernel, a)][probe]] for a in alphas]
            # The tables' numbers: the mean and the sample std over seeds (icon_claims).
            ax.errorbar(alphas, [mean(v) for v in values], yerr=[spread(v) for v in values],
                        marker="o", capsize=3, label=kernel)
        ax.set(xlabel="debiasing α (p and q)", ylabel=f"h {label} test accuracy (%)",
               xticks=r.alphas())
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def _maps_figure(r: Results, maps: dict[str, Any]) -> Figure:
    names = [REFERENCE, *MAPS]
    fig = Figure(figsize=(3.2 * len(names), 3.4), layout="constrained")
    labels = np.asarray(maps["labels"])
    colours = colormaps["tab10"](labels % 10)
    for ax, name in zip(fig.subplots(1, len(names)), names, strict=True):
        y = np.asarray(maps["maps"][name])
        ax.scatter(y[:, 0], y[:, 1], s=2, c=colours, linewidths=0)
        ax.set_title(f"{name}\ntrust {r.trust[name]:.4f}", fontsize="small")
        ax.set(xticks=[], yticks=[])
        # Robust limits: a few outlying points must not squeeze the rest into a corner.
        low, high = np.percentile(y, [0.5, 99.5], axis=0)
        pad = 0.05 * (high - low)
        ax.set(xlim=(low[0] - pad[0], high[0] + pad[0]), ylim=(low[1] - pad[1], high[1] + pad[1]))
    return fig


def write_report(out_dir: Path, r: Results, claims: list[Claim], maps: dict[str, Any], *,
                 command: str) -> Path:
    """Write ``out_dir/report.html`` (its figures under ``out_dir/figures``)."""
    figures = out_dir / "figures"
    debias = embed_figure(_debias_figure(r), figures, "icon_debias",
                          "test accuracy against debiasing alpha for both kernels")
    drawn = embed_figure(_maps_figure(r, maps), figures, "icon_maps",
                         "2-D maps of the digits: scikit-learn t-SNE and four I-Con maps")
    notes = "".join(f"<li>{escape(row['method'])}: {escape(row['note'])}</li>"
                    for row in r.equivalences if row.get("note"))
    best = max(r.clustering, key=lambda m: mean(r.clustering[m]))
    body = f"""<h1>I-Con on digits: equivalences, debiasing, clustering, maps</h1>
<p class="sub">Alshammari et al., ICLR 2025, and methods.md §5 · <code>{escape(command)}</code></p>
<h2>Claims</h2>{claims_table(claims)}
<p class="note">The paper's numbers are on CIFAR-10 and ImageNet; ours on the digits. Compare
directions and orderings, not values.</p>
<h2>The equivalences</h2>{html_table(equivalence_table(r))}
<p class="note">Each row computes a named method's loss twice in float64 on seeded random
inputs: as an I-Con loss (p, q, divergence from <code>sslscope.icon</code>) and as its own
formula (<code>sslscope icon-table</code>).</p><ul class="note">{notes}</ul>
<h2>Debiasing</h2>{html_table(debias_table(r))}{debias}
<p class="note"><code>--method icon</code> with SimCLR's Gaussian q (cosine, τ = 0.5) or
t-SimCLR's Student-t q (ν = 2, Euclidean on z), α mixed into p and q (both sides); linear
and kNN probes of the backbone output h on the test split; mean ± std over {r.seeds} seeds.</p>
<h2>InfoNCE clustering on frozen features</h2>{html_table(clustering_table(r))}
<p class="note">A linear head (softmax over 10 clusters) on the frozen h of each SimCLR
(α = 0) model, all {r.n_images} images, Hungarian accuracy against the labels; p = the other
augmented view + kNN (k = 3, cosine) spread by walks, q = the cluster kernel across the two
views, debiased on both sides; k-means with 10 restarts on the same h. Best: {escape(
CLUSTERING_LABELS.get(best, best))}.</p>
<h2>Maps of the digits</h2>{drawn}{html_table(maps_table(r))}
<p class="note">All {len(maps['labels'])} digits (pixels), coloured by class. Trustworthiness
at k = {TRUST_K} (scikit-learn): the share of each point's map neighbours that are also its data
neighbours, rank-weighted (1 is perfect).</p>
<h2>Runs</h2><p><a href="sweep.csv">sweep.csv</a> · one run directory per kernel, α and seed
under <code>runs/</code>; the clustering results under <code>clustering/</code>, the maps under
<code>maps/</code></p>"""
    html = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>I-Con study</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
    return atomic_write_text(out_dir / "report.html", html)
