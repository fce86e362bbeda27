"""CPU threads: as many as the cores other work leaves free, waiting passively.

On a 2-core machine already running other trainings (a load average of about 4), `make demo`
took 3.5 s per step instead of 0.08 s: PyTorch's OpenMP threads spin-wait for cores they do not
get. Two things fix it, both overridable:

- :func:`prepare_openmp`, called by the command line before torch is imported, sets
  ``OMP_WAIT_POLICY=PASSIVE`` when other work holds some of the cores (unless the environment
  says otherwise): an idle OpenMP thread then sleeps instead of spinning on a core another
  process needs. On an idle machine OpenMP's default stays: it is faster there.
- :func:`resolve_threads` picks the thread count: the config's ``threads`` when given, else
  ``OMP_NUM_THREADS`` when set (a study's runner sets it for its children: cores / jobs), else
  the cores this process may use minus those other processes keep busy now, at least 1.

The count changes floating-point reduction order, so it is recorded in ``run.json``
(``threads``); pass ``--threads`` with that value to reproduce a CPU run bit for bit.
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_elsewhere() -> float:
    """How many cores other processes keep busy now.

    Linux's count of runnable tasks (/proc/loadavg's fourth field, this process excluded), the
    median of five readings 10 ms apart: it sees other work at once and forgets it as soon as
    it ends, where the 1-minute load average (the fallback elsewhere) lags by a minute.
    """
    readings = []
    for attempt in range(5):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                readings.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            try:
                return os.getloadavg()[0]
            except (AttributeError, OSError):
                return 0.0
        if attempt < 4:
            time.sleep(0.01)
    return float(sorted(readings)[2])


def free_cores(cores: int | None = None, busy: float | None = None) -> int:
    """``cores`` (default: usable) minus those busy elsewhere, rounded, at least 1."""
    cores = usable_cores() if cores is None else cores
    busy = busy_elsewhere() if busy is None else busy
    return max(1, min(cores, round(cores - busy)))


def prepare_openmp(environ: dict[str, str] | None = None, *, free: int | None = None,
                   cores: int | None = None) -> None:
    """Before torch is imported: on a loaded machine, OpenMP threads wait passively.

    Only when other work holds some of the cores (``free`` < ``cores``, default: measured) and
    the environment does not set ``OMP_WAIT_POLICY`` itself: on an idle machine the default
    (spin a while, then sleep) is faster (benchmarks/load.md).
    """
    environ = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    free = free_cores(cores) if free is None else free
    if free < cores:
        environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def resolve_threads(requested: int, environ: dict[str, str] | None = None) -> int:
    """The thread count for a run: ``requested`` if > 0, else OMP_NUM_THREADS, else free cores.

    The free cores are measured once per process, so the runs of one process (a test
    session, a notebook) all use the same count and give the same numbers.
    """
    if requested > 0:
        return requested
    environ = os.environ if environ is None else environ
    given = environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    global _AUTOMATIC
    if _AUTOMATIC is None:  # once per process: its runs must not differ with the load
        _AUTOMATIC = free_cores()
    return _AUTOMATIC


_AUTOMATIC: int | None = None
