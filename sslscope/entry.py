"""The ``sslscope`` console script: OpenMP set up before torch is imported, then the CLI.

``python -m sslscope`` runs :func:`main` too (``sslscope/__main__.py``).
"""

from __future__ import annotations

import os
import signal
import sys

from sslscope.threads import prepare_openmp


def main() -> int:
    """Entry point: the exit status of the command.

    A Ctrl-C while torch and the rest load (a few seconds) is one line and status 130, not
    the traceback of whichever import it interrupted.
    """
    prepare_openmp()
    try:
        from sslscope.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nsslscope: interrupted (SIGINT) while starting", file=sys.stderr, flush=True)
        # Nothing is written yet, and a half-imported torch can turn a normal exit into death
        # by SIGINT (seen in CI: status -2): leave at once with the shell's status.
        os._exit(128 + signal.SIGINT)
    return cli_main()
