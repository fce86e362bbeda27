"""Several runs side by side on one self-contained HTML page (``sslscope compare``).

    from sslscope.report.compare import build_comparison
    build_comparison(["runs/a-s0", "runs/a-s1", "runs/b"], "compare.html")

The page reads only what the runs saved (config, metrics, evaluation, run.json), like the run
report. Runs whose configs agree on everything except the seed are also summarised as one
mean ± std row, so a claim comes with its seeds. Figures land next to the page in
``figures/<stem>_probes.png`` / ``.svg`` and ``figures/<stem>_loss.png`` / ``.svg``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sslscope.errors import UserError
from sslscope.evaluate.suite import PROBES
from sslscope.files import atomic_write_text
from sslscope.report.figures import embed_figure, mpl_text, probe_name, style_step_axis
from sslscope.report.page import (
    CSS,
    MISSING,
    config_value,
    duration,
    percent,
    test_acc,
    text,
)
from sslscope.report.record import RunRecord, as_float
from sslscope.runs import RunFiles

# Keys that say where files go, how often they are saved or what is measured on the side (the
# instruments run in eval mode on their own batch): they cannot change a result, so runs that
# differ only in them (and the seed) still count as seeds of one experiment.
GROUP_IGNORES = ("seed", "data_dir", "tensorboard", "checkpoint_every", "instruments",
                 "instrument_points", "instrument_batch")
# A selection of PROBES (all of them would make the runs table too wide). Indexing PROBES makes a
# renamed probe key fail at import rather than leave an empty column.
ACCURACY_PROBES = {probe: PROBES[probe] for probe in ("linear", "knn")}
ACCURACIES = tuple((features, probe) for features in ("h", "z") for probe in ACCURACY_PROBES)
CURVE_KEY = "eval/h/linear/test_acc"


def build_comparison(run_dirs: Sequence[str | Path], out_path: str | Path) -> Path:
    """Write one HTML page comparing the runs in `run_dirs` and return its path.

    The page holds: a table with one row per run (name = directory name, method, dataset,
    steps, seed, final linear and kNN test accuracy of h and z, wall time); mean ± std rows
    for runs whose configs differ only by seed (sample std over the runs, ``GROUP_IGNORES``
    aside); the config keys that differ; h's linear-probe test accuracy over training for
    every run in one figure; and one loss panel per group of seeds (loss scales differ across
    methods).

    Args:
        run_dirs: run directories, each with at least a ``config.json``; shown in this order.
        out_path: the HTML file to write (atomically). Figures go to ``figures/`` beside it.

    Raises:
        UserError: no run given, or a run directory or its ``config.json`` is missing/corrupt.
    """
    if not run_dirs:
        raise UserError("compare needs at least one run directory")
    records = [RunRecord.load(d) for d in run_dirs]
    names = _names([Path(d) for d in run_dirs])
    groups = _groups(records)
    out_path = Path(out_path)
    # The figures go beside the page, in the folder a run directory would give them.
    fig_dir, stem = RunFiles(out_path.parent).figures, out_path.stem

    parts = [("Runs", "runs", _runs_table(records, names))]
    seeded = [g for g in groups if len(g) > 1]
    if seeded:
        body = _groups_table(records, names, seeded)
        body += ('<p class="note">Runs whose configs agree on everything but '
                 f"{', '.join(GROUP_IGNORES)}; sample standard deviation over the runs.</p>")
    else:
        body = '<p class="note">No two runs differ only by their seed.</p>'
    parts.append(("Seeds: mean ± std", "seeds", body))
    parts.append(("Config differences", "config", _differences_table(records, names)))
    fig = _probe_figure(records, names, groups)
    if fig is not None:
        img = embed_figure(fig, fig_dir, f"{stem}_probes", "linear-probe accuracy of h over steps")
        note = ("Linear-probe test accuracy on the backbone output h at each run's evaluation "
                "steps; x is step + 1 on a log scale (1 = random initialisation). Runs that "
                "differ only by seed share a colour. With one evaluation per run: each run's "
                "final accuracy as a dot, the bar at the group mean.")
        parts.append(("Probe accuracy over training", "probes",
                      f'{img}<p class="note">{note}</p>'))
    fig = _loss_figure(records, names, groups)
    if fig is not None:
        img = embed_figure(fig, fig_dir, f"{stem}_loss", "training loss of each run")
        note = ("Total training loss, one panel per group of runs that differ only by seed "
                "(scales differ across methods), its runs overlaid.")
        parts.append(("Loss", "loss", f'{img}<p class="note">{note}</p>'))

    title = escape(f"sslscope comparison: {len(records)} runs")
    toc = "".join(f'<li><a href="#{a}">{escape(t)}</a></li>' for t, a, _ in parts)
    sections = "".join(f'<section id="{a}"><h2>{escape(t)}</h2>{b}</section>' for t, a, b in parts)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body><h1>{title}</h1>"
        f'<p class="sub">{escape(", ".join(names))}</p>'
        f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>{sections}</body></html>\n"
    )
    return atomic_write_text(out_path, page)


def final_accuracy(record: RunRecord, features: str, probe: str) -> float:
    """Final test accuracy (fraction) of `probe` on the trained `features`, NaN if absent.

    Reads the trained row of ``evaluation.json`` at ``final_step`` (else the last trained row),
    never the random-init row (step 0) or the raw-pixel row.
    """
    final = (record.evaluation or {}).get("final_step")
    trained = [r for r in record.evaluation_rows()
               if r.get("features") == features and r.get("step") not in (0, None)]
    row = next((r for r in trained if r.get("step") == final), trained[-1] if trained else None)
    return test_acc(row, probe) if row is not None else math.nan


def _names(paths: list[Path]) -> list[str]:
    """Directory names; a name shared by several runs falls back to the path as given."""
    base = [p.resolve().name for p in paths]
    return [b if base.count(b) == 1 else str(p) for b, p in zip(base, paths, strict=True)]


def _groups(records: list[RunRecord]) -> list[list[int]]:
    """Indices of runs grouped by their config without `GROUP_IGNORES`, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        rest = {k: v for k, v in record.config.items() if k not in GROUP_IGNORES}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(i)
    return list(groups.values())


def _head() -> str:
    return "".join(f"<th>{escape(f)} {escape(probe_name(p))}</th>" for f, p in ACCURACIES)


def _runs_table(records: list[RunRecord], names: list[str]) -> str:
    lines = ["<tr><th>run</th><th>method</th><th>dataset</th><th>steps</th><th>seed</th>"
             f"{_head()}<th>wall time</th></tr>"]
    for record, name in zip(records, names, strict=True):
        cfg = record.config
        accs = "".join(f'<td class="num">{percent(final_accuracy(record, f, p))}</td>'
                       for f, p in ACCURACIES)
        cells = [text(cfg.get(k)) for k in ("method", "dataset", "steps", "seed")]
        lines.append(
            f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + f'{accs}<td class="num">{duration((record.run_info or {}).get("wall_seconds"))}'
            "</td></tr>"
        )
    return ('<p class="note">Final test accuracy (%) of the trained backbone output h and '
            "projector output z, from each run's evaluation.json.</p><table>"
            + "".join(lines) + "</table>")


def _groups_table(records: list[RunRecord], names: list[str], groups: list[list[int]]) -> str:
    lines = ["<tr><th>method</th><th>dataset</th><th>steps</th><th>runs</th><th>seeds</th>"
             f"{_head()}<th>wall time (mean)</th></tr>"]
    for group in groups:
        cfg = records[group[0]].config
        values = [text(records[i].config.get("seed")) for i in group]
        seeds = ", ".join(values)
        if len(set(values)) < len(values):  # the same seed twice: its ± is not seed variance
            seeds += " (a seed repeated: the spread is run-to-run noise, not across seeds)"
        accs = "".join(
            f'<td class="num">{_mean_std([final_accuracy(records[i], f, p) for i in group])}</td>'
            for f, p in ACCURACIES
        )
        walls = [as_float((records[i].run_info or {}).get("wall_seconds")) for i in group]
        finite = [w for w in walls if math.isfinite(w)]
        wall = duration(float(np.mean(finite))) if finite else MISSING
        cells = [text(cfg.get(k)) for k in ("method", "dataset", "steps")]
        cells += [", ".join(names[i] for i in group), f"{seeds} (n = {len(group)})"]
        lines.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
                     + f'{accs}<td class="num">{wall}</td></tr>')
    return "<table>" + "".join(lines) + "</table>"


def _mean_std(values: list[float]) -> str:
    """``mean ± std`` in % over the finite values (sample std, n − 1); one value: just it."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return MISSING
    if len(finite) == 1:
        return percent(finite[0])
    return f"{100 * np.mean(finite):.1f} ± {100 * np.std(finite, ddof=1):.1f}"


def _differences_table(records: list[RunRecord], names: list[str]) -> str:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(map(str, record.config)))
    differing = [k for k in keys
                 if len({json.dumps(r.config.get(k), sort_keys=True, default=str)
                         for r in records}) > 1]
    if not differing:
        return '<p class="note">The configs are identical.</p>'
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{escape(k)}</th>"
        + "".join(f"<td>{escape(_value(r.config, k))}</td>" for r in records) + "</tr>"
        for k in differing
    )
    return f"<table><tr><th>config key</th>{head}</tr>{rows}</table>"


def _value(config: dict[str, Any], key: str) -> str:
    return config_value(config[key]) if key in config else "(absent)"


def _group_labels(records: list[RunRecord], names: list[str], groups: list[list[int]]) -> list[str]:
    """A legend label per group: its method (or first run's name if methods repeat) × runs."""
    methods = [text(records[g[0]].config.get("method")) for g in groups]
    labels = []
    for method, group in zip(methods, groups, strict=True):
        base = method if methods.count(method) == 1 else names[group[0]]
        labels.append(base if len(group) == 1 else f"{base} ({len(group)} runs)")
    return labels


#: Line styles of a group's runs, in order (the colour is the group's).
RUN_STYLES = ("-", "--", ":", "-.")


def _probe_figure(
    records: list[RunRecord], names: list[str], groups: list[list[int]]
) -> Figure | None:
    """Linear-probe accuracy of h over steps, one colour and one legend entry per group.

    When no run has more than one evaluation step (a study that only evaluates at the end),
    a line plot would be a column of dots, so each group's final accuracies are drawn side by
    side instead: one dot per run, a bar at the mean.
    """
    labels = _group_labels(records, names, groups)
    curves = []
    for g, group in enumerate(groups):
        for nth, i in enumerate(group):
            steps, acc = records[i].series(CURVE_KEY, rows="eval")
            if np.isfinite(acc).any():
                order = np.argsort(steps, kind="stable")
                curves.append((g, nth, steps[order], acc[order]))
    if not curves:
        return None
    fig = Figure(figsize=(9.5, 4.8), layout="constrained")
    ax = fig.subplots()
    if max(len(steps) for _, _, steps, _ in curves) == 1:
        shown = sorted({g for g, _, _, _ in curves})
        for x, g in enumerate(shown):
            accs = [100 * float(acc[0]) for gg, _, _, acc in curves if gg == g]
            ax.plot([x] * len(accs), accs, "o", color=f"C{g % 10}", alpha=0.8)
            ax.hlines(np.mean(accs), x - 0.3, x + 0.3, color=f"C{g % 10}", linewidth=2)
        ax.set_xticks(range(len(shown)), [mpl_text(labels[g]) for g in shown],
                      rotation=30, ha="right")
        ax.set_ylabel("final h linear-probe test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
        return fig
    for g, nth, steps, acc in curves:
        ax.plot(steps + 1, 100 * acc, marker="o", markersize=3, color=f"C{g % 10}",
                linestyle=RUN_STYLES[nth % len(RUN_STYLES)],
                label=mpl_text(labels[g]) if nth == 0 else None)
    style_step_axis(ax, "h linear-probe test accuracy (%)")
    return fig


def _loss_figure(
    records: list[RunRecord], names: list[str], groups: list[list[int]]
) -> Figure | None:
    """One panel per group (loss scales differ across methods), its runs overlaid.

    A run has one look on the whole page: its group's colour, its line style within the group.
    """
    series = [record.series("train/loss") for record in records]
    if not any(np.isfinite(values).any() for _, values in series):
        return None
    labels = _group_labels(records, names, groups)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    for g, (ax, label, group) in enumerate(zip(axes, labels, groups, strict=False)):
        drawn = False
        for nth, i in enumerate(group):
            steps, values = series[i]
            if np.isfinite(values).any():  # the run's colour and line style of the probe figure
                ax.plot(steps, values, color=f"C{g % 10}", linestyle=RUN_STYLES[nth % 4],
                        linewidth=1.0, alpha=0.85)
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no loss logged", ha="center", transform=ax.transAxes)
        ax.set_title(mpl_text(label), fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    for ax in axes[len(groups):]:
        ax.set_axis_off()
    return fig
