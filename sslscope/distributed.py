"""Autograd-aware gathering across processes, for losses that need the global batch.

Losses stay single-process pure functions; the training loop gathers their batch inputs with
:func:`gather` first. Every rank then computes the same global loss. The backward of
:class:`_AllGather` sums, onto each rank's own slice, the gradients all ranks computed for it
(W copies of ∂L/∂z_r); DistributedDataParallel then averages parameter gradients over the W
ranks, which leaves exactly ∂L/∂θ of one process on the concatenated batch. A plain
``dist.all_gather`` would drop the gradient of the other ranks' samples: the 1/W-sized
gradient bug that shipped in several libraries (lightly #1531, #1977).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Number of processes in the default group, 1 when not distributed."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping gradients for the local slice.

    Args:
        x: the local batch, shape (N, ...); every rank must pass the same shape.

    Returns:
        (W·N, ...), rank r's samples at rows r·N … (r+1)·N − 1; ``x`` itself when W = 1.
    """
    if world_size() == 1:
        return x
    return _AllGather.apply(x)


class _AllGather(torch.autograd.Function):
    """all_gather forward; backward all-reduces the global gradient and keeps the local slice.

    Written here rather than taken from ``torch.distributed.nn.functional.all_gather``, which
    PyTorch deprecates. ``all_reduce`` + slice costs twice a reduce-scatter's traffic but runs
    on every backend, gloo included, and the tensors gathered here are small (N × D embeddings).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # Contiguous buffers: collectives on strided views gave wrong results (PyTorch #120582).
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x)
        ctx.rows = x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)  # all_reduce is in place
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over ranks, as DistributedDataParallel does after backward."""
    if world_size() == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world_size()
