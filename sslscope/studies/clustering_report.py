"""The clustering study's page and tables.

The run's clustering figures, the supervised comparison and the claims, all read from the run
directories and the baselines' files.
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
from sslscope.report.sections_clustering import clustering_section
from sslscope.runs import RunFiles
from sslscope.studies.claims import Claim, claims_table
from sslscope.studies.clustering_claims import Curves

METRICS = (("ncc_train_acc", "NCC train"), ("ncc_test_acc", "NCC test"),
           ("linear_test_acc", "linear test"), ("ncc_linear_ratio", "NCC/linear"),
           ("cdnv", "CDNV"), ("within_variance", "within var."),
           ("between_distance", "between dist."))


def _level_label(c: Curves, level: str) -> str:
    return f"{level} (r = {c.randomness(level):.2f})" if level.startswith("random") else level


def levels_table(c: Curves) -> str:
    """Markdown: every level's measures of h at the first and the last evaluation point."""
    levels = ["sample", "class", "superclass", *c.levels()]
    lines = ["| level | " + " | ".join(label for _, label in METRICS) + " |",
             "| --- |" + " --- |" * len(METRICS)]
    for level in levels:
        cells = []
        for key, _ in METRICS:
            start, end = c.start(f"clus/h/{level}/{key}"), c.end(f"clus/h/{level}/{key}")
            fmt = ".2f" if key.endswith("acc") else ".3g"
            cells.append(f"{start:{fmt}} → {end:{fmt}}")
        lines.append(f"| {_level_label(c, level)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def layers_table(c: Curves) -> str:
    """Markdown: final linear test accuracy per layer and level."""
    levels = ["sample", "class", "superclass", *c.levels()]
    taps = c.taps()
    lines = ["| level | " + " | ".join(taps) + " |", "| --- |" + " --- |" * len(taps)]
    for level in levels:
        lines.append(f"| {_level_label(c, level)} | " + " | ".join(
            f"{100 * c.end(f'clus/{t}/{level}/linear_test_acc'):.1f}" for t in taps) + " |")
    return "\n".join(lines)


def supervised_table(c: Curves, supervised: dict[str, dict]) -> str:
    """Markdown: class-level clustering of h, SSL against the two supervised baselines."""
    rows = [("SSL (this run, end)", {k: c.end(f"clus/h/class/{k}") for k, _ in METRICS}),
            ("supervised, no augmentation", supervised["plain"]),
            ("supervised, with augmentation", supervised["augmented"])]
    lines = ["| network | " + " | ".join(label for _, label in METRICS[:4]) + " |",
             "| --- |" + " --- |" * 4]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{values[k]:.3f}" for k, _ in METRICS[:4])
                     + " |")
    return "\n".join(lines)


def results_markdown(runs: dict[str, RunFiles], supervised: dict[int, dict[str, dict]], *,
                     method: str, seeds: list[int]) -> str:
    """The summary's body: per seed, the level, layer and supervised tables."""
    parts = []
    for seed in seeds:
        c = Curves(runs[f"{method}-seed{seed}"])
        parts += [f"## Seed {seed}: every level of h, first → last evaluation point", "",
                  levels_table(c), "", f"## Seed {seed}: final linear test accuracy (%) per "
                  "layer", "", layers_table(c), "",
                  f"## Seed {seed}: SSL against supervised training (class level, h)", "",
                  supervised_table(c, supervised[seed]), ""]
    return "\n".join(parts)


def _supervised_figure(c: Curves, supervised: dict[str, dict]) -> Figure:
    fig = Figure(figsize=(7.5, 3.2), layout="constrained")
    ax = fig.subplots()
    names = ["SSL", "supervised", "supervised + aug."]
    values = [[c.end(f"clus/h/class/{k}") for k in ("ncc_train_acc", "ncc_test_acc")],
              *[[supervised[kind][k] for k in ("ncc_train_acc", "ncc_test_acc")]
                for kind in ("plain", "augmented")]]
    x = np.arange(len(names))
    for j, label in enumerate(("NCC train", "NCC test")):
        ax.bar(x + (j - 0.5) * 0.38, [100 * v[j] for v in values], 0.38, label=label)
    ax.set_xticks(x, names)
    low = min(min(v) for v in values)
    ax.set_ylim(max(0.0, 100 * low - 5), 100.5)
    ax.set(ylabel="accuracy (%)", title="class-level NCC of h: SSL against supervised")
    ax.legend(fontsize="small")
    return fig


def write_report(out_dir: Path, runs: dict[str, RunFiles], supervised: dict[int, dict],
                 claims: list[Claim], results: dict, *, command: str) -> Path:
    """Write ``out_dir/report.html`` (its own figures under ``out_dir/figures``)."""
    name = next(iter(runs))
    seed = int(name.rsplit("seed", 1)[1])
    c = Curves(runs[name])
    section = clustering_section(RunRecord.load(runs[name].root))
    figures = section.html if section else "<p>The run logged no clustering measures.</p>"
    sup = embed_figure(_supervised_figure(c, supervised[seed]), out_dir / "figures",
                       "supervised", "class-level NCC accuracy, SSL against supervised")
    links = " · ".join(f'<a href="runs/{escape(n)}/report.html">{escape(n)}</a>' for n in runs)
    dataset = runs[name].load_config().dataset
    body = f"""<h1>The clustering anatomy of SSL on {escape(dataset)}</h1>
<p class="sub">seed 002: Ben-Shaul et al., "Reverse Engineering Self-Supervised Learning",
NeurIPS 2023 · <code>{escape(command)}</code></p>
<h2>Claims</h2>{claims_table(claims)}
<h2>SSL against supervised training</h2>{sup}
<p class="note">The same backbone trained by cross-entropy for the same data, without and with
the SSL run's augmentation; NCC of h with the class means of the training split.</p>
<h2>Clustering over training ({escape(name)})</h2>{figures}
<h2>Runs</h2><p>{links}</p>"""
    html = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>clustering study"
            f"</title><style>{CSS}</style></head><body>{body}</body></html>")
    return atomic_write_text(out_dir / "report.html", html)
