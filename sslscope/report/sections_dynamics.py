"""Report sections drawn from the instruments: the spectrum over training and the geometry.

They read ``arrays/spectrum.safetensors`` and the ``inst/...`` keys of ``metrics.jsonl``, which
a running run rewrites as it goes, so ``sslscope report`` on a run still training shows it so
far. Each returns None when its instrument was off.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sslscope.instruments.steps import emergence_steps, staircase_steps
from sslscope.report.figures import embed_figure, mpl_text
from sslscope.report.page import Section, SectionFn
from sslscope.report.record import RunRecord

CURVES = 16  # eigenvalue curves drawn per panel: the largest ones, where the staircase is
GEOMETRY = (("alignment", "alignment  E‖ẑ_a − ẑ_b‖²"), ("uniformity", "uniformity (t = 2)"),
            ("normalized_std", "std of normalised z (1/√D healthy, 0 collapsed)"))


def spectrum_over_training_section(record: RunRecord) -> Section | None:
    """Eigenvalues over training (the staircase), effective rank, and when each emerged."""
    arrays = record.arrays("spectrum")
    if arrays is None or arrays["step"].numel() < 2:
        return None
    steps = arrays["step"].numpy()
    panels = [("z/xcorr", "z: cross-view cross-correlation C"), ("z/cov", "z: covariance"),
              ("h/cov", "h: covariance")]
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, (key, title) in zip(axes, panels, strict=False):
        values = arrays[key].numpy()  # (T, D), descending in each row
        shown = min(CURVES, values.shape[1])
        for j in range(shown):
            positive = values[:, j] > 0  # a log axis cannot show zeros or negatives
            ax.plot(steps[positive] + 1, values[positive, j], color=f"C{j % 10}",
                    linewidth=1.2, label=mpl_text(f"λ{j + 1}") if j < 8 else None)
        ax.set_yscale("log")
        ax.set_title(f"{title} (top {shown} of {values.shape[1]})", fontsize="medium")
        ax.set_ylabel("eigenvalue")
    axes[0].legend(fontsize="x-small", ncol=2)
    for feat, colour in (("h", "C0"), ("z", "C1")):
        for key, style in (("eff_rank", "-"), ("rankme", ":")):
            at, values = _series(record, f"inst/{feat}/{key}")
            if at.size:
                axes[3].plot(at + 1, values, style, color=colour, marker=".",
                             label=f"{feat} {'effective rank' if key == 'eff_rank' else 'RankMe'}")
    axes[3].set_title("rank of the embeddings", fontsize="medium")
    axes[3].legend(fontsize="small")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("step + 1 (log scale)")
        ax.grid(alpha=0.3, which="both")
    img = embed_figure(fig, record.files.figures, "spectrum_over_training",
                       "eigenvalues and rank of the embeddings over training")
    note = (
        f"The {steps.size} instrument steps are log-spaced; every step measures the same fixed "
        "images under the same augmentation, so the curves show the network changing, not the "
        "batch. Top left: eigenvalues of the symmetrised, uncentred C = (Z_aᵀZ_b + Z_bᵀZ_a)/(2N) "
        "of the two views, the matrix of the stepwise theory (from small initialisation they "
        "rise one after another: the staircase). Top right and bottom left: covariance "
        "eigenvalues of z and h (both views, float64). Raw values: arrays/spectrum.safetensors."
    )
    return Section("Spectrum over training",
                   f'{img}<p class="note">{note}</p>{_timing_table(record, arrays)}',
                   "spectrum_over_training")


def _timing_table(record: RunRecord, arrays: dict) -> str:
    """When the largest eigenvalues of C reached half their final value; the loss's steps."""
    emerged = emergence_steps(arrays["step"].numpy(), arrays["z/xcorr"].numpy())[:CURVES]
    cells = "".join(f"<td class=\"num\">{'—' if np.isnan(t) else round(t)}</td>" for t in emerged)
    head = "".join(f"<th>λ{j + 1}</th>" for j in range(emerged.size))
    html = ("<h3>When each direction emerged</h3><p class=\"note\">The step at which "
            "eigenvalue λ_j of C first reached half its final value, interpolated between the "
            "two instrument steps around the crossing (— : above half already at the first "
            "measurement, or never positive).</p>"
            f"<table><tr>{head}</tr><tr>{cells}</tr></table>")
    at, loss = record.series("train/loss")
    finite = np.isfinite(loss)
    if finite.sum() >= 3:
        drops = staircase_steps(at[finite], loss[finite])
        listed = ", ".join(str(int(round(t))) for t in drops) or "none found"
        html += (f'<p class="note">Steps of the loss staircase (peaks of −dL/d log t): '
                 f"{listed}.</p>")
    return html


def geometry_section(record: RunRecord) -> Section | None:
    """Alignment, uniformity and the std of normalised embeddings over training."""
    series = {name: {feat: _series(record, f"inst/{feat}/{name}")
                     for feat in ("h", "z")}
              for name, _ in GEOMETRY}
    if not any(s[1].size for per_feat in series.values() for s in per_feat.values()):
        return None
    fig = Figure(figsize=(11.0, 3.2), layout="constrained")
    for ax, (name, title) in zip(fig.subplots(1, 3), GEOMETRY, strict=True):
        for feat, colour in (("h", "C0"), ("z", "C1")):
            steps, values = series[name][feat]
            if steps.size:
                ax.plot(steps + 1, values, marker=".", color=colour, label=feat)
        if name == "normalized_std":
            dims = record.arrays("spectrum")
            if dims is not None:
                ax.axhline(1 / np.sqrt(dims["z/cov"].shape[1]), color="C1", linestyle=":",
                           label="1/√D of z")
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_title(mpl_text(title), fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    img = embed_figure(fig, record.files.figures, "geometry",
                       "alignment, uniformity and collapse over training")
    note = (
        "On the fixed instrument batch, L2-normalised: alignment of the two views (0: each "
        "pair coincides), uniformity of one view (log of the mean Gaussian potential; lower is "
        "more spread, 0 is collapse; Wang &amp; Isola 2020), and the per-dimension std of the "
        "normalised embeddings (SimSiam's collapse monitor)."
    )
    return Section("Alignment, uniformity, collapse", f'{img}<p class="note">{note}</p>',
                   "geometry")


def _series(record: RunRecord, key: str) -> tuple[np.ndarray, np.ndarray]:
    """An instrument scalar over steps, in step order.

    Instrument rows at probe steps are evaluation rows, the others training rows; both count.
    """
    steps, values = record.series(key, rows="all")
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


SECTIONS: list[SectionFn] = [spectrum_over_training_section, geometry_section]
