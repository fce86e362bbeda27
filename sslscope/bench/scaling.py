"""Section 5: how the costs grow with batch size, embedding width and number of samples.

Three small tables, each against its smallest size (the "growth" columns are time ratios; a
cost linear in the size doubles when the size doubles):

- the training step against the batch size: the demo config's step (the hand-written step
  of :mod:`sslscope.bench.training`, which does what ``sslscope.train``'s does) at batch
  64 … 512; a step that grows less than linearly is not yet using the cores fully;
- the loss and the step against the embedding width D: VICReg's loss forward and backward on
  (256, D) embeddings, and the demo step with a (D, D, D) projector, D = 128 … 2048. The loss
  switches to the N × N Gram form when D > N (benchmarks/losses.md), so its growth bends;
- the probes against the number of samples N: the linear probe with its weight-decay search,
  and kNN with N / 5 test queries (its cost is N · N / 5 similarities), on the Gaussian-mixture
  features of :mod:`sslscope.bench.evaluation` at D = 512, N = 5,000 … 50,000.
"""

from __future__ import annotations

import itertools

import torch

from sslscope import config as config_lib
from sslscope.bench.evaluation import gaussian_features
from sslscope.bench.table import Column, Section, Table
from sslscope.bench.timing import Settings, interleaved, median, median_ratio
from sslscope.bench.training import hand_written_step
from sslscope.config import Config
from sslscope.data import load_dataset
from sslscope.evaluate.neighbours import knn_accuracy
from sslscope.evaluate.probes import linear_probe
from sslscope.losses import vicreg_loss
from sslscope.presets import demo


def _steps(cfg: Config, steps: int):  # a call running `steps` steps of cfg's hand-written loop
    step = hand_written_step(cfg, load_dataset(cfg.dataset, cfg.data_dir), torch.device("cpu"))
    counter = itertools.count()

    def call() -> None:
        for _ in range(steps):
            step(next(counter))

    return call


def _growth(times: dict[int, list[float]]) -> dict[int, float]:
    """Each size's median per-round time ratio to the smallest size's."""
    smallest = times[min(times)]
    return {size: median_ratio(t, smallest) for size, t in times.items()}


def batch_table(settings: Settings, base: Config) -> Table:
    """Step time against the batch size."""
    batches, steps = ((8, 16), 1) if settings.quick else ((64, 128, 256, 512), 10)
    calls = {b: _steps(config_lib.replace(base, batch_size=b), steps) for b in batches}
    times = interleaved(calls, settings.repeats)
    growth = _growth(times)
    table = Table(f"Training step against the batch size ({base.dataset}, "
                  f"{base.backbone}, projector {base.projector_dims})",
                  [Column("batch"), Column("ms per step", "{:.1f}"),
                   Column("views/s", "{:,.0f}"), Column("time growth", "{:.2f}×", ratio=True)])
    for b in batches:
        per_step = median(times[b]) / steps
        table.add(b, 1000 * per_step, b * base.n_views / per_step, growth[b])
    return table


def width_table(settings: Settings, base: Config) -> Table:
    """Loss forward + backward and the whole step against the embedding width."""
    dims, batch, steps = ((16, 32), 16, 1) if settings.quick else ((128, 256, 512, 1024, 2048),
                                                                   256, 3)
    g = torch.Generator().manual_seed(0)
    pairs = {d: [torch.randn(batch, d, generator=g).requires_grad_() for _ in range(2)]
             for d in dims}

    def loss_call(d: int):
        def call() -> None:
            for _ in range(steps):
                vicreg_loss(*pairs[d]).backward()

        return call

    loss_times = interleaved({d: loss_call(d) for d in dims}, settings.repeats)
    step_times = interleaved({d: _steps(config_lib.replace(
        base, batch_size=batch, projector_dims=(d, d, d)), steps) for d in dims},
        settings.repeats)
    growth = _growth(step_times)
    table = Table(f"Loss (VICReg, N = {batch}) and step (projector (D, D, D), batch {batch}) "
                  "against the embedding width D",
                  [Column("D"), Column("loss fwd+bwd (ms)", "{:.2f}"),
                   Column("step (ms)", "{:.1f}"), Column("loss share of the step", "{:.1%}"),
                   Column("loss time growth", "{:.2f}×", ratio=True),
                   Column("step time growth", "{:.2f}×", ratio=True)])
    loss_growth = _growth(loss_times)
    for d in dims:
        loss_s, step_s = median(loss_times[d]) / steps, median(step_times[d]) / steps
        table.add(d, 1000 * loss_s, 1000 * step_s, loss_s / step_s, loss_growth[d], growth[d])
    return table


def samples_table(settings: Settings) -> Table:
    """Linear probe (with its search) and kNN against the number of samples."""
    sizes, dim = ((300, 600), 16) if settings.quick else ((5_000, 10_000, 20_000, 50_000), 512)
    data = {n: gaussian_features(n, n // 5, dim, seed=2) for n in sizes}
    linear_probe(*gaussian_features(400, 100, 16, seed=1))  # one-time costs of the first fit
    probe_times = interleaved({n: lambda n=n: linear_probe(*data[n]) for n in sizes},
                              settings.repeats, warmup=0)
    knn_times = interleaved({n: lambda n=n: knn_accuracy(*data[n]) for n in sizes},
                            settings.repeats)
    probe_growth, knn_growth = _growth(probe_times), _growth(knn_times)
    table = Table(f"Linear probe (weight-decay search included) and kNN (k = 20, N / 5 "
                  f"queries) against the number of samples N, D = {dim}",
                  [Column("N"), Column("test queries"), Column("linear probe (s)", "{:.2f}"),
                   Column("kNN (s)", "{:.2f}"),
                   Column("probe time growth", "{:.2f}×", ratio=True),
                   Column("kNN time growth", "{:.2f}×", ratio=True)])
    for n in sizes:
        table.add(f"{n:,}", f"{n // 5:,}", median(probe_times[n]), median(knn_times[n]),
                  probe_growth[n], knn_growth[n])
    return table


def run(settings: Settings) -> Section:
    """The three scaling tables."""
    base = config_lib.replace(demo(), device="cpu")
    if settings.quick:
        base = config_lib.replace(base, projector_dims=(32, 32))
    return Section(
        "scaling", "Scaling with batch size, embedding width and number of samples",
        f"Each cost at several sizes, as a ratio to the smallest size (time growth; linear "
        f"cost doubles with the size). Steps are the demo config's (VICReg, small CNN, digits) "
        f"hand-written step, which does the work of `sslscope.train`'s step (section 2); the "
        f"probes run on the Gaussian-mixture features of section 4. Median of "
        f"{settings.repeats} alternated repeats after a warm-up round.",
        [batch_table(settings, base), width_table(settings, base), samples_table(settings)],
    )
