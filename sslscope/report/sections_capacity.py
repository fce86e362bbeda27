"""Report section "Manifold capacity": MMCR's pretraining percent error over training.

Reads what the ``capacity`` instrument writes (:func:`sslscope.instruments.measures.capacity`):
the ``inst/{h,z}/…`` scalars of ``metrics.jsonl``

    ppe                1 − ‖M‖_* / √(P·min(P, D))   (Schaeffer et al. 2024, Eq. 4)
    centroid_nuclear   ‖M‖_*, M the (P, D) centroids of the K normalised views of each image
    capacity_bound     √(P·min(P, D))
    local_nuclear      mean_n ‖Z_n‖_*
    centroid_norm      mean_n ‖μ_n‖

and ``arrays/capacity.safetensors`` (``{h,z}/centroid_sv``, σ(M), and ``{h,z}/shape``, (P, D),
per instrument step). The PPE of uniform random unit centroids of the same P and D (the
large-P, D limit, :func:`sslscope.theory.capacity.asymptotic_ppe`) is drawn over the
measurement. None when the run did not record ``capacity``.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sslscope.report.figures import embed_figure, mpl_text
from sslscope.report.page import MISSING, Section, SectionFn
from sslscope.report.record import RunRecord
from sslscope.theory.capacity import asymptotic_ppe

FEATURES = (("h", "C0"), ("z", "C1"))
KEYS = ("ppe", "centroid_nuclear", "capacity_bound", "local_nuclear", "centroid_norm")
SPECTRUM_STEPS = 4  # instrument steps whose σ(M) are drawn: the first, the last, two between


def capacity_section(record: RunRecord) -> Section | None:
    """PPE, ‖M‖_* against its bound, the centroid norm and σ(M) over training, with a table."""
    series = {(feat, key): _series(record, f"inst/{feat}/{key}")
              for feat, _ in FEATURES for key in KEYS}
    if not any(series[(feat, "ppe")][0].size for feat, _ in FEATURES):
        return None
    arrays = record.arrays("capacity")
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    ax_ppe, ax_norm, ax_agree, ax_sv = fig.subplots(2, 2).ravel()
    random_ppe = {}
    for feat, colour in FEATURES:
        steps, ppe = series[(feat, "ppe")]
        if not steps.size:
            continue
        ax_ppe.plot(steps + 1, ppe, marker=".", color=colour, label=f"{feat}")
        random_ppe[feat] = _random_ppe(arrays, feat)
        if math.isfinite(random_ppe[feat]):
            ax_ppe.axhline(random_ppe[feat], color=colour, linestyle=":",
                           label=f"{feat}: random unit centroids")
        at, nuclear = series[(feat, "centroid_nuclear")]
        ax_norm.plot(at + 1, nuclear, marker=".", color=colour, label=f"{feat}: ‖M‖_*")
        at, bound = series[(feat, "capacity_bound")]
        ax_norm.plot(at + 1, bound, linestyle="--", color=colour, label=f"{feat}: √(P·min(P, D))")
        at, norm = series[(feat, "centroid_norm")]
        ax_agree.plot(at + 1, norm, marker=".", color=colour, label=f"{feat}")
    _style(ax_ppe, "pretraining percent error", "PPE = 1 − ‖M‖_* / √(P·min(P, D))")
    _style(ax_norm, "centroid nuclear norm and its bound", "nuclear norm")
    _style(ax_agree, "agreement of the views", "mean ‖μ_n‖ (1: the views coincide)")
    _draw_spectra(ax_sv, arrays)
    img = embed_figure(fig, record.files.figures, "capacity",
                       "pretraining percent error and centroid nuclear norm over training")
    note = (
        "On the fixed instrument batch: the K views of each of the P images (the two modalities "
        "of a cross-modal method), L2-normalised, averaged into centroids μ_n, stacked into M "
        "(P×D). PPE is 0 when the centroids have unit norm (views that agree) and are orthogonal "
        "(P ≤ D) or a tight frame (P ≥ D); Schaeffer et al. (2024) found it falls as a power law "
        "in compute, most slowly at P = D. Dotted: the PPE of uniform random unit centroids of "
        "the same P and D (Marchenko–Pastur limit; 1 − 8/(3π) ≈ 0.151 at P = D), a network whose "
        "views agree but whose centroids point at random. Bottom right: σ(M) from the float64 "
        "Gram matrix, so values below about 1e-8 of the largest are round-off. Raw σ(M): "
        "arrays/capacity.safetensors."
    )
    return Section("Manifold capacity",
                   f'{img}<p class="note">{escape(note)}</p>{_table(series, random_ppe)}',
                   "capacity")


def _series(record: RunRecord, key: str) -> tuple[np.ndarray, np.ndarray]:
    """An instrument scalar over steps (training and evaluation rows both), in step order."""
    steps, values = record.series(key, rows="all")
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def _style(ax: Axes, title: str, ylabel: str) -> None:
    """Log step axis, grid, labels and an inner legend, as the dynamics sections have."""
    ax.set_xscale("log")
    ax.set_xlabel("step + 1 (log scale)")
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title), fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small")


def _random_ppe(arrays: dict | None, feat: str) -> float:
    """The PPE of random unit centroids of this run's P and D (the large-P, D limit)."""
    key = f"{feat}/shape"
    if arrays is None or key not in arrays or not arrays[key].shape[0]:
        return math.nan
    p, d = (int(n) for n in arrays[key][-1])  # (P, D) of the last step
    return asymptotic_ppe(min(p, d) / max(p, d))


def _draw_spectra(ax: Axes, arrays: dict | None) -> None:
    """σ(M) of z at a few instrument steps, descending, on a log axis."""
    ax.set_title("singular values of the z centroids", fontsize="medium")
    if arrays is None or "z/centroid_sv" not in arrays:
        ax.text(0.5, 0.5, "no arrays/capacity.safetensors", ha="center", transform=ax.transAxes)
        return
    steps, sv = arrays["step"].numpy(), arrays["z/centroid_sv"].numpy()  # (T,), (T, min(P, D))
    picks = np.unique(np.linspace(0, steps.size - 1, SPECTRUM_STEPS).round().astype(int))
    for i, t in enumerate(picks):
        positive = sv[t] > 0  # a log axis cannot show zeros
        rank = np.arange(1, sv.shape[1] + 1)
        ax.plot(rank[positive], sv[t][positive], color=f"C{i}", label=f"step {steps[t]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("σ_r(M)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")


def _table(series: dict, random_ppe: dict[str, float]) -> str:
    """The last instrument step's values for h and z."""
    head = ("<tr><th>features</th><th>step</th><th>PPE</th><th>random-centroid PPE</th>"
            "<th>‖M‖_*</th><th>√(P·min(P, D))</th><th>mean ‖Z_n‖_*</th><th>mean ‖μ_n‖</th></tr>")
    rows = ""
    for feat, _ in FEATURES:
        steps, _ppe = series[(feat, "ppe")]
        if not steps.size:
            continue
        last = {key: series[(feat, key)][1][-1] if series[(feat, key)][1].size else math.nan
                for key in KEYS}
        cells = [_fmt(last["ppe"], 4), _fmt(random_ppe.get(feat, math.nan), 4),
                 _fmt(last["centroid_nuclear"], 1), _fmt(last["capacity_bound"], 1),
                 _fmt(last["local_nuclear"], 3), _fmt(last["centroid_norm"], 3)]
        rows += (f"<tr><td>{feat}</td><td class=\"num\">{int(steps[-1])}</td>"
                 + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    return f"<h3>At the last instrument step</h3><table>{head}{rows}</table>"


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else MISSING


SECTIONS: list[SectionFn] = [capacity_section]
