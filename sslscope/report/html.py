"""Assemble the self-contained HTML run report from the registered sections.

Sections live in section modules (``sections_run``, ``sections_embeddings``,
``sections_config``), each of which lists its section functions ``(RunRecord) -> Section | None``
in a module-level ``SECTIONS``, in page order. `SECTION_MODULES` names those modules in page
order, and `SECTIONS` here is their lists joined.

To add a section: write a new module (say ``sslscope/report/sections_mine.py``) with the
function and ``SECTIONS = [my_section]``, and add its name to `SECTION_MODULES` where it should
appear. Import `Section` and the text helpers from `sslscope.report.page` and figure helpers
from `sslscope.report.figures`, never from this module, so nothing imports in a circle. Return
None when the run has nothing to show; the section and its table-of-contents entry are then left
out. Escape every string that comes from the run directory with `html.escape`; embed figures with
`figures.embed_figure` into ``record.files.figures``.

The page has no scripts, no external URL and only inline CSS, so it opens offline and can be
mailed or archived as one file. Figures also land in ``run_dir/figures/`` as PNG and SVG.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from html import escape
from pathlib import Path

from sslscope.files import atomic_write_text
from sslscope.report.page import CSS, Section, SectionFn, text
from sslscope.report.record import RunRecord

__all__ = ["SECTIONS", "SECTION_MODULES", "Section", "build_report", "sections_from"]

SECTION_MODULES: tuple[str, ...] = (
    "sslscope.report.sections_run",  # summary, loss, probes
    "sslscope.report.sections_dynamics",  # spectrum over training, geometry (instruments)
    "sslscope.report.sections_capacity",  # MMCR's PPE over training (capacity instrument)
    "sslscope.report.sections_clustering",  # clustering over training (clus/ keys)
    "sslscope.report.sections_embeddings",  # spectrum, embedding map, neighbours
    "sslscope.report.sections_config",  # config
)


def sections_from(modules: Sequence[str]) -> list[SectionFn]:
    """The section functions of `modules`, joined in the given order.

    Args:
        modules: importable module names, each defining a list ``SECTIONS`` of section
            functions in page order.

    Returns:
        A new list; changing it changes no module.

    Raises:
        ImportError: a module cannot be imported.
        AttributeError: a module has no ``SECTIONS``.
    """
    return [fn for name in modules for fn in importlib.import_module(name).SECTIONS]


# The section modules import page/figures/record, never this module, so loading them here (while
# html.py itself is still loading) cannot run into a half-initialised module.
SECTIONS: list[SectionFn] = sections_from(SECTION_MODULES)


def build_report(run_dir: str | Path, sections: Sequence[SectionFn] = SECTIONS) -> Path:
    """Write ``run_dir/report.html`` (atomically) from `sections` and return its path.

    Each section function gets the same `RunRecord`; figures are also saved to
    ``run_dir/figures/<name>.png`` and ``.svg``.

    Args:
        run_dir: the run directory.
        sections: section functions in page order; `SECTIONS` by default, or for example
            ``sections_from([*SECTION_MODULES, "my_sections"])``.

    Raises:
        UserError: `run_dir` or its `config.json` is missing, or a JSON file is corrupt.
    """
    record = RunRecord.load(run_dir)
    built = [s for s in (section(record) for section in sections) if s is not None]
    cfg = record.config
    subtitle = " · ".join(text(cfg.get(k)) for k in ("method", "dataset", "backbone"))
    toc = "".join(f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a></li>' for s in built)
    parts = "".join(
        f'<section id="{escape(s.anchor)}"><h2>{escape(s.title)}</h2>{s.html}</section>'
        for s in built
    )
    title = escape(f"sslscope run report: {record.run_dir.resolve().name}")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        f'<h1>{title}</h1><p class="sub">{escape(subtitle)}</p>'
        f'<nav><strong>Contents</strong><ol>{toc}</ol></nav>{parts}</body></html>\n'
    )
    return atomic_write_text(record.files.report, page)
