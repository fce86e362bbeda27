"""The run report: one self-contained HTML page built from a run directory.

    from sslscope.report import build_report
    build_report("runs/vicreg_digits")      # writes runs/vicreg_digits/report.html

Sections are plain functions ``(RunRecord) -> Section | None``, kept in section modules that
each list theirs in ``SECTIONS``; `SECTIONS` here is all of them in page order. Adding a section
is one new module plus one line in `sslscope.report.html.SECTION_MODULES`; see that module.
"""

from sslscope.report.html import SECTIONS, Section, build_report
from sslscope.report.record import RunRecord

__all__ = ["SECTIONS", "RunRecord", "Section", "build_report"]
