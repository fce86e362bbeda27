"""Section 3: what evaluation and instruments cost in a default run, as a share of its steps.

The default config (the demo preset: VICReg, small CNN, digits, 800 steps) is trained as
``sslscope train`` would, with its default schedules: the probes (linear probe with its
weight-decay search, kNN, NCC and k-means on h and z) at ``eval_points`` log-spaced steps,
the instruments (spectrum and geometry on a fixed batch of 1,024 images) at
``instrument_points`` steps, and the final evaluation (raw pixels and the random-init encoder
as baselines; the trained encoder's row reuses the last step's probes).

The time inside each consumer is measured by wrapping the consumers the registry
(:data:`sslscope.consumers.CONSUMERS`) builds, and the final evaluation by wrapping
``write_final_evaluation`` in :mod:`sslscope.train`, for the duration of the run only. The
rest of the run's wall time is the steps and the loop's own work (logging, checkpoints,
setup); each cost is reported as a fraction of that. Why: the target is that watching a run
costs a small fraction of training it (benchmarks/instruments.md found +8 % for the
instruments by comparing whole runs with and without them; this splits the cost by part).
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sslscope import config as config_lib
from sslscope import consumers as consumers_lib
from sslscope.bench.table import Column, Section, Table
from sslscope.bench.timing import Settings, median
from sslscope.bench.training import write_synthetic_cifar
from sslscope.config import Config
from sslscope.observe import Consumer
from sslscope.schedules import log_spaced_steps

FINAL = "final evaluation"


def _timed(fn: Callable[..., Any], seconds: dict[str, float], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - start

    return wrapper


@contextmanager
def timed_hooks(seconds: dict[str, float]) -> Iterator[None]:
    """While active, add each consumer's and the final evaluation's seconds to ``seconds``."""
    import sslscope.train as train_module

    if not hasattr(train_module, "write_final_evaluation"):
        raise RuntimeError("sslscope.train no longer calls write_final_evaluation by that name; "
                           "update sslscope/bench/overhead.py")
    saved = dict(consumers_lib.CONSUMERS)
    saved_final = train_module.write_final_evaluation

    def timed_maker(make: Callable[..., Consumer | None]) -> Callable[..., Consumer | None]:
        def build(*args: Any) -> Consumer | None:
            consumer = make(*args)
            if consumer is None:
                return None
            return Consumer(consumer.name, consumer.steps,
                            _timed(consumer.consume, seconds, consumer.name))

        return build

    consumers_lib.CONSUMERS.update({k: timed_maker(v) for k, v in saved.items()})
    train_module.write_final_evaluation = _timed(saved_final, seconds, FINAL)
    try:
        yield
    finally:
        consumers_lib.CONSUMERS.clear()
        consumers_lib.CONSUMERS.update(saved)
        train_module.write_final_evaluation = saved_final


def timed_run(cfg: Config, settings: Settings, name: str,
              stop_at: int | None = None) -> tuple[float, dict[str, float]]:
    """Train ``cfg`` from scratch; (wall seconds, seconds per consumer and final evaluation)."""
    from sslscope.train import train

    run_dir = settings.scratch / name
    shutil.rmtree(run_dir, ignore_errors=True)
    seconds: dict[str, float] = defaultdict(float)
    with timed_hooks(seconds):
        start = time.perf_counter()
        train(cfg, run_dir, stop_at=stop_at, progress=False)
        wall = time.perf_counter() - start
    shutil.rmtree(run_dir, ignore_errors=True)
    return wall, dict(seconds)


def default_config(settings: Settings) -> Config:
    """The default config (the demo), on the CPU, without TensorBoard.

    With ``quick``: a few steps on 80 CIFAR-shaped random images, probed by Adam in batches
    of 256 (all 80 at once), whose cost does not depend on convergence (L-BFGS on 80
    separable points runs to its iteration limit; digits' final evaluation takes seconds).
    """
    cfg = config_lib.replace(config_lib.Config(), device="cpu", tensorboard=False)
    if settings.quick:
        root = write_synthetic_cifar(settings.scratch / "overhead-data", 16)
        cfg = config_lib.replace(cfg, dataset="cifar10", data_dir=str(root), augment="simclr",
                                 steps=4, warmup_steps=1, batch_size=8, projector_dims=(16, 16),
                                 eval_points=1, instrument_points=2, probe_batch_size=256)
    return cfg


def run(settings: Settings) -> Section:
    """Time default-schedule runs; one table of each part's seconds and share."""
    cfg = default_config(settings)
    if not settings.quick:
        # A short untimed run first: the process's one-time costs (first use of each kernel,
        # of torch.optim, the data set's load) would otherwise land on the first consumer.
        # It stops before its final evaluation; its step-0 probes and instruments run.
        warm = config_lib.replace(cfg, steps=8, warmup_steps=2, eval_points=1,
                                  instrument_points=1)
        timed_run(warm, settings, "warm-up", stop_at=warm.steps - 1)
    runs = [timed_run(cfg, settings, f"run-{i}") for i in range(settings.repeats)]
    names = sorted({k for _, seconds in runs for k in seconds if k != FINAL}) + [FINAL]
    points = {"probes": len(log_spaced_steps(cfg.steps, cfg.eval_points)),
              "instruments": len(log_spaced_steps(cfg.steps, cfg.instrument_points))}
    rest = [wall - sum(seconds.values()) for wall, seconds in runs]
    table = Table(
        f"Default run: {cfg.method}, {cfg.backbone}, {cfg.dataset}, {cfg.steps} steps of batch "
        f"{cfg.batch_size}",
        [Column("part"), Column("calls"), Column("seconds", "{:.2f}"),
         Column("seconds per call", "{:.3f}"),
         Column("fraction of the steps' time", "{:.3f}", ratio=True),
         Column("share of the run", "{:.1%}")],
    )
    walls = [wall for wall, _ in runs]
    for name in names:
        per_run = [seconds.get(name, 0.0) for _, seconds in runs]
        calls = points.get(name, 1)
        table.add(name, calls, median(per_run), median(per_run) / calls,
                  median([s / r for s, r in zip(per_run, rest, strict=True)]),
                  median([s / w for s, w in zip(per_run, walls, strict=True)]))
    table.add("steps and the loop's own work", cfg.steps, median(rest),
              median(rest) / cfg.steps, 1.0, median([r / w for r, w in zip(rest, walls,
                                                                              strict=True)]))
    return Section(
        "overhead", "Evaluation and instruments as a fraction of training time",
        f"The default config trained {settings.repeats} time(s) after a short untimed warm-up "
        f"run (none with --quick), at its default schedules: probes at {points['probes']} "
        f"log-spaced steps (linear probe with its weight-decay search, kNN, NCC, k-means on "
        f"h and z), "
        f"instruments `{cfg.instruments}` at {points['instruments']} steps, and the final "
        "evaluation (raw-pixel and random-init baselines, final embeddings saved). Seconds "
        "inside each part are measured by wrapping the registry's consumers and the final "
        "evaluation; the rest of the wall time is the steps and the loop's logging, "
        "checkpoints and setup. Medians over runs.",
        [table],
        notes=["A fraction of 0.10 means the part adds 10 % to the time the steps take."],
    )
