"""The training loop, top to bottom.

config → device and seed → data → parts (encoder, predictor, EMA target, loss state; built by
:func:`sslscope.parts.build_parts`) → optimizer and schedules → (resume) → loop → final
evaluation. What a method needs is declared in its :class:`sslscope.methods.Method` record; the
loop has three structural branches (predictor, EMA target, cross-modal split) and calls the loss
through the method's ``inputs`` adapter. At each evaluation step one call hands the run to the
consumers registered in :mod:`sslscope.consumers` (the probes and the instruments).

Training writes files only; the report is built from them by the caller (``sslscope train``
builds it after this returns).

Reproducibility: the batch at step t and the augmentation random numbers at step t are derived
from (seed, t) alone, so a run resumed from a checkpoint sees exactly the data an uninterrupted
run would, and the checkpoint only needs weights, optimizer state and the step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from sslscope import config as config_lib
from sslscope.checkpoint import save_checkpoint
from sslscope.config import Config
from sslscope.consumers import consumers_for, probe_results
from sslscope.data import load_dataset
from sslscope.distributed import (
    ONE_PROCESS,
    World,
    any_rank,
    broadcast_modules,
    broadcast_optimizer,
    gather,
    launched,
    leave_together,
    peer_failed,
    process_group,
    run_on_main,
)
from sslscope.ema import cosine_ema_decay, ema_update_
from sslscope.engine import check_engine, local_rows, prepare_modules, step_forward
from sslscope.errors import (
    Interrupted,
    PeerLost,
    TrainingCollapsed,
    TrainingDiverged,
    UserError,
)
from sslscope.methods import Outputs
from sslscope.metrics_log import MetricsLog
from sslscope.observe import Snapshot, observe
from sslscope.operations import write_final_evaluation
from sslscope.optim import build_optimizer
from sslscope.parts import Parts, build_parts, resolve_device
from sslscope.precondition import eigen_precondition
from sslscope.runs import RunFiles, now, start_run, update_run_info
from sslscope.schedules import warmup_cosine
from sslscope.stops import GradientWatch, check_finite, write_failed
from sslscope.views import fixed_views, make_views


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> Tensor:
    """Indices of the images in the batch at ``step``: a fresh permutation every epoch.

    The last partial batch of each epoch is dropped (a size-1 remainder would break BatchNorm
    and the losses' batch statistics).
    """
    per_epoch = n // batch_size
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    start = position * batch_size
    return torch.randperm(n, generator=generator)[start : start + batch_size]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt:
    """The first SIGINT or SIGTERM asks the loop to stop at the next step boundary; a second aborts.

    SIGINT is Ctrl-C; SIGTERM is what a cluster scheduler (and torchrun, passing it on) sends
    before it preempts a job. Stopping between steps is what makes the checkpoint written then
    resume exactly: an interrupt in the middle of a step could leave the optimizer updated and
    the EMA target not.

    The same signal again within ``DUPLICATE_SECONDS`` is the same notice delivered twice, not a
    second one: a scheduler that signals every process of a job and the launcher that forwards
    it (torchrun's agent, a sweep passing it to its trainings) both reach the process within
    milliseconds of each other.
    """

    DUPLICATE_SECONDS = 0.5

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        self.signum: int = signal.SIGINT  # the first signal received
        self._first = 0.0  # when it came (time.monotonic())
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if not self.requested:
            self.requested, self.signum, self._first = True, signum, time.monotonic()
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
                # Never fails the stop: the reader of stderr may be gone (the SIGTERM of an
                # orphan whose study died), and a BrokenPipeError here would end the run.
                with contextlib.suppress(OSError):
                    print(f"\nsslscope: {signal.Signals(signum).name}: stopping after this "
                          "step, with a checkpoint (send it again to stop at once)",
                          file=sys.stderr, flush=True)
        elif signum != self.signum or time.monotonic() - self._first > self.DUPLICATE_SECONDS:
            raise Interrupted(self.signum)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def train(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
) -> RunFiles:
    """Train ``cfg`` into ``run_dir`` and write its final evaluation (the report is the caller's).

    Under torchrun (``torchrun --nproc_per_node W -m sslscope train ...``) every process calls
    this: each trains its B/W slice of the global batch of ``cfg.batch_size`` images, the
    losses see the global batch through :func:`sslscope.distributed.gather`, and rank 0 alone
    writes the run directory and evaluates while the others wait (:mod:`sslscope.engine`).

    Args:
        cfg: the run's config; validated here.
        run_dir: output directory. A fresh run needs it absent or empty.
        resume: continue from ``run_dir``'s checkpoint (``cfg`` must equal its config.json).
        stop_at: stop after this many steps with a checkpoint, as if interrupted (for time-
            limited jobs and for testing resumption).
        progress: show a progress bar (rank 0 only).

    Returns:
        The run's files.

    Raises:
        UserError: bad config or run directory (on every rank). TrainingDiverged: non-finite
            loss. Interrupted (a KeyboardInterrupt): SIGINT (Ctrl-C) or SIGTERM; the run stopped
            at a step boundary with a checkpoint (or, on a second signal, mid-step with the
            last checkpoint kept).
    """
    config_lib.validate(cfg)
    if stop_at is not None and stop_at < 1:
        raise UserError(f"--stop-at must be a step of at least 1, got {stop_at}")
    world = launched()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world.size > 1:  # one GPU per process, by its local rank
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {world.local_rank} has no GPU: this node shows "
                            f"{torch.cuda.device_count()}; lower --nproc_per_node")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    check_engine(cfg, world, device)
    with process_group(device) as world:
        return _train(cfg, RunFiles(Path(run_dir)), world, device, resume, stop_at, progress)


def _train(cfg: Config, files: RunFiles, world: World, device: torch.device, resume: bool,
           stop_at: int | None, progress: bool) -> RunFiles:
    torch.use_deterministic_algorithms(cfg.deterministic)
    if cfg.threads:  # 0 keeps the process's count (the command line's: sslscope.threads)
        torch.set_num_threads(cfg.threads)  # recorded in run.json ("threads")
    data = load_dataset(cfg.dataset, cfg.data_dir)
    images = data.ssl_images().to(device)  # uint8 (N, C, H, W), resident on the device
    if cfg.batch_size > images.shape[0]:
        n = images.shape[0]
        raise UserError(f"batch_size {cfg.batch_size} exceeds the {n} training images")

    parts = build_parts(cfg, data, device)
    prepare_modules(parts, cfg, world)
    method = parts.method
    optimizer = build_optimizer(cfg.optimizer, parts.trained, lr=cfg.lr,
                                weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                                lars_eta=cfg.lars_eta)
    lr = warmup_cosine(
        cfg.lr, cfg.steps, warmup_steps=cfg.warmup_steps, final_fraction=cfg.final_lr_fraction
    )
    ema = ema_decays(cfg, method.ema_schedule) if method.target == "ema" else None
    objective_module = parts.modules["objective"] if "objective" in parts.modules else None
    after_step = getattr(objective_module, "after_optimizer_step", None)
    consumers = consumers_for(cfg, data, files) if world.main else []
    observe_steps = set(run_on_main(lambda: sorted(set().union(*(c.steps for c in consumers)))))
    n_views = 1 if method.cross_modal else cfg.n_views
    start, elapsed = run_on_main(lambda: start_run(
        files, cfg, {"parts": parts.modules}, optimizer, resume=resume, device=device,
        loss_kwargs=parts.loss_kwargs))
    broadcast_modules(parts.modules)  # rank 0's weights (a resumed checkpoint's) everywhere
    if start > 0:
        broadcast_optimizer(optimizer)

    log = MetricsLog(files.metrics, files.tensorboard if cfg.tensorboard else None) \
        if world.main else None
    t0 = time.perf_counter()

    def clock() -> float:
        return elapsed + time.perf_counter() - t0

    saved = {"step": start if files.checkpoint.is_file() else None}  # the checkpoint's step

    def checkpoint(step: int) -> None:
        if world.main:
            save_checkpoint(files.checkpoint, {"parts": parts.modules}, optimizer,
                            {"step": step, "elapsed": clock(),
                             "config": config_lib.to_dict(cfg)})
            saved["step"] = step
            update_run_info(files, checkpoint_step=step)  # a later --resume expects it

    def evaluate(step: int) -> dict[str, float]:
        def on_main() -> dict[str, float]:
            row = observe(Snapshot(step, parts, data, device), consumers)
            if row:
                log.append({"step": step, "time": clock(), **row})
            return row
        return run_on_main(on_main)

    draw_views = view_drawer(cfg, images, n_views, device, world)
    networks = step_forward(parts, cfg, world, device, forward)
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and world.main),
               desc=cfg.method, unit="step")
    gradients = GradientWatch([p for g in optimizer.param_groups for p in g["params"]], device)
    status: dict = {"status": "failed"}  # run.json's word if an error escapes the loop
    step, done, interrupted = start, start, False  # done: the updates made so far
    try:
        with GracefulInterrupt() as interrupt:
            for step in range(start, cfg.steps + 1):
                if step == cfg.steps or step == stop_at:
                    break  # every update before `step` is done: a consistent state to save
                interrupted = any_rank(interrupt.requested)  # all ranks stop at the same step
                if interrupted:
                    break
                if step in observe_steps:
                    evaluate(step)
                parts.modules.train()
                for group in optimizer.param_groups:
                    group["lr"] = lr[step]
                index = batch_indices(images.shape[0], cfg.batch_size, cfg.seed, step)
                views = draw_views(step, local_rows(index, world).to(device))
                # gather() is the identity in one process; under a process group it hands the
                # loss the batch of every process, with gradients flowing back to this one.
                inputs = [gather(x) for x in method.inputs(networks(views))]
                if cfg.precondition:  # the speed-up: identity forward, preconditioned backward
                    inputs = list(eigen_precondition(*inputs, eps=cfg.precondition))
                terms = parts.objective(*inputs)  # the weighted terms; the loss is their sum
                loss = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # under DDP this also averages the gradients over ranks
                gradients.update(step + 1, loss)
                optimizer.step()
                if after_step is not None:
                    after_step()  # CLIP's clamp of its logit scale
                if ema is not None:
                    ema_update_(parts.modules["target"], parts.encoder, decay=float(ema[step]))

                done = step + 1
                log_now = done % cfg.log_every == 0 or done == cfg.steps
                save_now = done % cfg.checkpoint_every == 0 and done < cfg.steps
                if log_now or save_now:
                    # The host syncs of training: once per logged or saved step, never between.
                    values = torch.stack([t.detach() for t in (loss, *terms.values())]).tolist()
                    gradients.check(files, cfg)  # where it began, before what it led to
                    check_finite(values[0], done, files, cfg)
                if log_now and log is not None:
                    log.append({
                        "step": done, "epoch": done * cfg.batch_size / images.shape[0],
                        "time": clock(), "train/loss": values[0], "train/lr": lr[step],
                        **{f"train/loss/{k}": v for k, v in zip(terms, values[1:], strict=True)},
                    })
                    bar.set_postfix(loss=f"{values[0]:.4g}")
                if save_now:
                    checkpoint(done)
                bar.update(1)
        gradients.check(files, cfg)  # a stop between logged steps saves no spoiled weights
        checkpoint(step)
        final_row: dict[str, float] = {}
        if step == cfg.steps and step in observe_steps:
            final_row = evaluate(step)
        if interrupted:
            status = {"status": "interrupted", "stopped_at": step}
            leave_together()  # every rank agreed to stop here (process_group's exit is skipped)
            raise Interrupted(interrupt.signum)
        if step < cfg.steps:
            status = {"status": "stopped", "stopped_at": step}
            return files
        if data.num_classes:  # the probes of the last step are the trained encoder's row
            run_on_main(lambda: write_final_evaluation(
                files, cfg, data, parts.encoder, device, trained=probe_results(final_row)))
        status = {"status": "finished", "finished": now(), "wall_seconds": clock()}
        return files
    except TrainingDiverged as e:
        status = {"status": "collapsed" if isinstance(e, TrainingCollapsed) else "diverged"}
        raise
    except KeyboardInterrupt:
        if status["status"] != "interrupted":  # a second Ctrl-C, mid-step: the last save stays
            status = {"status": "interrupted"}
        raise
    except OSError as e:  # a full disk, a quota, a file system gone read-only
        sentence = write_failed(e, done, saved["step"], files)
        status = {"status": "failed", "error": sentence}
        raise UserError(sentence) from None
    except RuntimeError as e:
        if not peer_failed(e):
            raise
        raise PeerLost(f"rank {world.rank} of {world.size}: another process of the job stopped "
                       f"during a collective ({str(e).splitlines()[0]}); its own error is the "
                       f"first one torchrun reports") from None
    finally:
        bar.close()
        if log is not None:
            log.close()
        if world.main:
            try:
                update_run_info(files, **status)
            except OSError:
                # A disk that refused the last write refuses this one too (read-only: even in
                # place); the error already on its way names the file it refused first.
                if sys.exc_info()[0] is None:
                    raise


def view_drawer(cfg: Config, images: Tensor, n_views: int, device: torch.device,
                world: World = ONE_PROCESS) -> Callable[[int, Tensor], list[Tensor]]:
    """``draw(step, index)`` → the V views of the batch ``images[index]`` at ``step``.

    Fresh augmentations each step, from a generator seeded by (seed, step) alone; ``index`` is
    this rank's slice of the global batch and its views are the ones a single process makes
    for those images (:func:`sslscope.views.augment`'s ``shard``). With
    ``cfg.fixed_views`` every image keeps the same V views at every step (the fixed pairs of the
    stepwise theory): they are drawn once for the whole training set, V float copies of it.
    """
    if cfg.fixed_views:
        fixed = fixed_views(images, cfg.augment, n_views, cfg.seed)  # V × (N_all, C, H, W)
        return lambda step, index: [view[index] for view in fixed]
    rng = torch.Generator(device=device)

    def draw(step: int, index: Tensor) -> list[Tensor]:
        rng.manual_seed(cfg.seed * 2**32 + step)
        return make_views(images[index], cfg.augment, n_views, rng, (world.rank, world.size),
                          compiled=cfg.compile)

    return draw


def forward(parts: Parts, views: list[Tensor]) -> Outputs:
    """The networks' outputs for a batch of views: z per view (or per modality), p, t."""
    method, encoder = parts.method, parts.encoder
    if method.cross_modal:
        z = list(encoder.modalities(views[0]))  # 2 × (N, D), one per modality
    else:
        # One forward per view, as the official VICReg / Barlow Twins code does: BatchNorm
        # statistics are per view, never mixed across views.
        z = [encoder(v)[1] for v in views]  # V × (N, D)
    p = [parts.modules["predictor"](zi) for zi in z] if method.predictor else None
    t = None
    if method.target == "ema":
        with torch.no_grad():
            t = [parts.modules["target"](v)[1] for v in views]
    return Outputs(z, p, t)


def ema_decays(cfg: Config, schedule: str) -> np.ndarray:
    """The EMA decay at every step: BYOL's cosine rise to 1, or constant."""
    if schedule == "cosine":
        return cosine_ema_decay(cfg.ema_decay, cfg.steps)
    return np.full(cfg.steps, cfg.ema_decay)
