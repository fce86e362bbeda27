"""How the bench times things: interleaved repeats after warm-up, medians, per-repeat ratios.

Every comparison runs its sides alternately, ours then the baseline, ``repeats`` times, after
``warmup`` untimed calls of each: a drift of the machine's speed (another job starting, the
CPU clocking down) then hits both sides alike instead of favouring whichever ran last. The
figure quoted for a comparison is the median over repeats of the per-repeat ratio; the
absolute figures are medians of each side's times.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """What every section is told.

    Attributes:
        quick: tiny sizes (a few seconds in all), for tests; the numbers mean nothing.
        repeats: timed repeats per comparison (the median is reported).
        threads: torch threads, also the limit for scikit-learn's and BLAS's thread pools.
        workers: DataLoader worker processes of the per-sample pipelines.
        scratch: a temporary directory the sections may write run directories and files to.
    """

    quick: bool
    repeats: int
    threads: int
    workers: int
    scratch: Path


class Elapsed(float):
    """Seconds a call measured itself; :func:`interleaved` uses them instead of its wall time."""


def interleaved(
    calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of each call, the calls alternated ``repeats`` times after warm-up.

    Args:
        calls: name → a function doing one unit of work. Its result is discarded, except
            that a call returning :class:`Elapsed` times itself: those are its seconds (e.g.
            the difference of two run lengths, which cancels their fixed costs).
        repeats: timed rounds; each round calls every function once, in order.
        warmup: untimed rounds first. The first calls of a new shape pay for lazy
            initialisation (kernels chosen, allocator pools grown), which is not steady state.

    Returns:
        name → ``repeats`` wall times in seconds.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            result = call()
            wall = time.perf_counter() - start
            times[name].append(float(result) if isinstance(result, Elapsed) else wall)
    return times


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return statistics.median(values)


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over repeats of numerator[i] / denominator[i] (same-round pairs)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot, from /proc/stat (Linux only).

    With :func:`own_cpu_seconds` this tells how many cores other processes kept busy during
    the bench: on a small machine they distort the timings a lot (OpenMP threads spin while
    they wait for a busy core), so the table's header says how loaded the machine was.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (DataLoader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
