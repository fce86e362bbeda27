"""Several processes through torchrun: the process group, the global batch, rank 0's files.

``torchrun --nproc_per_node W -m sslscope train ...`` starts W copies of the command. Each
finds its rank in torchrun's environment (:func:`launched`), joins the process group
(:func:`process_group`: nccl on CUDA, gloo on CPU), trains its slice of every global batch and
lets rank 0 alone touch the run directory; :func:`run_on_main` hands rank 0's result (or its
one-sentence error) to every rank, so a bad run directory stops all W with the same sentence.

Losses stay single-process pure functions; the training loop gathers their batch inputs with
:func:`gather` first. Every rank then computes the same global loss. The backward of
:class:`_AllGather` sums, onto each rank's own slice, the gradients all ranks computed for it
(W copies of ∂L/∂z_r); DistributedDataParallel then averages parameter gradients over the W
ranks, which leaves exactly ∂L/∂θ of one process on the concatenated batch. A plain
``dist.all_gather`` would drop the gradient of the other ranks' samples: the 1/W-sized
gradient bug that shipped in several libraries (lightly #1531, #1977).
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sslscope.errors import TrainingDiverged, UserError

T = TypeVar("T")
# How long a rank waits in a collective for the others: rank 0's evaluations (a linear probe on
# 50,000 features, the report's arrays) run while the others wait, so the default is long. A
# crashed rank does not need it: torchrun stops the others as soon as one exits.
TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("SSLSCOPE_DIST_TIMEOUT_MIN", "60")))
_control: Any = None  # a gloo group for CPU-side messages when the default group is nccl


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank r of W, and its GPU index on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and evaluates."""
        return self.rank == 0


ONE_PROCESS = World()


def launched() -> World:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be integers; launch several "
                        "processes with torchrun") from None


def world_size() -> int:
    """Number of processes in the default group, 1 when not distributed."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group, 0 when not distributed."""
    return dist.get_rank() if world_size() > 1 else 0


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """Join torchrun's process group for the duration of a run (nothing to do for one process).

    nccl for CUDA devices, gloo otherwise. A group that the caller created already (a test,
    a notebook) is used as it is and left open. On CUDA the caller passes ``cuda:LOCAL_RANK``.
    """
    global _control
    world = launched()
    if dist.is_initialized():
        yield World(dist.get_rank(), dist.get_world_size(), world.local_rank)
        return
    if world.size == 1:
        yield world
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    _control = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend == "nccl" else None
    try:
        yield world
        leave_together()
    finally:
        _control = None
        dist.destroy_process_group()


def leave_together() -> None:
    """Wait for every rank, and for gloo to let go of that last collective, before leaving.

    A rank tearing gloo down while another is still in a collective aborts that one, and a
    fast rank's next group could meet the slow rank's old one. Why not ``dist.barrier()``:
    gloo's worker thread drops its reference to a finished collective just after the call
    returns, and freeing its tensors (or, for a barrier, the step's DDP all-reduces it holds,
    with the backward pass's Python context) takes the GIL; when that lands in interpreter
    exit the process aborts ("terminate called without an active exception": 1 launch in 15
    with a barrier, 8 in 60 with a bare all-reduce). The tensor's use count shows when the
    worker has let go.
    """
    if world_size() == 1:
        return
    value = torch.zeros(1)
    dist.all_reduce(value, group=_control)
    deadline = time.monotonic() + 10.0
    while value._use_count() > 1 and time.monotonic() < deadline:
        time.sleep(1e-4)


# How gloo and nccl word a collective that lost a peer; gloo raises a plain RuntimeError.
_PEER_FAILURE = ("closed by peer", "reset by peer", "Broken pipe", "communicator was aborted",
                 "collective operation timeout", "Socket Timeout")


def peer_failed(error: BaseException) -> bool:
    """Whether ``error`` is a collective failing because another rank stopped or timed out."""
    return world_size() > 1 and (isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and any(s in str(error) for s in _PEER_FAILURE)))


def run_on_main(fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0 while the others wait; every rank returns rank 0's result.

    A UserError or TrainingDiverged raised on rank 0 is raised on every rank, so that all W
    processes stop with the same sentence and exit status instead of W − 1 of them waiting
    for a rank that has gone. The result must be picklable (it crosses processes).
    """
    if world_size() == 1:
        return fn()
    message: list[Any] = [None]
    if rank() == 0:
        try:
            message[0] = ("ok", fn())
        except (UserError, TrainingDiverged) as e:
            message[0] = (type(e).__name__, str(e))
    dist.broadcast_object_list(message, src=0, group=_control)
    kind, value = message[0]
    if kind == "UserError":
        raise UserError(value)
    if kind == "TrainingDiverged":
        raise TrainingDiverged(value)
    return value


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (a Ctrl-C that reached some ranks).

    A CPU all-reduce on the gloo control group: no GPU synchronisation inside the step.
    """
    if world_size() == 1:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control)
    return bool(value.item())


def broadcast_modules(modules: nn.Module) -> None:
    """Copy every parameter and buffer of ``modules`` from rank 0 to the other ranks, in place."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in modules.state_dict().values():
            dist.broadcast(tensor, src=0)


def broadcast_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Give every rank rank 0's optimizer state (momentum, Adam moments) after a resume."""
    if world_size() == 1:
        return
    state = [None]
    if rank() == 0:
        sd = optimizer.state_dict()
        state[0] = {"state": {k: {n: v.cpu() if isinstance(v, Tensor) else v for n, v in s.items()}
                              for k, s in sd["state"].items()},
                    "param_groups": sd["param_groups"]}
    dist.broadcast_object_list(state, src=0, group=_control)
    if rank() != 0:
        optimizer.load_state_dict(state[0])


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
