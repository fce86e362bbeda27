"""Report sections about the training run itself: summary, loss curves, probe accuracy.

They read only ``config.json``, ``run.json``, ``metrics.jsonl`` and ``evaluation.json``, so they
show for any run, even an interrupted one (the summary then says it has no final evaluation).
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from sslscope.report.figures import (
    embed_figure,
    loss_figure,
    probe_figure,
    probe_name,
    probe_sort_key,
)
from sslscope.report.page import (
    MISSING,
    Section,
    SectionFn,
    duration,
    kv_table,
    percent,
    test_acc,
    text,
)
from sslscope.report.record import RunRecord

GAIN_PROBES = ("linear", "knn")  # the summary's gain sentence; all probes would be a paragraph


def summary_section(record: RunRecord) -> Section:
    """What was trained, how it ended, and what self-supervision bought (final evaluation)."""
    cfg, info = record.config, record.run_info or {}
    steps = text(cfg.get("steps"))
    logged = record.series("step")[0]
    if logged.size and steps != str(logged.max()):
        steps += f" (last logged: {logged.max()})"
    facts = [
        ("method", text(cfg.get("method"))),
        ("dataset", text(cfg.get("dataset"))),
        ("backbone", text(cfg.get("backbone"))),
        ("steps", steps),
        ("wall time", duration(info.get("wall_seconds"))),
        ("status", text(info.get("status")) if record.run_info else "unknown (no run.json)"),
    ]
    body = kv_table(facts)
    rows = record.evaluation_rows()
    if record.evaluation is None:
        body += '<p class="note">No final evaluation (run interrupted or still running).</p>'
    elif not rows:
        body += '<p class="note">evaluation.json holds no rows.</p>'
    else:
        body += "<h3>Final evaluation: test accuracy (%)</h3>" + _evaluation_table(rows)
        body += _gain_sentence(rows, record.evaluation.get("final_step"))
    return Section("Summary", body, "summary")


def loss_section(record: RunRecord) -> Section | None:
    """The total loss, its weighted terms and the lr schedule over steps."""
    fig = loss_figure(record)
    if fig is None:
        return None
    img = embed_figure(fig, record.files.figures, "loss", "loss and its terms over training steps")
    note = (
        "Top: total loss (black) and each weighted term of the objective; the terms sum to the "
        "total. Bottom: the learning-rate schedule. Linear step axis: training rows are logged "
        "at a fixed interval and the schedule is defined in steps."
    )
    return Section("Loss and its terms", f'{img}<p class="note">{note}</p>', "loss")


def probe_section(record: RunRecord) -> Section | None:
    """Probe test accuracy on frozen features at every evaluation step."""
    fig = probe_figure(record)
    if fig is None:
        return None
    img = embed_figure(
        fig, record.files.figures, "probes", "probe test accuracy over training steps"
    )
    note = (
        "Test accuracy of each probe on frozen features (h: backbone output, z: projector "
        "output) at the evaluation steps, which are log-spaced; the x axis shows step + 1 so "
        "that the random initialisation (step 0) fits on a log scale. Dashed: the same probe on "
        "raw pixels, from the final evaluation."
    )
    return Section("Probe accuracy over training", f'{img}<p class="note">{note}</p>', "probes")


SECTIONS: list[SectionFn] = [summary_section, loss_section, probe_section]


def _evaluation_table(rows: list[dict[str, Any]]) -> str:
    """Rows × probes table of test accuracy in %, the best value of each column highlighted."""
    probes = sorted(
        {str(p) for r in rows for p, v in r.items() if isinstance(v, dict) and "test_acc" in v},
        key=probe_sort_key,
    )
    cells = [[percent(test_acc(r, p)) for p in probes] for r in rows]
    best = []
    for j in range(len(probes)):  # compare the shown (rounded) numbers, so ties both light up
        shown = [float(row[j]) for row in cells if row[j] != MISSING]
        best.append(max(shown) if shown else None)
    head = "".join(f"<th>{escape(probe_name(p))}</th>" for p in probes)
    lines = [f"<tr><th>representation</th><th>features</th><th>step</th>{head}</tr>"]
    for row, shown in zip(rows, cells, strict=True):
        tds = "".join(
            f'<td class="num{" best" if v != MISSING and float(v) == best[j] else ""}">{v}</td>'
            for j, v in enumerate(shown)
        )
        lines.append(
            f"<tr><td>{escape(text(row.get('name')))}</td>"
            f"<td>{escape(text(row.get('features')))}</td>"
            f'<td class="num">{escape(text(row.get("step")))}</td>{tds}</tr>'
        )
    return "<table>" + "".join(lines) + "</table>"


def _gain_sentence(rows: list[dict[str, Any]], final_step: Any) -> str:
    """One line: trained backbone h minus random-init h and minus raw pixels, per probe."""
    pixels = next((r for r in rows if r.get("features") == "pixels"), None)
    random = next((r for r in rows if r.get("features") == "h" and r.get("step") == 0), None)
    trained_h = [r for r in rows if r.get("features") == "h" and r.get("step") not in (0, None)]
    trained = next((r for r in trained_h if r.get("step") == final_step), None)
    trained = trained or (trained_h[-1] if trained_h else None)
    if trained is None:
        return ""
    parts = []
    for base, what in ((random, "random-init backbone"), (pixels, "raw pixels")):
        if base is None:
            continue
        gains = []
        for probe in GAIN_PROBES:
            delta = test_acc(trained, probe) - test_acc(base, probe)
            if math.isfinite(delta):
                gains.append(f"{100 * delta:+.1f} points ({escape(probe_name(probe))})")
        if gains:
            parts.append(f"vs {what}: " + ", ".join(gains))
    if not parts:
        return ""
    return '<p class="note">Trained backbone h ' + "; ".join(parts) + ".</p>"
