"""Run the bench's sections in one process and write the one results table.

``sslscope bench --out DIR`` calls :func:`run_bench`: it checks the options (one sentence and
exit status 2 for a bad one), sets the thread counts, runs the chosen sections in a scratch
directory and writes ``DIR/bench.md`` and ``DIR/bench.json`` atomically, so an interrupted
bench leaves the previous table whole.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sslscope.bench import SECTIONS, augmentation, evaluation, gpu, overhead, scaling, training
from sslscope.bench.table import Section, header, previous_sections, write
from sslscope.bench.timing import Settings, busy_cpu_seconds, own_cpu_seconds
from sslscope.errors import UserError

# Keyed by the names of SECTIONS, in the same order (tests/test_bench.py checks it).
RUNNERS: dict[str, Callable[[Settings], Section]] = {
    "augmentation": augmentation.run,
    "training": training.run,
    "overhead": overhead.run,
    "evaluation": evaluation.run,
    "scaling": scaling.run,
    "gpu": gpu.run,
}
FULL_REPEATS, QUICK_REPEATS = 3, 1


def parse_sections(spec: str | None) -> list[str]:
    """``"training,evaluation"`` → those names in table order; None or "all" → every section."""
    if spec is None or spec.strip() == "all":
        return list(SECTIONS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise UserError(f"unknown bench section '{','.join(unknown) or spec}'; choose from: "
                        f"{', '.join(SECTIONS)} (comma-separated), or all")
    return [n for n in SECTIONS if n in names]


def run_bench(out: str | Path, *, threads: int | None = None, repeats: int | None = None,
              workers: int | None = None, quick: bool = False,
              sections: str | None = None) -> tuple[Path, Path]:
    """Run the bench and write ``out/bench.md`` and ``out/bench.json``.

    Args:
        out: the directory of the table; created if needed.
        threads: torch threads, and the limit for scikit-learn's and BLAS's pools; None: every
            logical CPU.
        repeats: timed repeats per comparison; None: 3 (1 with ``quick``).
        workers: DataLoader workers of the per-sample pipelines; None: ``threads``.
        quick: tiny sizes, a few seconds in all (for tests; the numbers mean nothing).
        sections: comma-separated names of :data:`sslscope.bench.SECTIONS`; None: all.

    Returns:
        The paths of bench.md and bench.json.

    Raises:
        UserError: ``threads`` or ``repeats`` below 1, ``workers`` below 0, ``out`` an existing
            file, or an unknown section.
    """
    from threadpoolctl import threadpool_limits

    threads = (os.cpu_count() or 1) if threads is None else threads
    repeats = (QUICK_REPEATS if quick else FULL_REPEATS) if repeats is None else repeats
    workers = threads if workers is None else workers
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    if repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {repeats}")
    if workers < 0:
        raise UserError(f"--workers must be 0 (in the main process) or more, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the directory to write bench.md into")
    names = parse_sections(sections)
    command = " ".join(["sslscope bench", f"--out {out}", f"--threads {threads}",
                        f"--repeats {repeats}", f"--workers {workers}",
                        *(["--sections " + ",".join(names)] if names != list(SECTIONS) else []),
                        *(["--quick"] if quick else [])])

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    busy0, own0, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    done: list[Section] = []
    try:
        with threadpool_limits(threads), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            for name in names:
                print(f"bench: {name} …", file=sys.stderr, flush=True)
                settings = Settings(quick, repeats, threads, workers, Path(tmp) / name)
                settings.scratch.mkdir()
                t0 = time.perf_counter()
                section = RUNNERS[name](settings)
                section.seconds = time.perf_counter() - t0
                done.append(section)
                print(f"bench: {name} took {section.seconds:.1f} s", file=sys.stderr,
                      flush=True)
    finally:
        torch.set_num_threads(previous_threads)
    wall = time.perf_counter() - start
    busy1, own1 = busy_cpu_seconds(), own_cpu_seconds()
    others = None if busy0 is None or busy1 is None else max(
        0.0, (busy1 - busy0 - (own1 - own0)) / wall)
    head = header(command=command, threads=threads, workers=workers,
                  date=datetime.datetime.now().isoformat(timespec="seconds"), seconds=wall,
                  others_busy=others, quick=quick)
    # A partial rerun keeps the table's other sections, each marked with the run it is from.
    carried = previous_sections(out, names, quick) if names != list(SECTIONS) else []
    every = sorted([*done, *carried], key=lambda s: SECTIONS.index(s.key))
    return write(out, head, every)

