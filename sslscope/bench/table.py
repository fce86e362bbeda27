"""The bench's results: sections of small tables, written as markdown and as JSON, atomically.

A :class:`Table` keeps raw numbers (the JSON holds them unformatted); each :class:`Column`
says how to print its values and whether they are ratios (the tests check that every ratio
is positive and finite). ``None`` prints as "—"; a string prints as it is, so a row can say
"kornia not installed" where a number would be.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslscope.bench import SECTIONS
from sslscope.files import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class Column:
    """One column: its header, the format of its numbers, and whether it holds ratios."""

    name: str
    fmt: str = "{}"
    ratio: bool = False


@dataclass
class Table:
    """A caption, columns and rows of raw values (one value per column)."""

    caption: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        """Append a row; the number of values must equal the number of columns."""
        if len(values) != len(self.columns):
            raise ValueError(f"row of {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))

    def markdown(self) -> str:
        """The table as GitHub markdown, numbers right-aligned."""
        head = "| " + " | ".join(c.name for c in self.columns) + " |"
        rule = "| " + " | ".join(
            "---" if c.fmt == "{}" else "---:" for c in self.columns) + " |"
        body = ["| " + " | ".join(_cell(c, v) for c, v in zip(self.columns, row, strict=True))
                + " |" for row in self.rows]
        return "\n".join([f"**{self.caption}**", "", head, rule, *body])

    def as_json(self) -> dict[str, Any]:
        """Caption, column names, the ratio columns and rows as {column: value} objects."""
        return {
            "caption": self.caption,
            "columns": [c.name for c in self.columns],
            "ratio_columns": [c.name for c in self.columns if c.ratio],
            "rows": [{c.name: _plain(v) for c, v in zip(self.columns, row, strict=True)}
                     for row in self.rows],
        }


@dataclass
class Section:
    """One numbered part of the results: what it compares (``about``), tables, notes."""

    key: str
    title: str
    about: str
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time the section took, filled in by the runner

    def markdown(self, number: int) -> str:
        """The section with its heading, its text, its tables and its notes."""
        parts = [f"## {number}. {self.title}", "", self.about]
        for table in self.tables:
            parts += ["", table.markdown()]
        parts += [""] + [f"- {note}" for note in self.notes] if self.notes else []
        parts += ["", f"_Section time: {self.seconds:.1f} s._"]
        return "\n".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The section as a JSON-ready dict."""
        return {"key": self.key, "title": self.title, "about": self.about,
                "seconds": self.seconds, "notes": self.notes,
                "tables": [t.as_json() for t in self.tables]}


@dataclass
class Carried:
    """A section not rerun this time, kept from the previous table: its text and its JSON.

    ``sslscope bench --sections A,B`` reruns only A and B; the other sections of the existing
    ``bench.md``/``bench.json`` stay, each saying which run measured it, so one partial rerun
    never drops the rest of the table.
    """

    key: str
    text: str  # the section's markdown in the previous bench.md, heading included
    data: dict[str, Any]  # its entry in the previous bench.json, with "run" added

    def markdown(self, number: int) -> str:
        run = self.data["run"]
        return (f"{self.text.rstrip()}\n\n_Not rerun: carried over from the run of "
                f"{run['date']} (`{run['command']}`)._")

    def as_json(self) -> dict[str, Any]:
        return self.data


def previous_sections(out_dir: Path, skip: list[str], quick: bool) -> list[Carried]:
    """The sections of an existing ``out_dir/bench.md`` and ``bench.json`` other than ``skip``.

    Nothing is carried from a table of the other kind (``--quick`` against a full run) or
    from files that do not parse; each carried section keeps the date and command of the run
    that measured it.
    """
    md, js = out_dir / "bench.md", out_dir / "bench.json"
    try:
        data = json.loads(js.read_text(encoding="utf-8"))
        text = md.read_text(encoding="utf-8")
        if bool(data["header"]["quick"]) != quick:
            return []
        run = {"date": data["header"]["date"], "command": data["header"]["command"]}
        chunks = re.split(r"(?m)^(?=## \d+\. )", text)[1:]
        carried = []
        for section in data["sections"]:
            key = section["key"]
            if key in skip or key not in SECTIONS:
                continue
            heading = f"## {SECTIONS.index(key) + 1}. {section['title']}"
            chunk = next(c for c in chunks if c.startswith(heading))
            # A section carried before keeps its own run; drop the old carry-over line.
            chunk = re.sub(r"\n+_Not rerun: carried over .*\._\s*$", "", chunk.rstrip())
            carried.append(Carried(key, chunk, {**section, "run": section.get("run", run)}))
        return carried
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return []


def _cell(column: Column, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return column.fmt.format(value)


def _plain(value: Any) -> Any:
    """A JSON-safe value: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def machine() -> str:
    """The processor as the header names it: platform's words plus /proc/cpuinfo's model."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")  # platform.processor() is often just "x86_64" on Linux
    if cpuinfo.is_file():
        models = [line for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        if models:
            name += ", " + models[0].split(":", 1)[1].strip()
    return name


def versions() -> dict[str, str]:
    """Versions of the libraries the comparisons use; "not installed" for absent ones."""
    import importlib.metadata

    out = {"python": platform.python_version()}
    for name, dist in (("torch", "torch"), ("numpy", "numpy"), ("scikit-learn", "scikit-learn"),
                       ("kornia", "kornia"), ("Pillow", "pillow")):
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def header(*, command: str, threads: int, workers: int, date: str, seconds: float,
           others_busy: float | None, quick: bool) -> dict[str, Any]:
    """The facts the table's header states, as a dict (the JSON keeps it as it is)."""
    return {
        "command": command, "date": date, "machine": machine(),
        "platform": platform.platform(), "logical_cpus": os.cpu_count(), "threads": threads,
        "dataloader_workers": workers, "versions": versions(), "seconds": seconds,
        "others_busy_cores": others_busy, "quick": quick,
    }


def render(head: dict[str, Any], sections: list[Section | Carried]) -> str:
    """The whole ``bench.md``."""
    v = head["versions"]
    busy = ("unknown" if head["others_busy_cores"] is None
            else f"{head['others_busy_cores']:.2f}")
    lines = [
        "# sslscope bench", "",
        f"Command: `{head['command']}`, run {head['date']} in {head['seconds']:.0f} s.", "",
        f"- Machine: `{head['machine']}` ({head['platform']}), {head['logical_cpus']} logical "
        f"CPUs; {head['threads']} torch threads (scikit-learn and BLAS limited to the same), "
        f"{head['dataloader_workers']} DataLoader workers for the per-sample pipelines.",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"- Other processes kept {busy} cores busy on average during the run (timings on a "
        "loaded machine are not comparable with an idle one's).",
        "- Every timing is a ratio to a baseline measured in this same run: the two sides "
        "alternate, each repeat after untimed warm-up calls, and the figure is the median "
        "over repeats.",
    ]
    if head["quick"]:
        lines.append("- **--quick**: tiny sizes, for tests; these numbers mean nothing.")
    for section in sections:  # numbered by the full list, so a partial run keeps the numbers
        number = SECTIONS.index(section.key) + 1 if section.key in SECTIONS else 0
        lines += ["", section.markdown(number)]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, head: dict[str, Any],
          sections: list[Section | Carried]) -> tuple[Path, Path]:
    """Write ``bench.md`` and ``bench.json`` into ``out_dir``, each atomically.

    Sections measured now record this run's date and command, as carried ones keep theirs.
    """
    run = {"date": head["date"], "command": head["command"]}
    entries = [s.as_json() if isinstance(s, Carried) else {**s.as_json(), "run": run}
               for s in sections]
    md = atomic_write_text(out_dir / "bench.md", render(head, sections))
    js = atomic_write_json(out_dir / "bench.json", {"header": head, "sections": entries})
    return md, js
