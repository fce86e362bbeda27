"""Report section "Clustering over training": how the embeddings cluster by label as they train.

The measurements of Ben-Shaul et al., "Reverse Engineering Self-Supervised Learning" (NeurIPS
2023), read from the ``clus/...`` keys of ``metrics.jsonl`` (logged at evaluation steps):

    clus/<rep>/<level>/<metric>     rep: ``h`` or a backbone tap (the order of first appearance
                                    is the forward order); level: ``sample``, ``class``,
                                    ``superclass`` or ``random<k>``; metric: ``ncc_train_acc``,
                                    ``ncc_test_acc``, ``linear_test_acc``, ``ncc_linear_ratio``,
                                    ``cdnv``, ``within_variance``, ``between_distance``
    clus/randomness/<level>         randomness r in [0, 1] of a random level (1: arbitrary labels)
    clus/mine/mi, clus/mine/mi_std  MINE estimate of I(X; h) in nats, and its std over seeds

and the training loss terms ``train/loss/invariance``, ``/variance`` and ``/covariance``. Each
figure is drawn only when its keys exist; the section is None when no ``clus/`` key has a
value (every run from before these keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from sslscope.report.figures import embed_figure, mpl_text, style_step_axis
from sslscope.report.page import Section, SectionFn
from sslscope.report.record import RunRecord, as_float

SEMANTIC = ("sample", "class", "superclass")  # levels of figure 1, in this order
LEVEL_COLOUR = {"sample": "C0", "class": "C1", "superclass": "C2"}
ACCURACIES = (("ncc_train_acc", "NCC train", "-"), ("ncc_test_acc", "NCC test", "--"),
              ("linear_test_acc", "linear test", ":"))
SPREAD = (("cdnv", "CDNV"), ("within_variance", "within-class variance"),
          ("between_distance", "between-class distance"))
LAYER_STEPS = 4  # steps drawn in the layer-wise figure: the final one and earlier ones
RANDOMNESS = colormaps["viridis"]
_KEY = re.compile(r"^clus/([^/]+)/([^/]+)/([^/]+)$")
_RANDOM = re.compile(r"^random(\d+)$")


@dataclass(frozen=True)
class _Layout:
    """What the run logged: representations (taps in forward order, then h) and levels."""

    reps: list[str]
    levels: list[str]
    randomness: dict[str, float]  # level -> r (NaN when not logged)


def clustering_section(record: RunRecord) -> Section | None:
    """All clustering figures of the ``clus/`` keys; None when no such key has a value."""
    layout = _layout(record)
    if layout is None:
        return None
    parts = [_accuracy_figure(record), _ratio_figure(record), _spread_figure(record, layout),
             _layer_figure(record, layout), _mine_figure(record), _loss_terms_figure(record)]
    body = "".join(parts)
    if not body:
        body = '<p class="note">The run logged clustering keys, but none this page draws.</p>'
    return Section("Clustering over training", body, "clustering")


def _layout(record: RunRecord) -> _Layout | None:
    seen: dict[str, None] = {}  # clus/ keys with a value somewhere, in first-seen order
    for row in record.train_rows + record.eval_rows:
        seen.update((str(k), None) for k, v in row.items()
                    if str(k).startswith("clus/") and np.isfinite(as_float(v)))
    if not seen:
        return None
    reps: dict[str, None] = {}
    levels: dict[str, None] = {}
    for key in seen:
        match = _KEY.match(key)
        if match:
            reps.setdefault(match[1])
            levels.setdefault(match[2])
    order = {lvl: i for i, lvl in enumerate(levels)}

    def rank(lvl: str) -> tuple[int, int]:
        random = _RANDOM.match(lvl)
        if lvl in SEMANTIC:
            return (0, SEMANTIC.index(lvl))
        return (1, int(random[1])) if random else (2, order[lvl])

    randomness = {}
    for lvl in levels:
        values = _series(record, f"clus/randomness/{lvl}")[1]
        values = values[np.isfinite(values)]
        randomness[lvl] = float(np.median(values)) if values.size else np.nan
    taps = [r for r in reps if r != "h"]
    return _Layout(taps + (["h"] if "h" in reps else []), sorted(levels, key=rank), randomness)


def _accuracy_figure(record: RunRecord) -> str:
    """Per level (sample, class, superclass) of h: NCC train/test and linear test accuracy."""
    levels = [lvl for lvl in SEMANTIC
              if any(_has(record, f"clus/h/{lvl}/{m}") for m, _, _ in ACCURACIES)]
    if not levels:
        return ""
    fig = Figure(figsize=(3.7 * len(levels), 3.4), layout="constrained")
    for ax, lvl in zip(np.atleast_1d(fig.subplots(1, len(levels), sharey=True)), levels,
                       strict=True):
        for metric, label, style in ACCURACIES:
            steps, values = _series(record, f"clus/h/{lvl}/{metric}")
            _plot(ax, steps, 100 * values, linestyle=style,
                  color=LEVEL_COLOUR[lvl], label=label)
        _axis(ax, "accuracy (%)" if lvl == levels[0] else "", f"h · {lvl} level")
    return _embed(record, fig, "accuracy", "NCC and linear accuracy of h per label level",
                  "Accuracy of h by label level",
                  "NCC (nearest class centre: each image gets the label of the closest class "
                  "mean of the training embeddings) on the training and test images, and a "
                  "linear probe on the test images. Sample level: each image is its own class "
                  "and its augmented views are the samples; class and superclass: the data "
                  "set's labels.")


def _ratio_figure(record: RunRecord) -> str:
    """NCC test / linear test accuracy of h per level, raw and divided by its first value."""
    ratios = {lvl: _ratio(record, lvl) for lvl in SEMANTIC}
    ratios = {lvl: s for lvl, s in ratios.items() if np.isfinite(s[1]).any()}
    if not ratios:
        return ""
    fig = Figure(figsize=(9.5, 3.4), layout="constrained")
    raw, normalised = fig.subplots(1, 2)
    for lvl, (steps, values) in ratios.items():
        _plot(raw, steps, values, color=LEVEL_COLOUR[lvl], label=lvl)
        finite = values[np.isfinite(values) & (values != 0)]
        if finite.size:
            _plot(normalised, steps, values / finite[0], color=LEVEL_COLOUR[lvl], label=lvl)
    _axis(raw, "NCC test acc ÷ linear test acc", "NCC/linear ratio of h")
    _axis(normalised, "ratio ÷ its first value", "ratio relative to the first step")
    return _embed(record, fig, "ncc_ratio", "ratio of NCC to linear accuracy per level",
                  "NCC accuracy relative to the linear probe",
                  "The ratio ncc_test_acc / linear_test_acc of h per level (1: the class means "
                  "separate the test images as well as the linear probe does); right, each "
                  "curve divided by its value at the first logged step (step 0 is the random "
                  "initialisation), as in Fig. 2 (middle) of Ben-Shaul et al.")


def _spread_figure(record: RunRecord, layout: _Layout) -> str:
    """CDNV, within variance and between distance of h for class and random levels; ratios."""
    levels = [lvl for lvl in layout.levels if lvl == "class" or _RANDOM.match(lvl)]
    levels = [lvl for lvl in levels
              if any(_has(record, f"clus/h/{lvl}/{m}") for m, _ in SPREAD)]
    if not levels:
        return ""
    has_ratio = "class" in levels and len(levels) > 1
    fig = Figure(figsize=(12.0, 6.6 if has_ratio else 3.5), layout="constrained")
    axes = fig.subplots(2 if has_ratio else 1, 3, squeeze=False)
    for col, (metric, title) in enumerate(SPREAD):
        series = {lvl: _series(record, f"clus/h/{lvl}/{metric}") for lvl in levels}
        for lvl, (steps, values) in series.items():
            r = 0.0 if lvl == "class" else layout.randomness.get(lvl, np.nan)
            label = f"{lvl} (r = {'?' if np.isnan(r) else f'{r:.2f}'})"
            _plot(axes[0, col], steps, values, color=_r_colour(r), label=label,
                  linewidth=2.2 if lvl == "class" else 1.3)
        _axis(axes[0, col], title, f"{title} of h", log_y=True, legend=col == 0)
        if has_ratio:
            base = dict(zip(*series["class"], strict=True))
            for lvl in levels[1:]:
                steps, values = series[lvl]
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.array([base.get(s, np.nan) for s in steps]) / values
                _plot(axes[1, col], steps, ratio,
                      color=_r_colour(layout.randomness.get(lvl, np.nan)), label=lvl)
            axes[1, col].axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
            _axis(axes[1, col], "class ÷ random", f"{title}: class ÷ random", log_y=True,
                  legend=False)
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), RANDOMNESS), ax=axes[:, -1].tolist(),
                 label="randomness r of the labels")
    return _embed(record, fig, "cdnv", "class-distance normalised variance per label level",
                  "Class-distance normalised variance (CDNV)",
                  "CDNV (Galanti et al. 2022) averages (Var_i + Var_j) / (2‖μ_i − μ_j‖²) over "
                  "class pairs: low when classes are tight relative to their separation. Its "
                  "parts: the mean per-class variance and the mean squared distance between "
                  "class means. Colour is the randomness r of the labels (0: the true classes; "
                  "random levels relabel a supervised network's predictions, 1: arbitrary "
                  "labels). Bottom row: each class-level value divided by the random level's.")


def _layer_figure(record: RunRecord, layout: _Layout) -> str:
    """Linear test accuracy per tap (forward order, then h) at a few steps, per level."""
    taps = [r for r in layout.reps if r != "h"]
    acc = {(rep, lvl): dict(zip(*_series(record, f"clus/{rep}/{lvl}/linear_test_acc"),
                                strict=True))
           for rep in layout.reps for lvl in layout.levels}
    levels = [lvl for lvl in layout.levels
              if any(np.isfinite(v) for t in taps for v in acc[t, lvl].values())]
    if not taps or not levels:
        return ""
    all_steps = sorted({s for t in taps for lvl in levels for s in acc[t, lvl]})
    picks = np.unique(np.linspace(0, len(all_steps) - 1, min(LAYER_STEPS, len(all_steps)))
                      .round().astype(int))
    steps = [all_steps[i] for i in picks]
    has_ratio = "class" in levels and "superclass" in levels
    panels = [*levels, *(["superclass ÷ class"] if has_ratio else [])]
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.9 * ncols, 3.3 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    colours = colormaps["plasma"](np.linspace(0.0, 0.8, len(steps)))
    for ax, panel in zip(axes, panels, strict=False):
        for step, colour in zip(steps, colours, strict=True):
            if panel in levels:
                values = np.array([acc[r, panel].get(step, np.nan) for r in layout.reps])
                y_label, scale = "linear test accuracy (%)", 100.0
            else:
                values = np.array([acc[r, "superclass"].get(step, np.nan)
                                   / acc[r, "class"].get(step, np.nan) for r in layout.reps])
                y_label, scale = "superclass acc ÷ class acc", 1.0
            ax.plot(np.arange(len(layout.reps)), scale * values, marker="o", color=colour,
                    linewidth=2.0 if step == steps[-1] else 1.1, label=f"step {step}")
        ax.set_xticks(np.arange(len(layout.reps)),
                      [mpl_text(r) for r in layout.reps], rotation=45, ha="right")
        ax.set_ylabel(y_label)
        r = layout.randomness.get(panel, np.nan)
        title = panel if panel not in levels else f"{panel} level" + (
            "" if np.isnan(r) else f" (r = {r:.2f})")
        ax.set_title(mpl_text(title), fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return _embed(record, fig, "layers", "linear accuracy per layer",
                  "Clustering by layer",
                  "Linear-probe test accuracy on each backbone tap, in forward order, and on "
                  f"the backbone output h, at {len(steps)} logged steps (the last one thick); "
                  "one panel per label level"
                  + ("; last panel: superclass accuracy divided by class accuracy per tap."
                     if has_ratio else "."))


def _mine_figure(record: RunRecord) -> str:
    """The MINE estimate of I(X; h) over training (``clus/mine/mi``) with its ±std band."""
    steps, mi = _series(record, "clus/mine/mi")
    if not np.isfinite(mi).any():
        return ""
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(steps + 1, mi, marker=".", color="C4", label="MINE I(X; h)")
    std_steps, std = _series(record, "clus/mine/mi_std")
    if np.isfinite(std).any() and np.array_equal(std_steps, steps):
        ax.fill_between(steps + 1, mi - std, mi + std, color="C4", alpha=0.25, label="± std")
    style_step_axis(ax, "mutual information (nats)")
    return _embed(record, fig, "mine", "mutual information between inputs and embeddings",
                  "Mutual information I(X; h)",
                  "Mutual Information Neural Estimation (MINE, Belghazi et al. 2018): a lower "
                  "bound on I(X; h) between the images and the backbone output h (each on its top "
                  "64 principal directions), in nats; the band "
                  "is ± one standard deviation over the estimator's seeds.")


def _loss_terms_figure(record: RunRecord) -> str:
    """``train/loss/invariance`` vs variance + covariance, beside class-level linear accuracy."""
    inv = _series(record, "train/loss/invariance", rows="train")
    regs = [dict(zip(*_series(record, f"train/loss/{k}", rows="train"), strict=True))
            for k in ("variance", "covariance")]
    regs = [r for r in regs if any(np.isfinite(v) for v in r.values())]
    if not np.isfinite(inv[1]).any() or not regs:
        return ""
    reg = np.array([sum(r.get(s, np.nan) for r in regs) for s in inv[0]])
    acc = _series(record, "clus/h/class/linear_test_acc")
    fig = Figure(figsize=(10.5, 3.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    _plot(loss_ax, *inv, color="C0", label="invariance", marker=None)
    _plot(loss_ax, inv[0], reg, color="C3", label="variance + covariance", marker=None)
    _axis(loss_ax, "loss term (weighted)", "invariance vs regularisation", log_y=True)
    if _plot(acc_ax, acc[0], 100 * acc[1], color=LEVEL_COLOUR["class"], label="h · class"):
        _axis(acc_ax, "linear test accuracy (%)", "class-level linear accuracy")
    else:
        acc_ax.set_axis_off()
    return _embed(record, fig, "loss_terms", "invariance and regularisation terms of the loss",
                  "Invariance and regularisation",
                  "The loss terms as logged in training (weighted, as they enter the total): "
                  "the invariance term (distance between the views' embeddings) and the "
                  "regularisation, variance + covariance; right, the class-level linear "
                  "test accuracy of h over the same steps.")


def _series(record: RunRecord, key: str, rows: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """One scalar over steps, in step order (``clus/`` rows may be training or eval rows)."""
    steps, values = record.series(key, rows=rows)
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def _has(record: RunRecord, key: str) -> bool:
    return bool(np.isfinite(_series(record, key)[1]).any())


def _ratio(record: RunRecord, lvl: str) -> tuple[np.ndarray, np.ndarray]:
    """``ncc_linear_ratio`` of h at `lvl`, or NCC test ÷ linear test acc where it is absent."""
    steps, ratio = _series(record, f"clus/h/{lvl}/ncc_linear_ratio")
    if np.isfinite(ratio).any():
        return steps, ratio
    steps, ncc = _series(record, f"clus/h/{lvl}/ncc_test_acc")
    linear = dict(zip(*_series(record, f"clus/h/{lvl}/linear_test_acc"), strict=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        return steps, ncc / np.array([linear.get(s, np.nan) for s in steps])


def _r_colour(r: float) -> tuple | str:
    return "grey" if np.isnan(r) else RANDOMNESS(float(np.clip(r, 0.0, 1.0)))


def _plot(ax: Axes, steps: np.ndarray, values: np.ndarray, marker: str | None = ".",
          **kw) -> bool:
    """Plot `values` against step + 1 (non-finite as gaps); False when there is nothing."""
    values = np.where(np.isfinite(values), values, np.nan)
    if not np.isfinite(values).any():
        return False
    if "label" in kw:
        kw["label"] = mpl_text(kw["label"])
    ax.plot(steps + 1, values, marker=marker, **kw)
    return True


def _axis(ax: Axes, ylabel: str, title: str, log_y: bool = False, legend: bool = True) -> None:
    """Log x axis of step + 1, a title and a legend inside the panel (several per figure).

    With `log_y`, the y axis is logarithmic too when every drawn value is positive.
    """
    ax.set_xscale("log")
    ax.set_xlabel("step + 1 (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(mpl_text(title), fontsize="medium")
    if log_y and all(np.nanmin(line.get_ydata()) > 0 for line in ax.get_lines()
                     if np.isfinite(line.get_ydata()).any()):
        _log_y(ax)
    ax.grid(alpha=0.3, which="both")
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small")


def _log_y(ax: Axes) -> None:
    """Log y axis labelled with plain numbers (0.5, 2), minor ones too when it spans little."""
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    if high / low < 100:
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0, 7.0) if high / low < 10
                                              else (2.0, 5.0)))
    ax.yaxis.set_minor_formatter(plain if high / low < 100 else NullFormatter())


def _embed(record: RunRecord, fig: Figure, name: str, alt: str, heading: str,
           note: str) -> str:
    img = embed_figure(fig, record.files.figures, f"clustering_{name}", alt)
    return f'<h3>{escape(heading)}</h3>{img}<p class="note">{escape(note)}</p>'


SECTIONS: list[SectionFn] = [clustering_section]
