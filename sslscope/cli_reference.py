"""The README's CLI reference: every command's ``--help``, generated from the parsers.

``make readme`` writes :func:`cli_reference_markdown` into the README, and tests/test_readme.py
checks that the README holds what the parsers print today.
"""

from __future__ import annotations

import argparse

from sslscope.cli import build_parser


def help_texts() -> dict[str, str]:
    """``--help`` of the command and of each subcommand, as the README's CLI reference shows."""

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return actions[0].choices if actions else {}

    parser = build_parser()
    texts = {"sslscope": parser.format_help()}
    for name, p in subparsers(parser).items():
        texts[f"sslscope {name}"] = p.format_help()
        texts.update({f"sslscope {name} {n}": q.format_help() for n, q in subparsers(p).items()})
    return texts


def cli_reference_markdown() -> str:
    """The README's CLI reference section body, generated from the parsers."""
    blocks = [f"### `{name} --help`\n\n```text\n{text.rstrip()}\n```" for name, text in
              help_texts().items()]
    return "\n\n".join(blocks)
