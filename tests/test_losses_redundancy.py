"""Barlow Twins (official and stepwise forms), TiCo and the VICReg–TiCo hybrid.

References, analytic values, properties, gradients, the β = 0 reduction to VICReg, and the
modules that keep the running covariance in a buffer.
"""

import io
import math

import pytest
import torch

from sslscope.losses.barlow_twins import (
    barlow_twins_linear_loss,
    barlow_twins_linear_terms,
    barlow_twins_loss,
    barlow_twins_terms,
)
from sslscope.losses.tico import (
    TiCoLoss,
    VICRegTiCoLoss,
    tico_step,
    tico_terms,
    vicreg_tico_step,
    vicreg_tico_terms,
)
from sslscope.losses.vicreg import vicreg_loss
from tests.reference.barlow_twins_official import barlow_twins_linear_paper, barlow_twins_official
from tests.reference.tico_reference import LightlyTiCoLoss, sayannag_tico

F64 = torch.float64
SHAPES = [(2, 3), (7, 5), (16, 16), (33, 9), (9, 40)]  # odd N and D, N < D and N > D
HYBRID_OPTIONS = [
    {"cov_embedding": "raw", "offdiag_only": True},
    {"cov_embedding": "raw", "offdiag_only": False},
    {"cov_embedding": "l2", "offdiag_only": True},
    {"cov_embedding": "l2", "offdiag_only": False},
]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def pair(n, d, seed=0):
    g = gen(seed)
    return torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, d, generator=g, dtype=F64)


def psd(d, seed=1):
    """A fixed symmetric positive semi-definite (D, D) state, as a running covariance would be."""
    a = torch.randn(d, d, generator=gen(seed), dtype=F64)
    return a @ a.T / d


def loss_only(step, cov_prev, **kwargs):
    return lambda z_a, z_b: step(z_a, z_b, cov_prev, **kwargs)[0]


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("n,d", SHAPES)
def test_barlow_twins_matches_official_code(n, d):
    z_a, z_b = pair(n, d)
    z_a = 3 * z_a + 1  # the standardisation must take scale and shift out
    assert torch.allclose(barlow_twins_loss(z_a, z_b), barlow_twins_official(z_a, z_b), atol=1e-10)
    ours = barlow_twins_loss(z_a, z_b, offdiag_weight=0.3)
    assert torch.allclose(ours, barlow_twins_official(z_a, z_b, lambd=0.3), atol=1e-10)


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("offdiag_weight", [1.0, 0.3])
def test_barlow_twins_linear_matches_paper_definition(n, d, offdiag_weight):
    z_a, z_b = pair(n, d, seed=3)
    ours = barlow_twins_linear_loss(z_a, z_b, offdiag_weight=offdiag_weight)
    expected = barlow_twins_linear_paper(z_a.numpy(), z_b.numpy(), offdiag_weight)
    assert ours.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("n,d", SHAPES)
def test_tico_matches_lightly_over_several_steps(n, d):
    reference, cov = LightlyTiCoLoss(beta=0.7, rho=8.0), torch.zeros(d, d, dtype=F64)
    for step in range(3):
        z_a, z_b = pair(n, d, seed=10 + step)
        z_a.requires_grad_(True)
        ref_a = z_a.detach().clone().requires_grad_(True)
        loss, cov = tico_step(z_a, z_b, cov, beta=0.7, rho=8.0)
        ref_loss = reference(ref_a, z_b)
        assert torch.allclose(loss, ref_loss, atol=1e-10)
        assert torch.allclose(cov, reference.C, atol=1e-12)
        loss.backward()
        ref_loss.backward()
        assert torch.allclose(z_a.grad, ref_a.grad, atol=1e-10)  # both detach B


@pytest.mark.parametrize("n,d", SHAPES)
def test_tico_matches_sayannag_up_to_the_constant_and_the_gradient_through_b(n, d):
    z_a, z_b = pair(n, d, seed=4)
    cov_prev = psd(d)
    for beta in (0.0, 0.9, 1.0):
        loss, cov = tico_step(z_a, z_b, cov_prev, beta=beta, rho=8.0)
        ref_loss, ref_cov = sayannag_tico(cov_prev, z_a, z_b, beta=beta, rho=8.0)
        assert torch.allclose(loss, ref_loss + 1, atol=1e-10)  # "1 − mean cos" vs "− mean cos"
        assert torch.allclose(cov, ref_cov, atol=1e-12)

    def grad(fn, beta):
        z = z_a.clone().requires_grad_(True)
        return torch.autograd.grad(fn(z, beta), z)[0]

    def ours(z, beta):
        return tico_step(z, z_b, cov_prev, beta=beta)[0]

    def theirs(z, beta):
        return sayannag_tico(cov_prev, z, z_b, beta=beta, rho=8.0)[0]

    assert torch.allclose(grad(ours, 1.0), grad(theirs, 1.0), atol=1e-10)  # B plays no part
    assert not torch.allclose(grad(ours, 0.9), grad(theirs, 0.9), atol=1e-6)


# ---------------------------------------------------------------- analytic values


def test_barlow_twins_vanishes_on_identical_decorrelated_views():
    n, d, eps = 50, 8, 1e-5
    x = torch.randn(n, d, generator=gen(0), dtype=F64)
    q = torch.linalg.qr(x - x.mean(0))[0]  # (N, D), centred orthonormal columns
    z = math.sqrt(n) * q  # biased variance 1, zero correlation
    # ẑ = z / √(1 + ε), so C = I / (1 + ε) and L = D (ε / (1 + ε))² ≈ 1e-9: zero up to BN's ε.
    expected = d * (eps / (1 + eps)) ** 2
    assert barlow_twins_loss(z, z.clone()).item() == pytest.approx(expected, rel=1e-8)
    assert barlow_twins_loss(z, z.clone(), eps=0.0).item() == pytest.approx(0.0, abs=1e-12)


def test_barlow_twins_hand_computed_case():
    # Columns: z_a = [[1, 3], [-1, 1]] standardises to ±s1 in both; z_b = [[2, 0], [0, 5]] to
    # (+s1, -s1) and (-s2, +s2), s1 = 1/√(1+ε), s2 = 2.5/√(6.25+ε).
    # C = ẑ_aᵀẑ_b / 2 = [[s1², -s1 s2], [s1², -s1 s2]].
    z_a = torch.tensor([[1.0, 3.0], [-1.0, 1.0]], dtype=F64)
    z_b = torch.tensor([[2.0, 0.0], [0.0, 5.0]], dtype=F64)
    for eps in (0.0, 1e-5):
        s1, s2 = 1 / math.sqrt(1 + eps), 2.5 / math.sqrt(6.25 + eps)
        on, off = (1 - s1**2) ** 2 + (1 + s1 * s2) ** 2, s1**4 + (s1 * s2) ** 2
        terms = barlow_twins_terms(z_a, z_b, offdiag_weight=0.0051, eps=eps)
        assert terms["on_diagonal"].item() == pytest.approx(on, rel=1e-12)
        assert terms["off_diagonal"].item() == pytest.approx(0.0051 * off, rel=1e-12)
    assert barlow_twins_loss(z_a, z_b, eps=0.0).item() == pytest.approx(4 + 2 * 0.0051, rel=1e-12)


def test_barlow_twins_linear_vanishes_on_whitened_identical_views():
    n, d = 40, 6
    q = torch.linalg.qr(torch.randn(n, d, generator=gen(5), dtype=F64))[0]
    z = math.sqrt(n) * q  # zᵀz / N = I (not centred: the linear form does not centre)
    assert torch.allclose(z.T @ z / n, torch.eye(d, dtype=F64), atol=1e-12)
    assert barlow_twins_linear_loss(z, z.clone()).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("d", [1, 4, 17])
def test_barlow_twins_linear_staircase_starts_at_d(d):
    z = torch.zeros(5, d, dtype=F64)  # W = 0
    for offdiag_weight in (1.0, 0.0051):
        assert barlow_twins_linear_loss(z, z, offdiag_weight=offdiag_weight).item() == d


def test_barlow_twins_linear_hand_computed_case():
    # z_a = I, z_b = swap: z_aᵀz_b = z_bᵀz_a = [[0, 1], [1, 0]], C = that / 2.
    # on-diagonal 1 + 1 = 2; off-diagonal λ (1/4 + 1/4).
    z_a = torch.eye(2, dtype=F64)
    z_b = z_a.flip(0)
    assert barlow_twins_linear_loss(z_a, z_b).item() == pytest.approx(2.5, rel=1e-12)
    terms = barlow_twins_linear_terms(z_a, z_b, offdiag_weight=0.2)
    assert terms["on_diagonal"].item() == pytest.approx(2.0, rel=1e-12)
    assert terms["off_diagonal"].item() == pytest.approx(0.1, rel=1e-12)


def test_barlow_twins_linear_gradient_is_the_stepwise_flow():
    # Linear model z = W x: C = W Γ Wᵀ and ∇_W L = 4 (W Γ Wᵀ − I) W Γ (methods.md §1.1).
    n, m, d = 30, 7, 3
    g = gen(6)
    x_a, x_b = torch.randn(n, m, generator=g, dtype=F64), torch.randn(n, m, generator=g, dtype=F64)
    w = (0.3 * torch.randn(d, m, generator=g, dtype=F64)).requires_grad_(True)
    loss = barlow_twins_linear_loss(x_a @ w.T, x_b @ w.T)
    (grad,) = torch.autograd.grad(loss, w)
    gamma = (x_a.T @ x_b + x_b.T @ x_a) / (2 * n)
    w = w.detach()
    expected = 4 * (w @ gamma @ w.T - torch.eye(d, dtype=F64)) @ w @ gamma
    assert torch.allclose(grad, expected, atol=1e-12)


@pytest.mark.parametrize("n,d", [(2, 4), (3, 5), (8, 8)])
def test_tico_covariance_term_on_orthonormal_rows_is_rho_over_n(n, d):
    q = torch.linalg.qr(torch.randn(d, n, generator=gen(n), dtype=F64))[0].T  # (N, D), rows ⟂
    scale = torch.rand(n, 1, generator=gen(1), dtype=F64) + 0.5  # normalised away inside
    z_a, z_b = q * scale, q * scale.flip(0)
    terms, cov = tico_terms(z_a, z_b, torch.zeros(d, d, dtype=F64), beta=0.0, rho=8.0)
    assert terms["covariance"].item() == pytest.approx(8.0 / n, rel=1e-12)
    assert terms["invariance"].item() == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(cov, q.T @ q / n, atol=1e-12)


def test_tico_hand_computed_case():
    # u_a = e1, e2; u_b = (1, 1)/√2, (0, −1): cosines 1/√2 and −1.
    # B = I/2; β = 0.5, C_prev = 0: C_t = I/4, so u_aᵀ C_t u_a = 1/4 and ρ = 8 gives 2.
    z_a = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    z_b = torch.tensor([[1.0, 1.0], [0.0, -1.0]], dtype=F64)
    loss, cov = tico_step(z_a, z_b, torch.zeros(2, 2, dtype=F64), beta=0.5)
    assert loss.item() == pytest.approx(1 - (1 / math.sqrt(2) - 1) / 2 + 2.0, rel=1e-12)
    assert torch.allclose(cov, torch.eye(2, dtype=F64) / 4, atol=1e-15)
    # β = 1 keeps the state; C_prev = I adds ρ · mean ‖u‖² = ρ.
    loss, cov = tico_step(z_a, z_b, torch.eye(2, dtype=F64), beta=1.0)
    assert loss.item() == pytest.approx(1 - (1 / math.sqrt(2) - 1) / 2 + 8.0, rel=1e-12)
    assert torch.equal(cov, torch.eye(2, dtype=F64))


def test_vicreg_tico_hand_computed_case():
    # z = [[1, 0], [0, 1], [-1, -1]] is centred; Cov = [[1, .5], [.5, 1]] (N − 1 = 2), std > 1,
    # so invariance and variance vanish. β = 0.5, C_prev = [[0, 1], [1, 0]]:
    # C_a off-diagonal = .5·1 + .5·.5 = .75; c_t = (1/2)·2·.75·(.5 − .375) = .09375 per view,
    # times 2 views times ν_h = 2 gives .375. New state = .5 C_prev + .5 Cov.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], dtype=F64)
    cov_prev = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
    loss, cov = vicreg_tico_step(z, z.clone(), cov_prev, beta=0.5)
    assert loss.item() == pytest.approx(0.375, rel=1e-12)
    assert torch.allclose(cov, torch.tensor([[0.5, 0.75], [0.75, 0.5]], dtype=F64), atol=1e-15)


# ---------------------------------------------------------------- β = 0 hybrid is VICReg


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("nu", [1.0, 0.3])
def test_vicreg_tico_at_beta_zero_is_vicreg_in_loss_and_gradient(n, d, nu):
    z_a, z_b = pair(n, d, seed=7)
    z_a = (0.5 * z_a).requires_grad_(True)  # some dimensions under the hinge
    z_b = z_b.requires_grad_(True)
    for cov_prev in (torch.zeros(d, d, dtype=F64), psd(d)):  # the past plays no part at β = 0
        hybrid, _ = vicreg_tico_step(z_a, z_b, cov_prev, beta=0.0, cov_weight=2 * nu)
        vicreg = vicreg_loss(z_a, z_b, cov_weight=nu)
        assert torch.allclose(hybrid, vicreg, atol=1e-10)
        got, want = torch.autograd.grad(hybrid, (z_a, z_b)), torch.autograd.grad(vicreg, (z_a, z_b))
        for g_h, g_v in zip(got, want, strict=True):
            assert torch.allclose(g_h, g_v, atol=1e-10)


def test_vicreg_tico_with_memory_differs_from_vicreg():
    z_a, z_b = pair(9, 5, seed=8)
    z_a.requires_grad_(True)
    hybrid, _ = vicreg_tico_step(z_a, z_b, psd(5), beta=0.5)
    vicreg = vicreg_loss(z_a, z_b)
    assert not torch.allclose(hybrid, vicreg, atol=1e-3)
    g_h, g_v = torch.autograd.grad(hybrid, z_a)[0], torch.autograd.grad(vicreg, z_a)[0]
    assert not torch.allclose(g_h, g_v, atol=1e-3)


def test_vicreg_tico_l2_full_gradient_is_ticos_covariance_contrast():
    # With "l2" and the diagonal, each view's term has TiCo's gradient (scaled ν_h/D vs ρ).
    n, d, beta = 7, 5, 0.6
    z_a, z_b = pair(n, d, seed=9)
    cov_prev = psd(d)
    z = z_a.clone().requires_grad_(True)
    terms, _ = vicreg_tico_terms(
        z, z_b, cov_prev, inv_weight=0.0, var_weight=0.0, cov_weight=1.0, beta=beta,
        offdiag_only=False, cov_embedding="l2", gamma=1.0, eps=1e-4,
    )
    g_hybrid = torch.autograd.grad(terms["covariance"], z)[0] * d
    z = z_a.clone().requires_grad_(True)
    tico_covariance = tico_terms(z, z_b, cov_prev, beta=beta, rho=1.0)[0]["covariance"]
    assert torch.allclose(g_hybrid, torch.autograd.grad(tico_covariance, z)[0], atol=1e-12)


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("loss_fn", [barlow_twins_loss, barlow_twins_linear_loss])
def test_barlow_twins_forms_are_symmetric(loss_fn):
    z_a, z_b = pair(11, 6)
    assert torch.allclose(loss_fn(z_a, z_b), loss_fn(z_b, z_a), atol=1e-12)


def test_barlow_twins_invariant_to_per_dimension_affine_maps():
    z_a, z_b = pair(13, 6)
    g = gen(2)
    alpha = torch.rand(1, 6, generator=g, dtype=F64) * 10 + 0.1
    shift = torch.randn(1, 6, generator=g, dtype=F64) * 5
    for eps in (0.0, 1e-5):
        base = barlow_twins_loss(z_a, z_b, eps=eps)
        moved = barlow_twins_loss(alpha * z_a + shift, z_b - 2 * shift, eps=eps)
        assert torch.allclose(base, moved, atol=1e-10 if eps == 0 else 1e-3)
    # The linear form uses z raw, by design.
    assert not torch.allclose(
        barlow_twins_linear_loss(z_a, z_b), barlow_twins_linear_loss(alpha * z_a + shift, z_b)
    )


def test_tico_properties():
    z_a, z_b = pair(10, 4, seed=11)
    cov_prev = psd(4)
    scale_a = torch.rand(10, 1, generator=gen(3), dtype=F64) * 10 + 0.01
    scale_b = torch.rand(10, 1, generator=gen(4), dtype=F64) * 10 + 0.01
    loss, cov = tico_step(z_a, z_b, cov_prev)
    loss_s, cov_s = tico_step(z_a * scale_a, z_b * scale_b, cov_prev)
    assert torch.allclose(loss, loss_s, atol=1e-12) and torch.allclose(cov, cov_s, atol=1e-12)
    terms_ab = tico_terms(z_a, z_b, cov_prev, beta=0.9, rho=8.0)[0]
    terms_ba = tico_terms(z_b, z_a, cov_prev, beta=0.9, rho=8.0)[0]
    assert torch.allclose(terms_ab["invariance"], terms_ba["invariance"], atol=1e-12)
    assert not torch.allclose(terms_ab["covariance"], terms_ba["covariance"])  # z_a only
    other = tico_terms(z_a, torch.randn(10, 4, dtype=F64), cov_prev, beta=0.9, rho=8.0)[0]
    assert torch.equal(other["covariance"], terms_ab["covariance"])


def test_vicreg_tico_is_symmetric_and_shift_invariant_with_raw_covariance():
    z_a, z_b = pair(11, 6, seed=12)
    cov_prev = psd(6)
    loss, cov = vicreg_tico_step(z_a, z_b, cov_prev)
    loss_ba, cov_ba = vicreg_tico_step(z_b, z_a, cov_prev)
    assert torch.allclose(loss, loss_ba, atol=1e-12) and torch.allclose(cov, cov_ba, atol=1e-12)
    shift = torch.randn(1, 6, generator=gen(5), dtype=F64) * 4
    loss_s, cov_s = vicreg_tico_step(z_a + shift, z_b + shift, cov_prev)
    assert torch.allclose(loss, loss_s, atol=1e-10) and torch.allclose(cov, cov_s, atol=1e-10)


STEPS = [
    ("bt", lambda a, b, c: barlow_twins_loss(a, b)),
    ("bt_linear", lambda a, b, c: barlow_twins_linear_loss(a, b)),
    ("tico", lambda a, b, c: tico_step(a, b, c)),
    *[(f"hybrid_{i}", lambda a, b, c, o=o: vicreg_tico_step(a, b, c, **o))
      for i, o in enumerate(HYBRID_OPTIONS)],
]


@pytest.mark.parametrize("name,fn", STEPS)
def test_inputs_are_not_modified_in_place(name, fn):
    z_a, z_b = pair(6, 4, seed=13)
    cov_prev = psd(4)
    before = [t.clone() for t in (z_a, z_b, cov_prev)]
    fn(z_a, z_b, cov_prev)
    for t, b in zip((z_a, z_b, cov_prev), before, strict=True):
        assert torch.equal(t, b)


# ---------------------------------------------------------------- gradients


def test_gradcheck_barlow_twins():
    z_a, z_b = pair(4, 3, seed=14)
    inputs = (z_a.requires_grad_(True), z_b.requires_grad_(True))
    assert torch.autograd.gradcheck(barlow_twins_loss, inputs)
    assert torch.autograd.gradcheck(barlow_twins_linear_loss, inputs)


# The running covariance is detached, so at β < 1 autograd's gradient is by design not the
# finite-difference one (which also moves B_t). gradcheck runs at β = 1, where C_t = C_{t−1} is a
# fixed input; the next tests pin down what the detached gradient is at β < 1.


def test_gradcheck_tico():
    z_a, z_b = pair(4, 3, seed=15)
    inputs = (z_a.requires_grad_(True), z_b.requires_grad_(True))
    assert torch.autograd.gradcheck(loss_only(tico_step, psd(3), beta=1.0), inputs)


@pytest.mark.parametrize("options", HYBRID_OPTIONS)
def test_gradcheck_vicreg_tico(options):
    z_a, z_b = pair(4, 3, seed=16)
    inputs = (z_a.requires_grad_(True), z_b.requires_grad_(True))
    loss_fn = loss_only(vicreg_tico_step, psd(3), beta=1.0, **options)
    assert torch.autograd.gradcheck(loss_fn, inputs)


def test_tico_gradient_is_that_of_the_frozen_running_covariance():
    z_a, z_b = pair(6, 4, seed=18)
    z_a.requires_grad_(True)
    loss, cov_t = tico_step(z_a, z_b, psd(4), beta=0.6)
    frozen, _ = tico_step(z_a, z_b, cov_t, beta=1.0)  # the same loss with C_t as a constant
    assert torch.allclose(loss, frozen, atol=1e-12)
    g, g_frozen = torch.autograd.grad(loss, z_a)[0], torch.autograd.grad(frozen, z_a)[0]
    assert torch.allclose(g, g_frozen, atol=1e-12)


def test_vicreg_tico_covariance_gradient_closed_form():
    # raw, off-diagonal: ∇_{Z_a} ν_h c_t(Z_a) = ν_h · 2 / ((N − 1) D) · (Z_a − Z̄_a) · offdiag(C_a).
    n, d, beta, nu = 9, 5, 0.6, 2.0
    z_a, z_b = pair(n, d, seed=19)
    cov_prev = psd(d)
    z = z_a.clone().requires_grad_(True)
    terms, _ = vicreg_tico_terms(
        z, z_b, cov_prev, inv_weight=0.0, var_weight=0.0, cov_weight=nu, beta=beta,
        offdiag_only=True, cov_embedding="raw", gamma=1.0, eps=1e-4,
    )
    (grad,) = torch.autograd.grad(terms["covariance"], z)
    zc = z_a - z_a.mean(0)
    c_a = beta * cov_prev + (1 - beta) * zc.T @ zc / (n - 1)
    c_off = c_a - torch.diag(torch.diagonal(c_a))
    assert torch.allclose(grad, nu * 2 / ((n - 1) * d) * zc @ c_off, atol=1e-12)


# ---------------------------------------------------------------- terms and errors


def test_terms_sum_to_the_losses():
    z_a, z_b = pair(13, 7, seed=17)
    cov_prev = psd(7)
    terms = barlow_twins_terms(z_a, z_b, offdiag_weight=0.0051, eps=1e-5)
    assert torch.allclose(sum(terms.values()), barlow_twins_loss(z_a, z_b), atol=1e-12)
    terms = barlow_twins_linear_terms(z_a, z_b, offdiag_weight=1.0)
    assert torch.allclose(sum(terms.values()), barlow_twins_linear_loss(z_a, z_b), atol=1e-12)
    terms, cov = tico_terms(z_a, z_b, cov_prev, beta=0.9, rho=8.0)
    loss, cov_step = tico_step(z_a, z_b, cov_prev)
    assert torch.allclose(sum(terms.values()), loss, atol=1e-12) and torch.equal(cov, cov_step)
    kwargs = dict(inv_weight=25.0, var_weight=25.0, cov_weight=2.0, beta=0.9, offdiag_only=True,
                  cov_embedding="raw", gamma=1.0, eps=1e-4)
    terms, cov = vicreg_tico_terms(z_a, z_b, cov_prev, **kwargs)
    loss, cov_step = vicreg_tico_step(z_a, z_b, cov_prev)
    assert set(terms) == {"invariance", "variance", "covariance"}
    assert torch.allclose(sum(terms.values()), loss, atol=1e-12) and torch.equal(cov, cov_step)


def test_errors():
    z_a, z_b = pair(4, 3)
    cov_prev = torch.zeros(3, 3, dtype=F64)
    for fn in (barlow_twins_loss, barlow_twins_linear_loss):
        with pytest.raises(ValueError, match="same shape"):
            fn(z_a, z_b[:, :2])
    for step in (tico_step, vicreg_tico_step):
        with pytest.raises(ValueError, match="same shape"):
            step(z_a, z_b[:, :2], cov_prev)
        with pytest.raises(ValueError, match="cov_prev"):
            step(z_a, z_b, torch.zeros(2, 2, dtype=F64))
        with pytest.raises(ValueError, match="beta"):
            step(z_a, z_b, cov_prev, beta=1.5)
    with pytest.raises(ValueError, match="cov_embedding"):
        vicreg_tico_step(z_a, z_b, cov_prev, cov_embedding="normalize")
    with pytest.raises(TypeError):
        TiCoLoss(rho_param=8.0)


# ---------------------------------------------------------------- modules with state


MODULES = [
    (TiCoLoss, tico_step, {"beta": 0.7, "rho": 5.0}),
    (VICRegTiCoLoss, vicreg_tico_step, {"beta": 0.7, "cov_embedding": "l2"}),
]


@pytest.mark.parametrize("module,step,kwargs", MODULES)
@pytest.mark.parametrize("dim", [None, 5])
def test_module_state_follows_manual_chaining(module, step, kwargs, dim):
    loss_fn = module(dim, **kwargs).to(F64)
    cov = torch.zeros(5, 5, dtype=F64)
    for i in range(3):
        z_a, z_b = pair(8, 5, seed=20 + i)
        z_a.requires_grad_(True)
        loss = loss_fn(z_a, z_b)
        expected, cov = step(z_a, z_b, cov, **kwargs)
        assert torch.allclose(loss, expected, atol=1e-12)
        assert torch.allclose(loss_fn.cov, cov, atol=1e-12)
        loss.backward()  # the in-place buffer update must not break the graph
        assert torch.isfinite(z_a.grad).all()


@pytest.mark.parametrize("module,step,kwargs", MODULES)
def test_module_state_round_trips_through_state_dict(module, step, kwargs):
    trained = module(**kwargs)
    for i in range(2):
        trained(*pair(8, 5, seed=30 + i))
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    assert set(trained.state_dict()) == {"cov"}
    for fresh in (module(**kwargs), module(5, **kwargs).to(F64)):  # lazy, and sized up front
        buffer.seek(0)
        fresh.load_state_dict(torch.load(buffer))
        assert torch.equal(fresh.cov, trained.cov)
        z_a, z_b = pair(8, 5, seed=40)
        expected, _ = step(z_a, z_b, trained.cov, **kwargs)  # the next step from the saved state
        assert torch.allclose(fresh(z_a, z_b), expected, atol=1e-12)
    # lightly keeps C in an attribute: not checkpointed.
    lightly = LightlyTiCoLoss()
    lightly(*pair(8, 5))
    assert lightly.C is not None and lightly.state_dict() == {}


@pytest.mark.parametrize("module", [TiCoLoss, VICRegTiCoLoss])
def test_module_state_follows_to(module):
    sized = module(4)
    assert sized.cov.shape == (4, 4) and sized.cov.dtype == torch.float32
    assert sized.to(F64).cov.dtype == F64
    lazy = module()
    lazy(*[z.float() for z in pair(6, 4)])
    assert lazy.cov.dtype == torch.float32 and lazy.to(F64).cov.dtype == F64
    promoted = module().to(F64)  # state kept at least at the module's precision
    promoted(*[z.float() for z in pair(6, 4)])
    assert promoted.cov.dtype == F64


def test_vicreg_tico_module_at_beta_zero_is_vicreg():
    loss_fn = VICRegTiCoLoss(beta=0.0)
    for i in range(2):
        z_a, z_b = [z.float() for z in pair(16, 8, seed=50 + i)]
        assert torch.allclose(loss_fn(z_a, z_b), vicreg_loss(z_a, z_b), atol=1e-5)
    assert torch.isfinite(loss_fn.cov).all()


@pytest.mark.parametrize("n,d", [(8, 8), (8, 9), (5, 64), (64, 300)])
def test_barlow_twins_through_the_gram_matrices_equals_the_d_by_d_form(n, d):
    """At D > N the terms come from the N×N Gram matrices: equal to float64 rounding, in value
    and gradient, to C = ẑ_aᵀẑ_b / N of the official code."""
    from sslscope.losses._terms import cross_correlation, off_diagonal, standardize

    z_a = (torch.randn(n, d, dtype=torch.float64) * 2 + 1).requires_grad_()
    z_b = (z_a.detach() + torch.randn(n, d, dtype=torch.float64)).requires_grad_()
    terms = barlow_twins_terms(z_a, z_b, offdiag_weight=0.0051, eps=1e-5)
    c = cross_correlation(standardize(z_a), standardize(z_b))
    reference = {"on_diagonal": (1 - torch.diagonal(c)).pow(2).sum(),
                 "off_diagonal": 0.0051 * off_diagonal(c).pow(2).sum()}
    for key in reference:
        torch.testing.assert_close(terms[key], reference[key], rtol=1e-12, atol=1e-15)
        grads = torch.autograd.grad(terms[key], (z_a, z_b), retain_graph=True)
        expected = torch.autograd.grad(reference[key], (z_a, z_b), retain_graph=True)
        for g, e in zip(grads, expected, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-13)
