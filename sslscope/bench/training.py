"""Section 2: the training step, sslscope.train against a hand-written loop and a DataLoader loop.

Three ways to run the same steps (same parts from :func:`sslscope.parts.build_parts`, same
loss, AdamW with the same two parameter groups, same learning-rate schedule):

- ``sslscope.train.train`` with evaluation, instruments, TensorBoard and intermediate
  checkpoints off. Its steady-state step is timed by the run's own clock between steps k₁
  and k₂ (metrics.jsonl's ``time``, logged every step; :func:`loop_seconds`), which leaves out
  the fixed costs (data loading, building, the run directory, the checkpoint written at the
  stop). The difference of two whole runs' wall times, used before, was noise at few steps;
- a minimal loop written here (:func:`hand_written_step`): the same batch order and view
  seeds, the networks called directly, no logging, no host sync. Its ratio to train's step
  is the framework's overhead (1.00 = none);
- a per-sample pipeline: the PIL/NumPy augmentation of :mod:`sslscope.bench.pil_pipeline`
  in DataLoader workers feeding the same step, which is how lightly, solo-learn and the
  authors' scripts feed a CPU-side model. lightly itself cannot be installed here: its
  package imports torchvision, which does not import against this torch.

Cases: the demo preset (VICReg, small CNN, 512³ projector, batch 256, digits 1×8×8) and the
same on CIFAR-shaped data (random uint8 images written in the CIFAR-10 file format and read
by the real loader, 3×32×32, the "simclr" views). Views/s counts V × batch per step.
"""

from __future__ import annotations

import itertools
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from sslscope import config as config_lib
from sslscope.bench.pil_pipeline import per_sample_loader
from sslscope.bench.table import Column, Section, Table
from sslscope.bench.timing import Elapsed, Settings, interleaved, median, median_ratio
from sslscope.config import Config
from sslscope.data import ImageData, load_dataset
from sslscope.data.cifar import CIFAR10_DIR, CIFAR10_TRAIN
from sslscope.files import read_jsonl
from sslscope.parts import build_parts
from sslscope.presets import demo
from sslscope.schedules import warmup_cosine
from sslscope.train import batch_indices, train
from sslscope.views import make_views

Step = Callable[..., Tensor]  # step(t, views=None) -> loss


def write_synthetic_cifar(root: Path, per_batch: int, seed: int = 0) -> Path:
    """Random uint8 images in the CIFAR-10 "python version" format, for ``dataset="cifar10"``.

    Five train batches and a test batch of ``per_batch`` images each, plus ``batches.meta``,
    under ``root/cifar-10-batches-py``; returns ``root`` (the config's ``data_dir``).
    """
    folder = root / CIFAR10_DIR
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [*CIFAR10_TRAIN, "test_batch"]:
        entry = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {b"label_names": [f"class{c}".encode() for c in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def hand_written_step(cfg: Config, data: ImageData, device: torch.device) -> Step:
    """A minimal training loop's step, ``step(t, views=None) -> loss``, for two-view methods.

    Builds the same parts and AdamW as ``sslscope.train`` (decay on weights with ndim > 1 only,
    fused kernel) and does per step exactly its work: lr[t], batch_indices(t), views from a
    generator seeded by (seed, t), one forward per view, the loss's terms summed, backward,
    optimizer step. ``views`` replaces the augmentation (the per-sample pipeline's batches).
    Step indices past ``cfg.steps`` reuse the schedule cyclically (timing only).

    Raises:
        ValueError: a method with a predictor, an EMA target or two modalities, another
            optimizer than AdamW, or the engine's options (bf16, channels-last, compile):
            this loop leaves those branches out.
    """
    parts = build_parts(cfg, data, device)
    method = parts.method
    engine = cfg.precision != "fp32" or cfg.channels_last or cfg.compile
    if method.predictor or method.target == "ema" or method.cross_modal or engine or \
            cfg.optimizer != "adamw":
        raise ValueError("the hand-written loop covers two-view methods trained with AdamW in "
                         "float32, without channels-last or compile")
    params = [p for p in parts.trained.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
         {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
        lr=cfg.lr, fused=True)
    lr = warmup_cosine(cfg.lr, cfg.steps, warmup_steps=cfg.warmup_steps,
                       final_fraction=cfg.final_lr_fraction)
    images = data.ssl_images().to(device)
    rng = torch.Generator(device=device)
    parts.modules.train()

    def step(t: int, views: list[Tensor] | None = None) -> Tensor:
        for group in optimizer.param_groups:
            group["lr"] = lr[t % cfg.steps]
        if views is None:
            index = batch_indices(images.shape[0], cfg.batch_size, cfg.seed, t).to(device)
            rng.manual_seed(cfg.seed * 2**32 + t)
            views = make_views(images[index], cfg.augment, cfg.n_views, rng)
        z = [parts.encoder(v.to(device))[1] for v in views]  # V × (N, D)
        loss = sum(parts.objective(*z).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def train_seconds(cfg: Config, run_dir: Path, stop_at: int) -> float:
    """Wall seconds of ``sslscope.train.train(cfg)`` stopping after ``stop_at`` steps."""
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    train(cfg, run_dir, stop_at=stop_at, progress=False)
    seconds = time.perf_counter() - start
    shutil.rmtree(run_dir, ignore_errors=True)
    return seconds


def loop_seconds(cfg: Config, run_dir: Path, k1: int, timed: int) -> float:
    """Seconds ``sslscope.train.train(cfg)`` spends on steps k₁ + 1 … k₁ + ``timed``.

    Read from the run's own clock (the ``time`` of metrics.jsonl's rows, logged every step), so
    the set-up, the start-of-run evaluation and the final checkpoint are not in it: the
    difference of two whole runs' wall times was noise at a few steps (it came out negative).
    """
    shutil.rmtree(run_dir, ignore_errors=True)
    train(config_lib.replace(cfg, log_every=1), run_dir, stop_at=k1 + timed, progress=False)
    times = {r["step"]: r["time"] for r in read_jsonl(run_dir / "metrics.jsonl")
             if "train/loss" in r}
    shutil.rmtree(run_dir, ignore_errors=True)
    return times[k1 + timed] - times[k1]


def cases(settings: Settings) -> dict[str, tuple[Config, int, int]]:
    """The timed configs: the demo preset on digits and on CIFAR-shaped synthetic data.

    Each with (k₁, steps timed per repeat): a CIFAR-shaped step costs ten digits steps.
    """
    base = config_lib.replace(demo(), device="cpu", instruments="", eval_points=0,
                              tensorboard=False, checkpoint_every=1_000_000)
    if settings.quick:
        base = config_lib.replace(base, batch_size=8, projector_dims=(32, 32))
    root = write_synthetic_cifar(settings.scratch / "cifar-shaped", 16 if settings.quick
                                 else 1024)
    cifar = config_lib.replace(base, dataset="cifar10", data_dir=str(root), augment="simclr")
    return {
        "demo preset: digits 1×8×8, `digits` views": (base, 1, 1) if settings.quick
        else (base, 3, 20),
        "demo preset on CIFAR-shaped data: 3×32×32, `simclr` views": (cifar, 1, 1)
        if settings.quick else (cifar, 2, 5),
    }


def three_loops(cfg: Config, k1: int, timed: int, settings: Settings
                ) -> tuple[dict[str, Callable[[], object]], DataLoader]:
    """The three sides' calls, each doing ``timed`` steps of ``cfg``, and the DataLoader.

    "train": a run stopping after k₁ + timed steps, its steps after k₁ timed by its own clock;
    "hand": the hand-written loop, continuing from its previous call; "loader": a fresh pass
    of ``timed`` batches of the per-sample pipeline feeding the same step (its own parts).
    """
    device = torch.device("cpu")
    data = load_dataset(cfg.dataset, cfg.data_dir)
    run_dir = settings.scratch / "train-run"
    hand, fed = hand_written_step(cfg, data, device), hand_written_step(cfg, data, device)
    counter = itertools.count()
    loader = per_sample_loader(data.ssl_images(), cfg.augment, cfg.n_views,
                               batch_size=cfg.batch_size, batches=timed,
                               workers=settings.workers)

    def via_train() -> Elapsed:
        return Elapsed(loop_seconds(cfg, run_dir, k1, timed))

    def via_hand() -> None:
        for _ in range(timed):
            hand(next(counter))

    def via_loader() -> None:
        for t, views in enumerate(loader):
            fed(t, views)

    return {"train": via_train, "hand": via_hand, "loader": via_loader}, loader


def run(settings: Settings) -> Section:
    """Time the three loops on both cases; one table."""
    table = Table(
        "Steady-state training step",
        [Column("case"), Column("batch × views"), Column("train timed from step k₁ to k₂"),
         Column("sslscope.train (views/s)", "{:,.0f}"),
         Column("hand-written loop (views/s)", "{:,.0f}"),
         Column("per-sample DataLoader loop (views/s)", "{:,.0f}"),
         Column("train step / hand-written step", "{:.3f}", ratio=True),
         Column("train / per-sample (speed-up)", "{:.1f}×", ratio=True)],
    )
    for name, (cfg, k1, timed) in cases(settings).items():
        k2 = k1 + timed
        cfg = config_lib.replace(cfg, steps=k2 + 1, warmup_steps=min(cfg.warmup_steps, k2))
        calls, loader = three_loops(cfg, k1, timed, settings)
        times = interleaved(calls, settings.repeats)
        views = cfg.batch_size * cfg.n_views
        per_step = {k: [t / timed for t in v] for k, v in times.items()}
        table.add(name, f"{cfg.batch_size} × {cfg.n_views}", f"{k1}, {k2}",
                  views / median(per_step["train"]), views / median(per_step["hand"]),
                  views / median(per_step["loader"]),
                  median_ratio(per_step["train"], per_step["hand"]),
                  median_ratio(per_step["loader"], per_step["train"]))
        del calls, loader  # stop the loader's workers before the next case
    table.add("lightly: not installed (its package imports torchvision, which does not "
              "import against this torch)", None, None, None, None, None, None, None)
    return Section(
        "training", "Training step: sslscope.train against a hand-written loop and a "
        "per-sample DataLoader loop",
        f"The same parts (`build_parts`), loss, AdamW and schedule three ways: "
        f"`sslscope.train.train` with evaluation and instruments off, its step timed as the "
        f"difference of two runs stopping after k₁ and k₂ steps (fixed costs cancel); a "
        f"minimal hand-written PyTorch loop doing the same work (k₂ − k₁ steps per repeat); "
        f"and the per-sample PIL pipeline in a DataLoader with {settings.workers} worker "
        f"process(es) feeding the same step (k₂ − k₁ steps per repeat, a fresh pass each). "
        f"The ratio train/hand-written is the framework's overhead per step (1.00 = none). "
        f"Median of {settings.repeats} alternated repeats after one warm-up round. The "
        "CIFAR-shaped case reads random images through the real CIFAR-10 loader.",
        [table],
        notes=["lightly, the usual baseline for a per-sample pipeline, cannot be installed "
               "here (it imports torchvision); the per-sample DataLoader loop stands in for "
               "it, with the same ops as torchvision's transforms."],
    )
