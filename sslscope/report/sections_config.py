"""The report's last section: the config, the environment, and how to re-run the run."""

from __future__ import annotations

from html import escape

from sslscope.report.page import Section, SectionFn, config_value, kv_table
from sslscope.report.record import RunRecord


def config_section(record: RunRecord) -> Section:
    """The config that produced the run, its environment, and the command to re-run it."""
    body = kv_table([(str(k), config_value(v)) for k, v in record.config.items()])
    if record.run_info:
        body += "<h3>Environment (run.json)</h3>"
        body += kv_table([(str(k), config_value(v)) for k, v in record.run_info.items()])
    cmd = f"sslscope train --config {record.files.config}"
    body += f"<p>Re-run it with:</p><pre>{escape(cmd)}</pre>"
    sha = (record.run_info or {}).get("git_sha")
    if isinstance(sha, str) and sha:
        body += f'<p class="note">The run used source commit <code>{escape(sha)}</code>.</p>'
    return Section("Configuration", body, "config")


SECTIONS: list[SectionFn] = [config_section]
