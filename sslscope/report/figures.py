"""Matplotlib figures for the run report, and their embedding as self-contained HTML.

Figures are built on `matplotlib.figure.Figure` directly, never through pyplot: pyplot keeps a
global registry of open figures and a process-wide backend, which a library called from a
training loop (or from threads) should not touch. `Figure.savefig` picks the Agg canvas for PNG
and the SVG canvas for SVG by itself.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sslscope.evaluate.suite import PROBES
from sslscope.files import atomic_write_bytes
from sslscope.report.record import RunRecord, as_float

PNG_DPI = 110
# Matplotlib writes its URL into PNG "Software" and SVG "Creator" and a date into SVGs; dropping
# them keeps URLs out of the figures and the PNGs byte-identical across rebuilds.
_PNG_META: dict[str, str | None] = {"Software": None}
_SVG_META: dict[str, str | None] = {"Date": None, "Creator": None}

_PROBE_TEST_ACC = re.compile(r"^eval/([^/]+)/([^/]+)/test_acc$")
_PROBE_POSITION = {probe: i for i, probe in enumerate(PROBES)}  # PROBES is in display order


def probe_name(probe: str) -> str:
    """Human name of a probe key (``"knn"`` → ``"kNN"``) from `PROBES`.

    Args:
        probe: a result key; one that `PROBES` does not know (a run from a newer or patched
            sslscope) is shown as the key itself.
    """
    return PROBES.get(probe, probe)


def probe_sort_key(probe: str) -> tuple[int, str]:
    """Sort key: the probes of `PROBES` in its order, then any other probe alphabetically."""
    return (_PROBE_POSITION.get(probe, len(_PROBE_POSITION)), probe)


def embed_figure(fig: Figure, fig_dir: str | Path, name: str, alt: str) -> str:
    """Save `fig` as ``fig_dir/<name>.png`` and ``.svg`` and return an ``<img>`` tag.

    Both files are written atomically. The returned tag embeds the same PNG bytes as a base64
    data URI, so the HTML needs no other file. The figure is cleared afterwards to free it.

    Args:
        fig: the figure; not usable after this call.
        fig_dir: where the files go, created if needed: a run's ``RunFiles.figures``, or the
            ``figures/`` folder beside a comparison page.
        name: file stem, usually the section anchor.
        alt: alternative text (plain text; escaped here).
    """
    png, svg = io.BytesIO(), io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata=_PNG_META)
        fig.savefig(svg, format="svg", metadata=_SVG_META)
    finally:
        fig.clear()
    fig_dir = Path(fig_dir)
    atomic_write_bytes(fig_dir / f"{name}.png", png.getvalue())
    atomic_write_bytes(fig_dir / f"{name}.svg", svg.getvalue())
    data = base64.b64encode(png.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def loss_figure(record: RunRecord) -> Figure | None:
    """Total loss and each weighted term over steps; a second panel with the lr schedule.

    The x axis is linear: training rows are logged at a fixed step interval, and the lr
    schedule (warm-up, cosine) is defined in steps, so a linear axis gives every logged point
    equal room and shows the schedule as it was designed. Early dynamics at log-spaced steps
    are the probe figure's job. The y axis is linear because some losses are negative
    (BYOL, MMCR), which rules out a log scale.

    Returns:
        None when no training row has ``train/loss`` or any ``train/loss/<term>``.
    """
    terms = [k for k in record.keys("train") if k.startswith("train/loss/")]
    curves = [("loss (total)", True, *record.series("train/loss"))]
    curves += [(k.removeprefix("train/loss/"), False, *record.series(k)) for k in terms]
    curves = [c for c in curves if np.isfinite(c[3]).any()]
    if not curves:
        return None
    lr_steps, lr = record.series("train/lr")
    has_lr = bool(np.isfinite(lr).any())

    fig = Figure(figsize=(8.0, 6.0 if has_lr else 4.2), layout="constrained")
    if has_lr:
        ax, ax_lr = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    else:
        ax, ax_lr = fig.subplots(1, 1), None
    for i, (label, total, steps, values) in enumerate(curves):
        ax.plot(
            steps, values, label=mpl_text(label),
            color="black" if total else f"C{i}", linewidth=2.0 if total else 1.3,
            zorder=3 if total else 2,
        )
    ax.set_ylabel("loss (terms are weighted: they sum to the total)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    if ax_lr is not None:
        ax_lr.plot(lr_steps, lr, color="C7")
        ax_lr.set_ylabel("learning rate")
        ax_lr.grid(alpha=0.3)
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    (ax_lr if ax_lr is not None else ax).set_xlabel("step")
    return fig


def probe_figure(record: RunRecord) -> Figure | None:
    """Test accuracy of every features × probe series over steps, raw pixels dashed.

    The x axis is log-scaled because evaluation steps are log-spaced; step 0 (the random
    initialisation) exists, so the axis plots step + 1 and says so. Colour marks the probe,
    line style and marker mark the features (h: backbone, z: projector).

    Returns:
        None when no evaluation row has an ``eval/<features>/<probe>/test_acc`` key.
    """
    series = []
    for key in record.keys("eval"):
        match = _PROBE_TEST_ACC.match(key)
        if match and _has_values(record, key, rows="eval"):
            series.append((match.group(1), match.group(2), key))
    if not series:
        return None
    probes = sorted({p for _, p, _ in series}, key=probe_sort_key)
    features = sorted({f for f, _, _ in series}, key=lambda f: (f not in ("h", "z"), f))
    color = {p: f"C{i}" for i, p in enumerate(probes)}
    styles = [("-", "o"), (":", "s"), ("-.", "^"), ((0, (1, 3)), "v")]
    style = {f: styles[i % len(styles)] for i, f in enumerate(features)}

    fig = Figure(figsize=(9.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for feat, probe, key in sorted(series, key=lambda s: (probe_sort_key(s[1]), s[0])):
        steps, acc = record.series(key, rows="eval")
        order = np.argsort(steps, kind="stable")
        linestyle, marker = style[feat]
        ax.plot(
            steps[order] + 1, 100 * acc[order], linestyle=linestyle, marker=marker,
            markersize=4, color=color[probe], label=mpl_text(f"{feat} · {probe_name(probe)}"),
        )
    for probe, acc in _pixel_baselines(record).items():
        ax.axhline(
            100 * acc, linestyle="--", linewidth=1.2, alpha=0.8,
            color=color.get(probe, "C7"), label=mpl_text(f"raw pixels · {probe_name(probe)}"),
        )
    style_step_axis(ax, "test accuracy (%)")
    return fig


def style_step_axis(ax: Axes, ylabel: str) -> None:
    """Label a steps-vs-accuracy axis the same way in run and comparison reports.

    Log x axis of step + 1 (evaluations are log-spaced; step 0 is the random init), a grid, and
    the legend outside the axes, where many curves cannot cover it.
    """
    ax.set_xscale("log")
    ax.set_xlabel("step + 1 (log scale; 1 = random initialisation)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _pixel_baselines(record: RunRecord) -> dict[str, float]:
    """``{probe: test_acc}`` of the raw-pixel row of evaluation.json, finite values only."""
    for row in record.evaluation_rows():
        if row.get("features") == "pixels":
            out = {}
            for probe, result in row.items():
                if isinstance(result, dict):
                    acc = as_float(result.get("test_acc"))
                    if np.isfinite(acc):
                        out[str(probe)] = acc
            return out
    return {}


def _has_values(record: RunRecord, key: str, rows: str = "train") -> bool:
    return bool(np.isfinite(record.series(key, rows=rows)[1]).any())


def mpl_text(label: str) -> str:
    """Make a metric name, class name or run name safe as a matplotlib label.

    ``$`` would switch on mathtext (and can raise on odd input); a leading ``_`` hides the
    entry from the legend.

    Args:
        label: plain text.

    Returns:
        `label` with ``$`` escaped and, if it starts with ``_``, a leading space.
    """
    label = label.replace("$", r"\$")
    return " " + label if label.startswith("_") else label
