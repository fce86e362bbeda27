"""A study's claims list: each claim of a paper next to what we measured, and a verdict.

Every study writes ``OUT/summary.json`` (``{"study", "title", "command", "environment",
"claims": [...]}``) and ``OUT/summary.md`` (the same claims as a table, then the study's own
text). A claim is ``{"id", "claim", "source", "paper", "measured", "verdict"}``: the claim in
words, where it comes from (a seed document, a paper's section), what the paper reports, our
numbers, and ``agrees``, ``differs`` or ``inconclusive``. A differing result honestly measured
is worth more than a tuned agreement, so the verdict is computed from the numbers, never typed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

from sslscope.files import atomic_write_json, atomic_write_text

VERDICTS = ("agrees", "differs", "inconclusive")
Z_SIGNIFICANT = 2.0  # an accuracy difference counts when it is this many standard errors


@dataclass(frozen=True)
class Claim:
    """One claim and its verdict (module docstring)."""

    id: str
    claim: str
    source: str
    paper: str
    measured: dict[str, Any]
    verdict: str
    detail: str = ""  # one sentence on how the verdict follows from the numbers

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def significantly(a: float, b: float, n: int) -> bool | None:
    """Whether accuracy ``a`` beats ``b`` (True), loses to it (False) or ties (None).

    Each is a proportion of ``n`` test cases; the difference counts when it reaches
    :data:`Z_SIGNIFICANT` standard errors, √(a(1 − a)/n + b(1 − b)/n) (two independent
    binomial proportions). One seed's difference on the 450 test digits needs about 1.5 points
    at 95 % accuracy and 2.5 points at 10 %.
    """
    se = math.sqrt(max(a * (1 - a) + b * (1 - b), 1e-12) / n)
    z = (a - b) / se
    return True if z >= Z_SIGNIFICANT else (False if z <= -Z_SIGNIFICANT else None)


def verdict(ok: bool | None) -> str:
    """True → agrees, False → differs, None (not measurable here) → inconclusive."""
    return "inconclusive" if ok is None else ("agrees" if ok else "differs")


def verdict_over(oks: Sequence[bool | None]) -> str:
    """One verdict over seeds: all agree → agrees, all differ → differs, else inconclusive."""
    if all(ok is True for ok in oks):
        return "agrees"
    if all(ok is False for ok in oks):
        return "differs"
    return "inconclusive"


def claims_table(claims: Sequence[Claim]) -> str:
    """The claims as an HTML table for a study's page (every string escaped)."""
    rows = "".join(
        f"<tr><td>{escape(c.id)}</td><td>{escape(c.claim)}<br><span class=\"note\">"
        f"{escape(c.source)}</span></td><td>{escape(c.paper)}</td><td>{escape(c.detail)}</td>"
        f"<td><b>{escape(c.verdict)}</b></td></tr>" for c in claims)
    return ("<table><tr><th>id</th><th>claim</th><th>paper</th><th>measured here</th>"
            f"<th>verdict</th></tr>{rows}</table>")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_summary(out_dir: str | Path, *, study: str, title: str, command: str,
                  environment: dict[str, Any], claims: Sequence[Claim],
                  body: str = "") -> Path:
    """Write ``summary.json`` and ``summary.md`` (atomically); returns the Markdown path."""
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "summary.json", {
        "study": study, "title": title, "command": command, "environment": environment,
        "claims": [asdict(c) for c in claims],
    })
    lines = [f"# {title}", "", f"`{command}`", "", "## Claims", "",
             "| id | claim | paper | measured here | verdict |", "| --- | --- | --- | --- | --- |"]
    for c in claims:
        ours = c.detail or ", ".join(f"{k} = {v}" for k, v in c.measured.items())
        lines.append(f"| {c.id} | {_cell(c.claim)} ({_cell(c.source)}) | {_cell(c.paper)} | "
                     f"{_cell(ours)} | **{c.verdict}** |")
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", ""]
    if body:
        lines += [body.rstrip(), ""]
    lines += [f"sslscope {environment.get('sslscope_version')} (git "
              f"{str(environment.get('git_sha'))[:8]}), torch {environment.get('torch')}, "
              f"{environment.get('device_name')}.", ""]
    return atomic_write_text(out_dir / "summary.md", "\n".join(lines))
