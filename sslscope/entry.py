"""The ``sslscope`` console script: OpenMP set up before torch is imported, then the CLI."""

from __future__ import annotations

from sslscope.threads import prepare_openmp


def main() -> int:
    """Entry point of the console script (``python -m sslscope`` does the same)."""
    prepare_openmp()
    from sslscope.cli import main as cli_main

    return cli_main()
