"""CPU threads: as many as the cores other work leaves free, waiting passively.

On a 2-core machine already running other trainings (a load average of about 4), `make demo`
took 3.5 s per step instead of 0.08 s: PyTorch's OpenMP threads spin-wait for cores they do not
get. Two things fix it, both overridable:

- :func:`prepare_openmp`, called by the command line before torch is imported, sets the
  thread count (``OMP_NUM_THREADS``, unless set) to the cores this process may use minus those
  other processes keep busy now, at least 1, and ``OMP_WAIT_POLICY=PASSIVE`` when other work
  holds some of the cores (unless set): an idle OpenMP thread then sleeps instead of spinning
  on a core another process needs. On an idle machine OpenMP's default wait stays: it is
  faster there.
- A config's ``threads`` (``--threads``), when above 0, sets the count for the run itself.

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
    """Before torch is imported: as many OpenMP threads as free cores, passive when loaded.

    Sets ``OMP_NUM_THREADS`` to the free cores unless the environment sets it (a study's
    runner does for its children: cores / jobs), and, when other work holds some of the cores
    (``free`` < ``cores``, default: measured), ``OMP_WAIT_POLICY=PASSIVE`` unless set: on an
    idle machine the default (spin a while, then sleep) is faster (benchmarks/load.md). Only
    the command line calls it: a program that imports sslscope keeps its own thread settings.
    """
    environ = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    free = free_cores(cores) if free is None else free
    environ.setdefault("OMP_NUM_THREADS", str(free))
    if free < cores:
        environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
