"""The TiCo study's page and table: probes and spectra of every variant."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sslscope.files import atomic_write_text
from sslscope.report.figures import embed_figure
from sslscope.report.page import CSS
from sslscope.studies.claims import Claim, claims_table
from sslscope.studies.tico_claims import PROBES, Results


def variants_table(r: Results) -> str:
    """Markdown: every variant's probes (mean ± std over seeds) and final rank of z."""
    lines = ["| variant | " + " | ".join(f"h {label} (%)" for label in PROBES.values())
             + " | effective rank of z | top-5 share of z's variance |",
             "| --- |" + " ---: |" * (len(PROBES) + 2)]
    for name, v in r.variants.items():
        cells = [f"{100 * v.mean(p):.2f} ± {100 * v.spread(p):.2f}" for p in PROBES]
        lam = np.clip(v.spectrum, 0, None)
        top = float(lam[:5].sum() / lam.sum()) if lam.sum() > 0 else float("nan")
        lines.append(f"| `{name}` | " + " | ".join(cells)
                     + f" | {np.mean(v.eff_rank):.1f} | {top:.2f} |")
    return "\n".join(lines)


def results_markdown(r: Results, *, steps: int) -> str:
    """The summary's body: the variants table."""
    return "\n".join([f"## Every variant, {steps} steps, {r.seeds} seeds", "",
                      variants_table(r), ""])


def _figure(r: Results) -> Figure:
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    rank, spectrum = fig.subplots(1, 2)
    for name, v in r.variants.items():
        style = "-" if name.startswith("hybrid") else "--"
        rank.plot(v.steps, v.eff_rank_curve, style, label=name)
        lam = np.clip(v.spectrum, 1e-12, None)
        spectrum.semilogy(np.arange(1, lam.size + 1), lam, style, label=name)
    rank.set(xlabel="step", ylabel="effective rank of z's covariance",
             title="how the covariance term spreads z")
    spectrum.set(xlabel="eigenvalue index", ylabel="eigenvalue (log)",
                 title="final covariance spectrum of z")
    rank.legend(fontsize=6)
    return fig


def write_report(out_dir: Path, r: Results, claims: list[Claim], *, command: str) -> Path:
    """Write ``out_dir/report.html`` (its figure under ``out_dir/figures``)."""
    figure = embed_figure(_figure(r), out_dir / "figures", "tico_spectra",
                          "effective rank of z over training and its final spectrum")
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td>"
        + "".join(f"<td>{100 * v.mean(p):.2f} ± {100 * v.spread(p):.2f}</td>" for p in PROBES)
        + f"<td>{np.mean(v.eff_rank):.1f}</td></tr>" for name, v in r.variants.items())
    head = "".join(f"<th>h {label} (%)</th>" for label in PROBES.values())
    body = f"""<h1>VICReg with TiCo's EMA covariance term, on digits</h1>
<p class="sub">seed 003 and methods.md §4.3 · <code>{escape(command)}</code></p>
<h2>Claims</h2>{claims_table(claims)}
<h2>Every variant</h2><table><tr><th>variant</th>{head}<th>effective rank of z</th></tr>
{rows}</table>
<h2>What the covariance term changes</h2>{figure}
<p class="note">Effective rank: exp of the entropy of the normalised covariance eigenvalues of
z on the fixed instrument batch (spectrum instrument), mean over seeds.</p>
<h2>Runs</h2><p><a href="sweep.csv">sweep.csv</a> · one run directory per variant and seed
under <code>runs/</code></p>"""
    html = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>TiCo study</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
    return atomic_write_text(out_dir / "report.html", html)
