"""The run report: one self-contained HTML page built from a run directory.

    from sslscope.report import build_report
    build_report("runs/vicreg_digits")      # writes runs/vicreg_digits/report.html

Sections are plain functions ``(RunRecord) -> Section | None`` listed in `SECTIONS`; see
`sslscope.report.html` for how to add one.
"""

from sslscope.report.html import SECTIONS, Section, build_report
from sslscope.report.record import RunRecord

__all__ = ["SECTIONS", "RunRecord", "Section", "build_report"]
