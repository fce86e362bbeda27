"""What every report page and section shares: the `Section` type, the CSS and text helpers.

This module imports nothing else from the report except `record`, so section modules, the run
report (`html`) and the comparison page (`compare`) can all import it without forming a cycle.
Every helper returns plain text or HTML whose strings from the run directory are escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from sslscope.report.record import RunRecord, as_float

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


# A section: reads the run, returns its part of the page, or None to be left out.
SectionFn = Callable[[RunRecord], Section | None]

CSS = """
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


def text(value: Any) -> str:
    """Plain-text form of a JSON scalar; null and non-finite numbers show as `MISSING`.

    Args:
        value: a value read from a JSON file: str, number, bool, None, list or dict.

    Returns:
        Strings unchanged, anything else as JSON (not escaped: the caller escapes).
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return value if isinstance(value, str) else json.dumps(value)


def config_value(value: Any) -> str:
    """Plain-text form of a config value: dicts as ``key=value, …``, lists comma-separated.

    Args:
        value: a config entry; nested dicts and lists are rendered recursively.

    Returns:
        Unescaped text; scalars as `text` renders them.
    """
    if isinstance(value, dict):
        return ", ".join(f"{k}={config_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "[" + ", ".join(config_value(v) for v in value) + "]"
    return text(value)


def kv_table(pairs: list[tuple[str, str]]) -> str:
    """Two-column HTML table of ``(key, value)`` rows.

    Args:
        pairs: plain text in both columns; escaped here.

    Returns:
        A ``<table>`` element.
    """
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal (``0.9123`` → ``"91.2"``), else `MISSING`."""
    return f"{100 * value:.1f}" if math.isfinite(value) else MISSING


def duration(seconds: Any) -> str:
    """Wall time for people: ``"42.0 s"``, ``"3 min 5 s"`` or ``"2 h 7 min"``.

    Args:
        seconds: a number read from JSON; anything else (or non-finite) gives `MISSING`.
    """
    s = as_float(seconds)
    if not math.isfinite(s):
        return MISSING
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def test_acc(row: dict[str, Any], probe: str) -> float:
    """Test accuracy (fraction) of `probe` in one ``evaluation.json`` row, NaN if absent.

    Args:
        row: an evaluation row, ``{"features": "h", "step": 300, "linear": {"test_acc": …}}``.
        probe: a probe key of `sslscope.evaluate.suite.PROBES`, e.g. ``"knn"``.
    """
    result = row.get(probe)
    return as_float(result.get("test_acc")) if isinstance(result, dict) else math.nan
