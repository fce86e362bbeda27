"""The contract every registered method keeps, parametrised over METHODS (timm's pattern).

Inputs come from each method's declared shapes (``Method.args``, built by
:func:`sslscope.methods.example_inputs`), never guessed from argument names: a record whose
declaration disagrees with its loss's signature does not register.
"""

import inspect

import pytest
import torch

from sslscope.losses import LOSSES, METHODS, register, resolve_loss_kwargs
from sslscope.methods import Method, example_inputs, parse_args

STATEFUL = sorted(name for name, m in METHODS.items() if m.module is not None)


def accepted(fn, kwargs):
    """Only the options ``fn`` takes (a loss module may hold more, e.g. CLIP's initial τ)."""
    names = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in names}


def scalar(result):
    return result[0] if isinstance(result, tuple) else result


def test_losses_is_derived_from_methods():
    assert list(LOSSES) == list(METHODS)
    assert all(LOSSES[name] is m.loss for name, m in METHODS.items())


@pytest.mark.parametrize("name", list(METHODS))
def test_contract(name):
    method = METHODS[name]
    fn = method.loss
    kwargs = accepted(method.terms, resolve_loss_kwargs(name, {}))
    inputs = example_inputs(method)
    before = [x.detach().clone() for x in inputs]
    loss = scalar(fn(*inputs))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [x.grad for x in inputs if x.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    for x, b in zip(inputs, before, strict=True):
        assert torch.equal(x.detach(), b), "an input was modified in place"
    assert torch.equal(scalar(fn(*inputs)), loss.detach()), "not deterministic"
    terms = scalar(method.terms(*inputs, **kwargs))
    assert terms and torch.allclose(sum(terms.values()), loss, atol=1e-10)


@pytest.mark.parametrize("name", list(METHODS))
def test_bad_shapes_are_a_value_error(name):
    method = METHODS[name]
    inputs = example_inputs(method)
    batch = [i for i, a in enumerate(method.arguments) if a.role == "batch"]
    if len(batch) == 1:
        inputs[0] = inputs[0][:, 0]  # a stacked (N, K, D) input given as (N, D)
    else:
        inputs[batch[1]] = inputs[batch[1]][..., :-1]  # second input with a different D
    with pytest.raises(ValueError):
        method.loss(*inputs)


@pytest.mark.parametrize("name", list(METHODS))
def test_gradcheck(name):
    method = METHODS[name]
    overrides = {"beta": 1.0} if "beta" in resolve_loss_kwargs(name, {}) else {}
    kwargs = accepted(method.loss, resolve_loss_kwargs(name, overrides))  # beta=1: no detach
    inputs = example_inputs(method, sizes={"N": 4, "K": 2, "D": 3}, seed=1)
    scalar(method.loss(*inputs, **kwargs)).backward()
    # Stop-gradient inputs (BYOL's targets, SimSiam's z) are held fixed: their analytic
    # gradient is zero by the method's definition, and the test above checks that.
    varied = [i for i, x in enumerate(inputs) if x.grad is not None]

    def loss_of(*xs):
        full = [x.detach() for x in inputs]
        for i, x in zip(varied, xs, strict=True):
            full[i] = x
        return scalar(method.loss(*full, **kwargs))

    points = tuple(inputs[i].detach().requires_grad_() for i in varied)
    assert torch.autograd.gradcheck(loss_of, points)


@pytest.mark.parametrize("name", STATEFUL)
def test_loss_modules_round_trip_their_state(name):
    method = METHODS[name]
    kwargs = resolve_loss_kwargs(name, {})
    batch = [x.detach() for x, a in zip(example_inputs(method, sizes={"N": 6}), method.arguments,
                                         strict=True) if a.role == "batch"]
    module = method.module(4, **kwargs).double()
    first = module(*batch)
    copy = method.module(4, **kwargs).double()
    copy.load_state_dict(module.state_dict())
    assert torch.equal(copy(*batch), module(*batch))
    terms = module.terms(*batch)
    assert torch.isfinite(first) and set(terms) and all(torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("declaration", ["D", "N D X", "state N D", "parameter N"])
def test_a_malformed_shape_declaration_is_refused(declaration):
    with pytest.raises(ValueError, match="bad shape"):
        parse_args({"z_a": declaration})


def _two_view_loss(z_a, z_b, *, weight=1.0):
    return weight * (z_a - z_b).pow(2).mean()


def test_a_record_that_disagrees_with_its_loss_does_not_register():
    wrong = Method("wrong_names", "", _two_view_loss, _two_view_loss, args={"p": "N D", "q": "N D"})
    with pytest.raises(ValueError, match="args declares"):
        register(wrong)
    held = Method("no_module", "", _two_view_loss, _two_view_loss,
                  args={"z_a": "N D", "z_b": "state D D"})
    with pytest.raises(ValueError, match="need a module"):
        register(held)
    with pytest.raises(ValueError, match="already registered"):
        register(METHODS["vicreg"])
    assert "wrong_names" not in METHODS and "no_module" not in METHODS


def test_example_inputs_follow_the_declaration():
    z_a, z_b, cov = example_inputs(METHODS["tico"], sizes={"N": 7, "D": 3})
    assert z_a.shape == z_b.shape == (7, 3) and z_a.requires_grad
    assert cov.shape == (3, 3) and not cov.requires_grad
    assert torch.allclose(cov, cov.T) and torch.linalg.eigvalsh(cov).min() >= -1e-12
    (z,) = example_inputs(METHODS["mmcr"], sizes={"N": 2, "K": 5, "D": 3})
    assert z.shape == (2, 5, 3)
    assert len(example_inputs(METHODS["nt_xent"], extra_views=2)) == 4
    *_, scale = example_inputs(METHODS["clip"])
    assert scale.ndim == 0 and scale.requires_grad
