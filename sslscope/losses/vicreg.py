"""VICReg: variance, invariance and covariance regularisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.losses._terms import center, check_pair, covariance, off_diagonal
from sslscope.methods import Method


def variance_hinge(z: Tensor, *, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    r"""Mean hinge on the per-dimension standard deviation.

        v(Z) = (1/D) Σ_j max(0, γ − √(Var(z^j) + ε)),   Var unbiased (torch.var default)

    Args:
        z: shape (N, D).

    Returns:
        Scalar tensor.
    """
    std = torch.sqrt(center(z).var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_offdiag(z: Tensor) -> Tensor:
    r"""Sum of squared off-diagonal covariances divided by D: c(Z) = (1/D) Σ_{i≠j} Cov(Z)_ij².

    When D > N the same value comes from the N×N Gram matrix of the centred batch Z̃, in
    O(N²D) instead of O(ND²) (VICReg's projector is 8192 wide at batch 256):

        Σ_{i≠j} Cov_ij² = ‖Cov‖²_F − Σ_j Cov_jj²,   ‖Cov‖²_F = ‖Z̃ Z̃ᵀ‖²_F / (N − 1)²

    since ‖Z̃ᵀZ̃‖²_F = tr(Z̃ᵀZ̃ Z̃ᵀZ̃) = ‖Z̃Z̃ᵀ‖²_F. The subtraction loses nothing there: Cov has
    rank < N < D, so its off-diagonal part is at least (tr Cov)²(1/(N − 1) − 1/D) and never
    small next to the diagonal. At D ≤ N it is the official code's D×D form
    (facebookresearch/vicreg, main_vicreg.py, ``off_diagonal(cov_x).pow_(2).sum()``). The two
    are equal to float64 rounding (tests/test_losses_redundancy.py).

    Args:
        z: shape (N, D).

    Returns:
        Scalar tensor.
    """
    n, d = z.shape
    if d <= n:
        return off_diagonal(covariance(z)).pow(2).sum() / d
    zc = center(z)
    squares = (zc @ zc.T).pow(2).sum() / (n - 1) ** 2  # ‖Cov‖²_F through the Gram matrix
    diagonal = zc.pow(2).sum(0) / (n - 1)  # (D,) the variances
    return (squares - diagonal.pow(2).sum()) / d


def vicreg_terms(
    z_a: Tensor,
    z_b: Tensor,
    *,
    inv_weight: float,
    var_weight: float,
    cov_weight: float,
    gamma: float,
    eps: float,
) -> dict[str, Tensor]:
    """The three weighted VICReg terms; they sum to :func:`vicreg_loss` (same arguments)."""
    check_pair(z_a, z_b)
    var_a = variance_hinge(z_a, gamma=gamma, eps=eps)
    var = (var_a + variance_hinge(z_b, gamma=gamma, eps=eps)) / 2
    return {
        "invariance": inv_weight * F.mse_loss(z_a, z_b),
        "variance": var_weight * var,
        "covariance": cov_weight * (covariance_offdiag(z_a) + covariance_offdiag(z_b)),
    }


def vicreg_loss(
    z_a: Tensor,
    z_b: Tensor,
    *,
    inv_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    r"""VICReg loss in the official code's normalisation.

        L = λ · mean_{n,d}(z_a − z_b)²                     (F.mse_loss: also averaged over D)
          + μ · [v(Z_a) + v(Z_b)] / 2                      (the code halves the pair)
          + ν · [c(Z_a) + c(Z_b)]

    with v the standard-deviation hinge (:func:`variance_hinge`, unbiased variance, ε inside the
    square root) and c the off-diagonal covariance penalty (:func:`covariance_offdiag`, divided
    by D, unbiased covariance).

    Args:
        z_a, z_b: projector outputs of the two views, shape (N, D), N ≥ 2. Used raw: no
            normalisation happens here (VICReg's variance hinge needs the raw scale).
        inv_weight: λ, 25 in the paper and code.
        var_weight: μ, 25 in the paper and code.
        cov_weight: ν, 1 in the paper and code.
        gamma: target standard deviation γ, 1.
        eps: ε inside the square root, 1e-4 as in the code.

    Returns:
        Scalar tensor. Single-process semantics: the official code gathers z across GPUs before
        v and c; the caller does that if needed.

    Deviations from the paper: the paper writes s as a sum over D; the code (followed here)
    averages over D, and the defaults λ = μ = 25 go with the code's normalisation.

    References:
        Bardes, Ponce & LeCun, "VICReg", ICLR 2022, arXiv:2105.04906.
        facebookresearch/vicreg@4e12602, main_vicreg.py, VICReg.forward.
    """
    terms = vicreg_terms(
        z_a, z_b, inv_weight=inv_weight, var_weight=var_weight, cov_weight=cov_weight,
        gamma=gamma, eps=eps,
    )
    return sum(terms.values())


METHODS = [
    Method("vicreg", "VICReg: variance, invariance, covariance (Bardes et al. 2022)",
           vicreg_loss, vicreg_terms),
]
