"""Objectives against their references, analytic values, properties and gradients."""

import math

import pytest
import torch

from sslscope.errors import UserError
from sslscope.icon.table import supcon_out_loss
from sslscope.losses import (
    LOSSES,
    covariance,
    loss_defaults,
    nt_xent_loss,
    off_diagonal,
    resolve_loss_kwargs,
    standardize,
    vicreg_loss,
)
from tests.reference.nt_xent_paper import nt_xent_paper
from tests.reference.vicreg_official import vicreg_official

SHAPES = [(2, 3), (7, 5), (16, 16), (33, 9), (9, 40)]  # odd N and D, N < D and N > D


def pair(n, d, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("n,d", SHAPES)
def test_vicreg_matches_official_code(n, d):
    z_a, z_b = pair(n, d)
    z_a = z_a * 0.3  # put some dimensions under the variance hinge, some over
    assert torch.allclose(vicreg_loss(z_a, z_b), vicreg_official(z_a, z_b), atol=1e-10)
    ours = vicreg_loss(z_a, z_b, inv_weight=3.0, var_weight=7.0, cov_weight=0.5)
    assert torch.allclose(ours, vicreg_official(z_a, z_b, 3.0, 7.0, 0.5), atol=1e-10)


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.7])
def test_nt_xent_matches_paper_definition(n, d, temperature):
    z_a, z_b = pair(n, d, seed=n + d)
    expected = nt_xent_paper(z_a.numpy(), z_b.numpy(), temperature)
    loss = nt_xent_loss(z_a, z_b, temperature=temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- analytic values


@pytest.mark.parametrize("n", [2, 5, 64])
def test_nt_xent_of_collinear_embeddings_is_log_2n_minus_1(n):
    direction = torch.randn(1, 6, dtype=torch.float64)
    scales = torch.rand(n, 1, dtype=torch.float64) + 0.1  # positive scales: all cosines are 1
    z = direction * scales
    for temperature in (0.1, 0.5, 2.0):
        loss = nt_xent_loss(z, z.flip(0), temperature=temperature)
        assert loss.item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)


def test_vicreg_is_zero_on_whitened_identical_views():
    n, d = 50, 8
    x = torch.randn(n, d, dtype=torch.float64)
    q, _ = torch.linalg.qr(x - x.mean(0))  # centred orthonormal columns
    z = math.sqrt(n - 1) * q  # unit variance per dimension, zero covariance
    assert torch.allclose(covariance(z), torch.eye(d, dtype=torch.float64), atol=1e-12)
    assert vicreg_loss(z, z.clone()).item() == pytest.approx(0.0, abs=1e-12)


def test_vicreg_hand_computed_case():
    # N = 2, D = 1: z_a = [0, 2], z_b = [0, 0].  mse = (0 + 4)/2 = 2.
    # Var(z_a) = 2 (unbiased), std = sqrt(2 + 1e-4) > 1 -> hinge 0; Var(z_b) = 0 -> hinge
    # 1 - sqrt(1e-4) = 0.99.  variance term = (0 + 0.99)/2.  D = 1: no off-diagonal.
    z_a = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    z_b = torch.zeros(2, 1, dtype=torch.float64)
    assert vicreg_loss(z_a, z_b).item() == pytest.approx(25 * 2 + 25 * 0.99 / 2, rel=1e-12)


def test_off_diagonal_and_standardize():
    m = torch.arange(9.0).view(3, 3)
    assert off_diagonal(m).tolist() == [1, 2, 3, 5, 6, 7]
    z = torch.randn(100, 4, dtype=torch.float64) * 3 + 5
    s = standardize(z, eps=0.0)
    assert torch.allclose(s.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(s.pow(2).mean(0), torch.ones(4, dtype=torch.float64), atol=1e-12)
    bn = torch.nn.BatchNorm1d(4, affine=False).double().train()
    assert torch.allclose(standardize(z), bn(z), atol=1e-12)


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("name", ["nt_xent", "vicreg"])
def test_symmetric_in_the_two_views(name):
    z_a, z_b = pair(11, 6)
    assert torch.allclose(LOSSES[name](z_a, z_b), LOSSES[name](z_b, z_a), atol=1e-12)


def test_nt_xent_invariant_to_positive_row_scaling():
    z_a, z_b = pair(9, 5)
    scale = torch.rand(9, 1, dtype=torch.float64) * 10 + 0.01
    assert torch.allclose(nt_xent_loss(z_a, z_b), nt_xent_loss(z_a * scale, z_b), atol=1e-12)


def test_vicreg_invariant_to_a_common_shift():
    z_a, z_b = pair(9, 5)
    shift = torch.randn(1, 5, dtype=torch.float64) * 4
    assert torch.allclose(vicreg_loss(z_a, z_b), vicreg_loss(z_a + shift, z_b + shift), atol=1e-10)


@pytest.mark.parametrize("n,views", [(5, 3), (4, 4), (7, 2)])
def test_multiview_nt_xent_is_supcon_with_the_image_as_label(n, views):
    v = [torch.randn(n, 6, dtype=torch.float64) for _ in range(views)]
    expected = supcon_out_loss(torch.cat(v), torch.arange(n).repeat(views), temperature=0.3)
    assert torch.allclose(nt_xent_loss(*v, temperature=0.3), expected, atol=1e-12)


def test_resolve_loss_kwargs_fills_defaults_and_rejects_unknown_keys():
    assert resolve_loss_kwargs("vicreg", {"inv_weight": 10}) == {
        **loss_defaults("vicreg"), "inv_weight": 10.0,
    }
    with pytest.raises(UserError, match="no option 'lambda'"):
        resolve_loss_kwargs("vicreg", {"lambda": 1.0})
    with pytest.raises(UserError, match="must be a float"):
        resolve_loss_kwargs("nt_xent", {"temperature": "hot"})
    with pytest.raises(UserError, match="unknown method .nope.; choose one of: vicreg"):
        resolve_loss_kwargs("nope", {})


def test_nt_xent_rejects_non_positive_temperature():
    z_a, z_b = pair(3, 2)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z_a, z_b, temperature=0.0)


@pytest.mark.parametrize("n,d", [(8, 3), (8, 8), (8, 9), (5, 64), (64, 300)])
def test_vicreg_covariance_through_the_gram_matrix_equals_the_d_by_d_form(n, d):
    """At D > N the covariance term comes from the N×N Gram matrix: equal to float64 rounding,
    in value and gradient, to the official code's D×D form."""
    from sslscope.losses._terms import covariance, off_diagonal
    from sslscope.losses.vicreg import covariance_offdiag

    z = (torch.randn(n, d, dtype=torch.float64) * torch.linspace(0.1, 3, d) + 2).requires_grad_()
    ours = covariance_offdiag(z)
    reference = off_diagonal(covariance(z)).pow(2).sum() / d
    (g_ours,) = torch.autograd.grad(ours, z)
    (g_ref,) = torch.autograd.grad(reference, z)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-14)
