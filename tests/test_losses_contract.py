"""The contract every registered objective keeps, parametrised over LOSSES (timm's pattern).

Inputs are built from the loss's positional parameter names, which say what each input is:
z_a/z_b/p_a/p_b/t_a/t_b are (N, D) views; z/z_online/z_target are (N, K, D) stacked views;
cov_prev is a (D, D) running state; logit_scale is a learnable scalar.
"""

import inspect

import pytest
import torch

from sslscope.losses import LOSS_MODULES, LOSS_TERMS, LOSSES, resolve_loss_kwargs
from sslscope.methods import METHODS


def positional_names(fn):
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def make_inputs(fn, n=5, k=3, d=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for name in positional_names(fn):
        if name in ("z", "z_online", "z_target"):
            x = torch.randn(n, k, d, generator=g, dtype=dtype)
        elif name == "cov_prev":
            a = torch.randn(d, d, generator=g, dtype=dtype)
            x = a @ a.T / d
        elif name == "logit_scale":
            x = torch.tensor(1.3, dtype=dtype)
        else:
            x = torch.randn(n, d, generator=g, dtype=dtype)
        inputs.append(x.requires_grad_(name != "cov_prev"))
    return inputs


def accepted(fn, kwargs):
    """Only the options ``fn`` takes (a loss module may hold more, e.g. CLIP's initial τ)."""
    names = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in names}


def scalar(result):
    return result[0] if isinstance(result, tuple) else result


def test_every_method_has_a_registered_loss_and_every_loss_a_method():
    assert {spec.loss for spec in METHODS.values()} == set(LOSSES)
    assert set(LOSS_TERMS) == set(LOSSES) and set(LOSS_MODULES) <= set(LOSSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_contract(name):
    fn = LOSSES[name]
    kwargs = accepted(LOSS_TERMS[name], resolve_loss_kwargs(name, {}))
    inputs = make_inputs(fn)
    before = [x.detach().clone() for x in inputs]
    loss = scalar(fn(*inputs))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [x.grad for x in inputs if x.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    for x, b in zip(inputs, before, strict=True):
        assert torch.equal(x.detach(), b), "an input was modified in place"
    assert torch.equal(scalar(fn(*inputs)), loss.detach()), "not deterministic"
    terms = LOSS_TERMS[name](*inputs, **kwargs)
    terms = terms[0] if isinstance(terms, tuple) else terms
    assert terms and torch.allclose(sum(terms.values()), loss, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_shapes_are_a_value_error(name):
    fn = LOSSES[name]
    inputs = make_inputs(fn)
    broken = list(inputs)
    if len(broken) == 1 or broken[1].ndim == 0:
        broken[0] = broken[0][:, 0]  # a stacked (N, K, D) input given as (N, D)
    else:
        broken[1] = broken[1][:, :-1]  # second input with a different D
    with pytest.raises(ValueError):
        fn(*broken)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck(name):
    overrides = {"beta": 1.0} if "beta" in resolve_loss_kwargs(name, {}) else {}
    fn = LOSSES[name]
    kwargs = accepted(fn, resolve_loss_kwargs(name, overrides))  # beta=1: nothing detached
    inputs = make_inputs(fn, n=4, k=2, d=3, seed=1)
    scalar(fn(*inputs, **kwargs)).backward()
    # Stop-gradient inputs (BYOL's targets, SimSiam's z) are held fixed: their analytic
    # gradient is zero by the method's definition, and the test above checks that.
    varied = [i for i, x in enumerate(inputs) if x.grad is not None]

    def loss_of(*xs):
        full = [x.detach() for x in inputs]
        for i, x in zip(varied, xs, strict=True):
            full[i] = x
        return scalar(fn(*full, **kwargs))

    points = tuple(inputs[i].detach().requires_grad_() for i in varied)
    assert torch.autograd.gradcheck(loss_of, points)


@pytest.mark.parametrize("name", sorted(LOSS_MODULES))
def test_loss_modules_round_trip_their_state(name):
    kwargs = resolve_loss_kwargs(name, {})
    module = LOSS_MODULES[name](4, **kwargs).double()
    z_a, z_b = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    first = module(z_a, z_b)
    copy = LOSS_MODULES[name](4, **kwargs).double()
    copy.load_state_dict(module.state_dict())
    assert torch.equal(copy(z_a, z_b), module(z_a, z_b))
    terms = module.terms(z_a, z_b)
    assert torch.isfinite(first) and set(terms) and all(torch.isfinite(v) for v in terms.values())
