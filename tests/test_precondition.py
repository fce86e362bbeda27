"""The eigen-preconditioned embedding gradient (the stepwise paper's speed-up, methods.md §1.6a).

References: the closed-form preconditioned dynamics ė = 8λ e (1 − e) / (e + ε) integrated by
hand (:func:`sslscope.theory.stepwise.time_to_reach`), and the definition P = (C₊ + εI)⁻¹
applied to ∂L/∂Z, computed here in NumPy.
"""

import numpy as np
import pytest
import torch

from sslscope import config as config_lib
from sslscope.errors import UserError
from sslscope.losses import METHODS, barlow_twins_linear_loss
from sslscope.precondition import applies_to, eigen_precondition, preconditioner
from sslscope.theory.stepwise import (
    eigenpairs,
    gradient_descent,
    pair_cross_correlation,
    step_times,
    time_to_reach,
)
from tests.test_theory import D, M, N, crossing_times


@pytest.fixture(scope="module")
def gamma():
    rng = np.random.default_rng(0)
    scales = np.concatenate([[1.0, 0.8, 0.62, 0.48], np.geomspace(0.2, 0.05, M - 4)])
    x = rng.standard_normal((N, M)) * scales
    return pair_cross_correlation(x, x + 0.3 * rng.standard_normal((N, M)) * scales)


def test_preconditioner_is_the_inverse_of_the_clamped_cross_correlation():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    c = (a.T @ b + b.T @ a) / 100
    vals, vecs = np.linalg.eigh(c)
    assert (vals < 0).any()  # the clamp is exercised
    expected = np.linalg.inv(vecs @ np.diag(np.maximum(vals, 0) + 0.1) @ vecs.T)
    p = preconditioner(torch.from_numpy(a), torch.from_numpy(b), 0.1).numpy()
    assert np.allclose(p, expected, atol=1e-12)
    assert np.linalg.eigvalsh(p).min() > 0
    with pytest.raises(ValueError, match="positive"):
        preconditioner(torch.from_numpy(a), torch.from_numpy(b), 0.0)


def test_forward_is_the_identity_and_the_weight_gradient_is_p_times_the_plain_one():
    """In f(x) = Wx the preconditioned ∂L/∂Z gives ∂L/∂W = P ∇_W L, what the theory assumes."""
    rng = np.random.default_rng(4)
    x, x2 = rng.standard_normal((64, 10)), rng.standard_normal((64, 10))
    w = torch.tensor(rng.standard_normal((3, 10)) * 0.3, requires_grad=True)
    xa, xb = torch.from_numpy(x), torch.from_numpy(x2)
    plain = torch.autograd.grad(barlow_twins_linear_loss(xa @ w.T, xb @ w.T), w)[0]
    za, zb = xa @ w.T, xb @ w.T
    pa, pb = eigen_precondition(za, zb, eps=0.05)
    assert torch.equal(pa, za) and torch.equal(pb, zb)
    loss = barlow_twins_linear_loss(pa, pb)
    assert loss == barlow_twins_linear_loss(za, zb)  # the loss is unchanged
    grad = torch.autograd.grad(loss, w)[0]
    p = preconditioner(za, zb, 0.05)
    assert torch.allclose(grad, p @ plain, atol=1e-12)


def test_aligned_preconditioned_descent_follows_its_closed_form(gamma):
    lam, vecs = eigenpairs(gamma)
    s0, eps, lr = 1e-3, 0.1, 1e-4
    predicted = step_times(lam[:D], s0, precondition=eps)
    plain = step_times(lam[:D], s0)
    assert np.all(predicted < plain / 3)  # the wait ln(1/e0) shrinks by about ε
    t, measured, _ = gradient_descent(s0 * vecs[:, :D].T, gamma, lr=lr, record_every=5,
                                      steps=int(1.3 * predicted.max() / lr), precondition=eps)
    assert np.allclose(crossing_times(t, measured), predicted, rtol=0.02)


def test_time_to_reach_inverts_the_plain_logistic_and_reduces_at_the_start():
    lam, s0 = np.array([1.0, 0.3]), 0.02
    e0 = lam * s0**2
    assert np.allclose(np.diag(time_to_reach(e0, lam, s0, precondition=0.1)), 0.0, atol=1e-12)
    levels = np.array([0.1, 0.5, 0.9])
    from sslscope.theory.stepwise import embedding_eigenvalues
    for j in range(2):
        t = time_to_reach(levels, lam, s0)[:, j]
        assert np.allclose(embedding_eigenvalues(t, lam, s0)[:, j], levels)
    # Monotone in the level, with and without the preconditioner.
    assert np.all(np.diff(time_to_reach(levels, lam, s0, precondition=0.3), axis=0) > 0)


@pytest.mark.parametrize("name", list(METHODS))
def test_applies_exactly_to_the_two_view_methods_that_read_both_zs(name):
    expected = name in {"vicreg", "nt_xent", "barlow_twins", "barlow_twins_linear", "tico",
                        "vicreg_tico", "icon"}
    assert applies_to(METHODS[name], 2) is expected
    cfg = config_lib.replace(config_lib.Config(), method=name, precondition=0.1,
                             n_views=METHODS[name].views or 2)
    if expected:
        config_lib.validate(cfg)
    else:
        with pytest.raises(UserError, match=f"does not apply to {name}"):
            config_lib.validate(cfg)
    with pytest.raises(UserError, match="precondition must be ≥ 0"):
        config_lib.validate(config_lib.replace(config_lib.Config(), precondition=-0.1))
