"""The ``sslscope`` console script: OpenMP set up before torch is imported, then the CLI.

``python -m sslscope`` runs :func:`main` too (``sslscope/__main__.py``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from sslscope.threads import prepare_openmp

#: Set by a study for each training it starts, to the study's process id (sslscope.studies.runner).
STOP_WITH_PARENT = "SSLSCOPE_STOP_WITH_PARENT"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_parent() -> None:
    """Under a study, ask Linux for a SIGTERM when the study's process dies.

    A study passes its signals on to its trainings; this covers the death that passes nothing
    on (a SIGKILL of the study alone, an out-of-memory kill): the orphan then stops at its next
    step boundary with a checkpoint instead of training on into a directory the rerun resumes.
    Elsewhere than Linux it does nothing.
    """
    parent = os.environ.pop(STOP_WITH_PARENT, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # it died before the request: nothing is written yet
        os._exit(128 + signal.SIGTERM)


def main() -> int:
    """Entry point: the exit status of the command.

    A Ctrl-C while torch and the rest load (a few seconds) is one line and status 130, not
    the traceback of whichever import it interrupted.
    """
    prepare_openmp()
    stop_with_parent()
    try:
        from sslscope.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nsslscope: interrupted (SIGINT) while starting", file=sys.stderr, flush=True)
        # Nothing is written yet, and a half-imported torch can turn a normal exit into death
        # by SIGINT (seen in CI: status -2): leave at once with the shell's status.
        os._exit(128 + signal.SIGINT)
    return cli_main()
