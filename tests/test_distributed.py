"""Two processes on gloo (CPU) give the loss and gradients of one process on the whole batch.

Target asserted: equality with single-process training on the concatenated global batch, for
the loss value and for the gradient of a shared linear encoder, for every method in METHODS, on
inputs of the shapes each method declares. The encoder gradient is averaged over ranks as
DistributedDataParallel does.
"""

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sslscope.distributed import average_gradients, gather
from sslscope.losses import METHODS, resolve_loss_kwargs
from sslscope.methods import example_inputs
from tests.test_losses_contract import accepted, scalar

WORLD, N_LOCAL, K, D_IN, D = 2, 3, 3, 6, 4  # odd local batch on purpose


def global_problem(name):
    """Seeded encoder weights and global inputs of the declared shapes, identical on every rank.

    Batch inputs are D_IN-wide pixels that a shared linear encoder maps to D; state and
    parameters are D-sized, as the loss's module would pass them.
    """
    weight = torch.randn(D, D_IN, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    method = METHODS[name]
    pixels = example_inputs(method, sizes={"N": WORLD * N_LOCAL, "K": K, "D": D_IN}, seed=8)
    held = example_inputs(method, sizes={"N": 1, "K": K, "D": D}, seed=9)
    inputs = [(a.role, x if a.role == "batch" else y.detach())
              for a, x, y in zip(method.arguments, pixels, held, strict=True)]
    return weight, inputs


def loss_and_grad(name, rank=None):
    """Encoder z = x Wᵀ on this rank's slice (or the whole batch), then the loss."""
    weight, inputs = global_problem(name)
    encoder = torch.nn.Parameter(weight.clone())
    args = []
    for role, x in inputs:
        if role == "batch":
            x = x.detach()
            if rank is not None:
                x = x[rank * N_LOCAL : (rank + 1) * N_LOCAL]
            x = gather(x @ encoder.T)
        args.append(x)
    loss_fn = METHODS[name].loss
    loss = scalar(loss_fn(*args, **accepted(loss_fn, resolve_loss_kwargs(name, {}))))
    loss.backward()
    average_gradients([encoder])
    return loss.item(), encoder.grad


def worker(rank, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    results = {}
    for name in METHODS:
        loss, grad = loss_and_grad(name, rank)
        results[name] = {"loss": loss, "grad": grad.flatten().tolist()}
    # Both ranks leave together: a rank that tears gloo down while the other is still in a
    # collective aborts it ("terminate called without an active exception", seen under load).
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        with open(out_file, "w") as f:
            json.dump(results, f)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(worker, args=(str(tmp / "init"), str(tmp / "out.json")), nprocs=WORLD, join=True)
    return json.loads((tmp / "out.json").read_text())


@pytest.mark.parametrize("name", list(METHODS))
def test_two_processes_equal_one_process_on_the_global_batch(two_process_results, name):
    loss, grad = loss_and_grad(name)
    got = two_process_results[name]
    assert got["loss"] == pytest.approx(loss, rel=1e-10, abs=1e-12)
    assert torch.allclose(torch.tensor(got["grad"], dtype=torch.float64), grad.flatten(),
                          rtol=1e-8, atol=1e-12)


def test_gather_is_the_identity_without_a_process_group():
    x = torch.randn(3, 2)
    assert gather(x) is x
