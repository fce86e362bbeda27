"""Regenerate the README's CLI reference from the parsers: `make readme`."""

import re
from pathlib import Path

from sslscope.cli_reference import cli_reference_markdown

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def render(readme: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{cli_reference_markdown()}\n{END}", readme)


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "README.md"
    path.write_text(render(path.read_text()))
