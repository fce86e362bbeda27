"""Barlow Twins: pull the cross-correlation of the two views towards the identity.

Two forms live here:

- :func:`barlow_twins_loss`: the official form (batch-standardised embeddings, λ = 0.0051);
- :func:`barlow_twins_linear_loss`: the form used by the stepwise-learning theory (no
  standardisation, symmetrised second-moment matrix, λ = 1), whose gradient flow is solved in
  closed form by Simon et al. (2023).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sslscope.losses._terms import check_pair, cross_correlation, off_diagonal, standardize
from sslscope.methods import Method


def _identity_gap(c: Tensor, offdiag_weight: float) -> dict[str, Tensor]:
    """Σ_i (1 − C_ii)² and λ Σ_{i≠j} C_ij² for a square (D, D) matrix C."""
    return {
        "on_diagonal": (1 - torch.diagonal(c)).pow(2).sum(),
        "off_diagonal": offdiag_weight * off_diagonal(c).pow(2).sum(),
    }


def barlow_twins_terms(
    z_a: Tensor, z_b: Tensor, *, offdiag_weight: float, eps: float
) -> dict[str, Tensor]:
    """The two weighted Barlow Twins terms; they sum to :func:`barlow_twins_loss`."""
    check_pair(z_a, z_b)
    a, b = standardize(z_a, eps=eps), standardize(z_b, eps=eps)
    n, d = a.shape
    if d <= n:
        return _identity_gap(cross_correlation(a, b), offdiag_weight)  # (D, D), as the official
    # D > N: the same terms from the N×N Gram matrices, O(N²D) instead of O(ND²):
    # ‖C‖²_F = ‖âᵀb̂‖²_F / N² = Σ (â âᵀ ∘ b̂ b̂ᵀ) / N², and C_ii = Σ_n â_ni b̂_ni / N. C has rank
    # < N < D, so its off-diagonal part is never small next to the diagonal (no cancellation).
    diagonal = (a * b).sum(0) / n  # (D,)
    squares = ((a @ a.T) * (b @ b.T)).sum() / n**2
    return {
        "on_diagonal": (1 - diagonal).pow(2).sum(),
        "off_diagonal": offdiag_weight * (squares - diagonal.pow(2).sum()),
    }


def barlow_twins_loss(
    z_a: Tensor, z_b: Tensor, *, offdiag_weight: float = 0.0051, eps: float = 1e-5
) -> Tensor:
    r"""Barlow Twins redundancy-reduction loss, in the official code's form.

    Each embedding dimension is standardised over the batch, ẑ = (z − mean) / √(var + ε) with
    the biased variance (BatchNorm1d(affine=False) in train mode), and with

        C = ẑ_aᵀ ẑ_b / N                                   (D×D)

        L = Σ_i (1 − C_ii)²  +  λ · Σ_{i≠j} C_ij²

    C(b, a) = C(a, b)ᵀ, so the loss is symmetric in the two views; it is also unchanged by any
    per-dimension map z → αz + β with α > 0 (up to the ε inside the square root).

    Args:
        z_a, z_b: projector outputs of the two views, shape (N, D), N ≥ 2. Pass them raw: the
            standardisation happens here (on copies; the inputs are not modified).
        offdiag_weight: λ. 0.0051 is the official code's default (``--lambd``, main.py L39);
            the paper states 5e-3. For the stepwise regime of Simon et al. use λ = 1 with
            :func:`barlow_twins_linear_loss` instead.
        eps: ε added to the biased variance inside the square root; 1e-5 is BatchNorm1d's
            default, which the official code uses.

    Returns:
        Scalar tensor. Single-process semantics: the official code converts the model to
        SyncBatchNorm and all-reduces C across GPUs (without autograd seeing the reduction);
        here N is the local batch and the caller gathers if ever needed.

    Deviations from the reference: none in value on one process. The reference divides C in
    place (``c.div_``) and applies ``add_``/``pow_`` to views of it; this version does not
    modify anything in place.

    References:
        Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via
        Redundancy Reduction", ICML 2021, arXiv:2103.03230.
        facebookresearch/barlowtwins@8e8d284, main.py, BarlowTwins.forward (L207–L221).
    """
    terms = barlow_twins_terms(z_a, z_b, offdiag_weight=offdiag_weight, eps=eps)
    return terms["on_diagonal"] + terms["off_diagonal"]


def barlow_twins_linear_terms(
    z_a: Tensor, z_b: Tensor, *, offdiag_weight: float
) -> dict[str, Tensor]:
    """The two weighted terms of :func:`barlow_twins_linear_loss`; they sum to it."""
    check_pair(z_a, z_b, min_batch=1)
    c = cross_correlation(z_a, z_b)  # (D, D)
    return _identity_gap((c + c.T) / 2, offdiag_weight)  # symmetrised: (z_aᵀz_b + z_bᵀz_a)/(2N)


def barlow_twins_linear_loss(z_a: Tensor, z_b: Tensor, *, offdiag_weight: float = 1.0) -> Tensor:
    r"""Barlow Twins without standardisation, the form analysed by the stepwise-learning theory.

    The embeddings enter as they are (no centring, no scaling), and the second-moment matrix is
    symmetrised over the two views:

        C = (z_aᵀ z_b + z_bᵀ z_a) / (2N)                   (D×D, symmetric)

        L = Σ_i (1 − C_ii)²  +  λ · Σ_{i≠j} C_ij²          (= ‖C − I‖²_F at λ = 1)

    For a linear model z = W x this is C = W Γ Wᵀ with Γ the symmetrised input
    cross-correlation, and at λ = 1 the gradient is ∇_W L = 4 (W Γ Wᵀ − I) W Γ. At W = 0 the loss
    is D: the staircase of Simon et al. starts there and drops by about 1 per learned mode.

    Args:
        z_a, z_b: embeddings of the two views, shape (N, D), N ≥ 1. Used raw: the loss is not
            invariant to shifts or scalings of z, by design.
        offdiag_weight: λ; 1 (the plain Frobenius norm ‖C − I‖²_F) is the value under which the
            closed-form stepwise dynamics hold. With the official 0.0051, decorrelation is
            driven only weakly and the later steps are delayed by roughly 1/λ.

    Returns:
        Scalar tensor.

    Provenance: the authors' code (gitlab.com/generally-intelligent/ssl_dynamics) was not
    available to us. That the paper drops batch normalisation and uses λ = 1 is from memory of
    the paper, consistent with its theory, and is not verified against its text; the
    symmetrisation of C is assumed from the symmetrised Γ of the blog post. The identity
    ∇_W L = 4 (WΓWᵀ − I) WΓ and the staircase were checked numerically (see the tests).

    References:
        Simon, Knutins, Ziyin, Geisz, Fetterman & Albrecht, "On the Stepwise Nature of
        Self-Supervised Learning", ICML 2023, arXiv:2303.15438, §4.
        Zbontar et al., "Barlow Twins", ICML 2021, arXiv:2103.03230 (the loss it simplifies).
    """
    terms = barlow_twins_linear_terms(z_a, z_b, offdiag_weight=offdiag_weight)
    return terms["on_diagonal"] + terms["off_diagonal"]


METHODS = [
    Method("barlow_twins", "Barlow Twins, official form (Zbontar et al. 2021)",
           barlow_twins_loss, barlow_twins_terms),
    Method("barlow_twins_linear",
           "Barlow Twins as in the stepwise theory: λ=1, no BN (Simon 2023)",
           barlow_twins_linear_loss, barlow_twins_linear_terms),
]
