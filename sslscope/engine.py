"""How a training step runs: one process or W under torchrun, precision, memory format, compile.

The loop (:mod:`sslscope.train`) asks this module three things: whether the options fit the
machine and the world (:func:`check_engine`, one sentence on every rank before any process
talks to another), which slice of the global batch this rank trains (:func:`local_rows`), and
the networks' forward for a step (:func:`step_forward`): the plain forward for one process, the
same forward inside DistributedDataParallel for several, optionally under bf16 autocast, on
channels-last images, through ``torch.compile``. What the loss sees is always float32 and, via
:func:`sslscope.distributed.gather`, the whole global batch.

Numbers of the choices are in benchmarks/bench.md (``sslscope bench``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from sslscope.config import Config
from sslscope.distributed import World
from sslscope.errors import UserError
from sslscope.methods import Outputs
from sslscope.parts import Parts


def check_engine(cfg: Config, world: World, device: torch.device) -> None:
    """Refuse options the world or the machine cannot run, with one sentence.

    Every rank calls this before the process group exists, so a bad option stops all of them
    with the same sentence and exit status 2, and none waits for another.
    """
    w, b = world.size, cfg.batch_size
    if w > 1 and b < 2 * w:
        raise UserError(f"batch_size {b} is too small for {w} processes: each needs at least 2 "
                        f"images of the global batch (BatchNorm statistics); use at least {2 * w}")
    if b % w:
        raise UserError(f"batch_size {b} does not divide among {w} processes; use a multiple of "
                        f"{w} (the batch is global, each process trains batch_size / {w})")
    if cfg.sync_batchnorm and w > 1 and device.type != "cuda":
        raise UserError("sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU "
                        "kernel); pass --sync-batchnorm false to train on CPU")
    if cfg.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"precision bf16 needs a GPU with bfloat16 support; "
                        f"{torch.cuda.get_device_name(device)} has none: use fp32")
    if cfg.compile:
        reason = compile_unsupported(device)
        if reason:
            raise UserError(f"compile is not available here ({reason}); pass --compile false")


def compile_unsupported(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None when it can."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "TorchDynamo does not support this Python or platform"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed"
    compiler = os.environ.get("CXX", "g++")
    return None if shutil.which(compiler) or shutil.which("clang++") else (
        f"no C++ compiler ({compiler}) for Inductor's CPU kernels")


def local_rows(batch: Tensor, world: World) -> Tensor:
    """Rank r's slice of the global batch's indices: rows r·B/W … (r+1)·B/W − 1."""
    n = batch.shape[0] // world.size
    return batch[world.rank * n : (world.rank + 1) * n]


def prepare_modules(parts: Parts, cfg: Config, world: World) -> None:
    """In place, before the optimizer is built: SyncBatchNorm, then channels-last."""
    if cfg.sync_batchnorm and world.size > 1:
        for name in list(parts.modules):  # the EMA target too: its forward is in train mode
            parts.modules[name] = nn.SyncBatchNorm.convert_sync_batchnorm(parts.modules[name])
    if cfg.channels_last:
        parts.modules.to(memory_format=torch.channels_last)


class _StepForward(nn.Module):
    """The step's forward as one module call, the unit DistributedDataParallel wraps."""

    def __init__(self, parts: Parts, forward: Callable[[Parts, list[Tensor]], Outputs]) -> None:
        super().__init__()
        self.trained = parts.trained  # registers the optimised parameters with DDP
        self._parts, self._forward = parts, forward

    def forward(self, views: list[Tensor]) -> Outputs:
        return self._forward(self._parts, views)


def step_forward(
    parts: Parts,
    cfg: Config,
    world: World,
    device: torch.device,
    forward: Callable[[Parts, list[Tensor]], Outputs],
) -> Callable[[list[Tensor]], Outputs]:
    """``views → Outputs`` for the training step, float32 whatever the networks ran in.

    Args:
        parts: the run's networks (already through :func:`prepare_modules`).
        cfg: reads ``precision``, ``channels_last`` and ``compile``.
        world: W > 1 wraps the forward in DistributedDataParallel, which averages the
            parameter gradients over ranks during backward (bucketed, overlapped with it).
        device: where the step runs.
        forward: ``(parts, views) → Outputs``, the loop's networks forward.
    """
    module: nn.Module = _StepForward(parts, forward)
    if world.size > 1:
        # forward_sync_buffers=False: BatchNorm statistics matter only on rank 0, which evaluates
        # and saves; with sync_batchnorm they are equal on every rank anyway.
        module = DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False, gradient_as_bucket_view=True)
    if cfg.compile:
        module = torch.compile(module)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else nullcontext())

    def run(views: list[Tensor]) -> Outputs:
        if cfg.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with autocast:
            out = module(views)
        if cfg.precision == "fp32":
            return out
        # The losses (nuclear norms, covariance eigen-things) run in float32.
        return Outputs(*[None if xs is None else [x.float() for x in xs]
                         for xs in (out.z, out.p, out.t)])

    return run
