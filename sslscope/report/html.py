"""Assemble the self-contained HTML run report from a list of sections.

To add a section: write one function ``(RunRecord) -> Section | None`` in this module (or
anywhere) and append it to `SECTIONS`. Return None when the run has nothing to show for it; the
section and its table-of-contents entry are then left out. Escape every string that comes from
the run directory with `html.escape`; embed figures with `figures.embed_figure`.

The page has no scripts, no external URL and only inline CSS, so it opens offline and can be
mailed or archived as one file. Figures also land in ``run_dir/figures/`` as PNG and SVG.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from sslscope.files import atomic_write_text
from sslscope.report.figures import (
    embed_figure,
    loss_figure,
    probe_figure,
    probe_name,
    probe_sort_key,
)
from sslscope.report.record import RunRecord, as_float
from sslscope.report.sections_embeddings import (
    embedding_map_section,
    neighbours_section,
    spectrum_section,
)

MISSING = "—"  # shown for null, NaN and absent values


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Attributes:
        title: heading (plain text; escaped on assembly).
        html: body HTML, figures already embedded; the section escapes its own strings.
        anchor: element id for the table of contents; also the figure file stem.
    """

    title: str
    html: str
    anchor: str


def summary_section(record: RunRecord) -> Section:
    """What was trained, how it ended, and what self-supervision bought (final evaluation)."""
    cfg, info = record.config, record.run_info or {}
    steps = _text(cfg.get("steps"))
    logged = record.series("step")[0]
    if logged.size and steps != str(logged.max()):
        steps += f" (last logged: {logged.max()})"
    facts = [
        ("method", _text(cfg.get("method"))),
        ("dataset", _text(cfg.get("dataset"))),
        ("backbone", _text(cfg.get("backbone"))),
        ("steps", steps),
        ("wall time", _duration(info.get("wall_seconds"))),
        ("status", _text(info.get("status")) if record.run_info else "unknown (no run.json)"),
    ]
    body = _kv_table(facts)
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
    img = embed_figure(fig, record.run_dir, "loss", "loss and its terms over training steps")
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
    img = embed_figure(fig, record.run_dir, "probes", "probe test accuracy over training steps")
    note = (
        "Test accuracy of each probe on frozen features (h: backbone output, z: projector "
        "output) at the evaluation steps, which are log-spaced; the x axis shows step + 1 so "
        "that the random initialisation (step 0) fits on a log scale. Dashed: the same probe on "
        "raw pixels, from the final evaluation."
    )
    return Section("Probe accuracy over training", f'{img}<p class="note">{note}</p>', "probes")


def config_section(record: RunRecord) -> Section:
    """The config that produced the run, its environment, and the command to re-run it."""
    body = _kv_table([(str(k), _config_value(v)) for k, v in record.config.items()])
    if record.run_info:
        body += "<h3>Environment (run.json)</h3>"
        body += _kv_table([(str(k), _config_value(v)) for k, v in record.run_info.items()])
    cmd = f"sslscope train --config {record.run_dir / 'config.json'}"
    body += f"<p>Re-run it with:</p><pre>{escape(cmd)}</pre>"
    sha = (record.run_info or {}).get("git_sha")
    if isinstance(sha, str) and sha:
        body += f'<p class="note">The run used source commit <code>{escape(sha)}</code>.</p>'
    return Section("Configuration", body, "config")


SECTIONS: list[Callable[[RunRecord], Section | None]] = [
    summary_section,
    loss_section,
    probe_section,
    spectrum_section,  # these three need arrays/final_embeddings.safetensors
    embedding_map_section,
    neighbours_section,
    config_section,
]


def build_report(
    run_dir: str | Path, sections: Sequence[Callable[[RunRecord], Section | None]] = SECTIONS
) -> Path:
    """Write ``run_dir/report.html`` (atomically) from `sections` and return its path.

    Each section function gets the same `RunRecord`; figures are also saved to
    ``run_dir/figures/<name>.png`` and ``.svg``.

    Raises:
        UserError: `run_dir` or its `config.json` is missing, or a JSON file is corrupt.
    """
    record = RunRecord.load(run_dir)
    built = [s for s in (section(record) for section in sections) if s is not None]
    cfg = record.config
    subtitle = " · ".join(_text(cfg.get(k)) for k in ("method", "dataset", "backbone"))
    toc = "".join(f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a></li>' for s in built)
    parts = "".join(
        f'<section id="{escape(s.anchor)}"><h2>{escape(s.title)}</h2>{s.html}</section>'
        for s in built
    )
    title = escape(f"sslscope run report: {record.run_dir.resolve().name}")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f'<h1>{title}</h1><p class="sub">{escape(subtitle)}</p>'
        f'<nav><strong>Contents</strong><ol>{toc}</ol></nav>{parts}</body></html>\n'
    )
    return atomic_write_text(record.run_dir / "report.html", page)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 920px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: 0.1em; } .sub { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
nav { background: #f7f7f9; border: 1px solid #e3e3e8; padding: 0.5em 1em; display: inline-block; }
nav ol { margin: 0.3em 0; padding-left: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.93em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #e6f4ea; }
img { max-width: 100%; height: auto; } .note { color: #555; font-size: 0.92em; }
pre { background: #f4f4f6; padding: 0.6em; overflow-x: auto; }
"""


def _evaluation_table(rows: list[dict[str, Any]]) -> str:
    """Rows × probes table of test accuracy in %, the best value of each column highlighted."""
    probes = sorted(
        {str(p) for r in rows for p, v in r.items() if isinstance(v, dict) and "test_acc" in v},
        key=probe_sort_key,
    )
    cells = [[_percent(_test_acc(r, p)) for p in probes] for r in rows]
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
            f"<tr><td>{escape(_text(row.get('name')))}</td>"
            f"<td>{escape(_text(row.get('features')))}</td>"
            f'<td class="num">{escape(_text(row.get("step")))}</td>{tds}</tr>'
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
        for probe in ("linear", "knn"):
            delta = _test_acc(trained, probe) - _test_acc(base, probe)
            if math.isfinite(delta):
                gains.append(f"{100 * delta:+.1f} points ({escape(probe_name(probe))})")
        if gains:
            parts.append(f"vs {what}: " + ", ".join(gains))
    if not parts:
        return ""
    return '<p class="note">Trained backbone h ' + "; ".join(parts) + ".</p>"


def _test_acc(row: dict[str, Any], probe: str) -> float:
    result = row.get(probe)
    return as_float(result.get("test_acc")) if isinstance(result, dict) else math.nan


def _percent(value: float) -> str:
    return f"{100 * value:.1f}" if math.isfinite(value) else MISSING


def _kv_table(pairs: list[tuple[str, str]]) -> str:
    """Two-column table; both columns are plain text, escaped here."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _text(value: Any) -> str:
    """Plain-text form of a JSON scalar; null and non-finite numbers show as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return value if isinstance(value, str) else json.dumps(value)


def _config_value(value: Any) -> str:
    """Plain-text form of a config value: dicts as ``key=value, …``, lists comma-separated."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_config_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_config_value(v) for v in value) + "]"
    return _text(value)


def _duration(seconds: Any) -> str:
    s = as_float(seconds)
    if not math.isfinite(s):
        return MISSING
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
