"""Spectra of embeddings: covariance eigenvalues, effective rank and RankMe.

All three are pure functions of tensors and compute in float64, because float32 wipes out the
small-eigenvalue tail that spectrum studies care about. Say in every log key or caption which
representation went in: backbone output ``h`` or projector output ``z``.
"""

from __future__ import annotations

import torch
from torch import Tensor

RANKME_EPS = 1e-7  # the ε of Garrido et al.'s reference implementation (suited to float32 input)


def eigenvalues(x: Tensor, *, gram: Tensor | None = None) -> Tensor:
    r"""Eigenvalues of the sample covariance of `x`, in float64, sorted in descending order.

        Σ = (x − x̄)ᵀ (x − x̄) / (N − 1)        (D×D; unbiased, as `torch.cov` and `numpy.cov`)

    Args:
        x: embeddings, shape (N, D) with N ≥ 2; any float dtype and device. Cast to float64 and
            centred inside (the input is not modified).
        gram: ``xᵀx`` in float64 (D, D), if the caller has it (the spectrum instrument shares
            it with RankMe); then Σ = (xᵀx − N x̄ x̄ᵀ)/(N − 1), whose cancellation costs
            ~ε₆₄·|x̄|²/λ relative to an eigenvalue λ.

    Returns:
        Shape (D,), float64, on `x`'s device, descending. Tiny negative values (round-off of a
        rank-deficient Σ) are kept as `torch.linalg.eigvalsh` returns them; `effective_rank`
        treats them as zero.

    Raises:
        ValueError: `x` is not a 2-D tensor with at least two rows.
    """
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
    x = x.to(torch.float64)
    n = x.shape[0]
    if gram is None:
        centred = x - x.mean(dim=0, keepdim=True)
        cov = centred.T @ centred / (n - 1)  # (D, D)
    else:
        mean = x.mean(dim=0)
        cov = (gram - n * torch.outer(mean, mean)) / (n - 1)
    return torch.linalg.eigvalsh(cov).flip(0)  # eigvalsh is ascending


def cross_correlation_eigenvalues(z_a: Tensor, z_b: Tensor) -> Tensor:
    r"""Eigenvalues of the symmetrised, uncentred cross-view cross-correlation, descending.

        C = (Z_aᵀ Z_b + Z_bᵀ Z_a) / (2N)        (D×D, symmetric; not centred, not standardised)

    This is the matrix of the stepwise theory of Barlow Twins (Simon et al. 2023, the C whose
    eigenvalues rise from 0 to 1 one at a time), not the standardised C of the official loss.

    Args:
        z_a, z_b: the two views' embeddings, shape (N, D) each; cast to float64 inside.

    Returns:
        Shape (D,), float64, on the inputs' device, descending. Unlike a covariance, C can have
        negative eigenvalues (views that anti-align in some direction).

    References:
        Simon, Knutins, Ziyin, Geisz, Fetterman & Albrecht, "On the Stepwise Nature of
        Self-Supervised Learning", ICML 2023, arXiv:2303.15438, Eq. (2).
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape or z_a.shape[0] < 1:
        raise ValueError(f"expected two (N, D) views of one shape, got {tuple(z_a.shape)} and "
                         f"{tuple(z_b.shape)}")
    a, b = z_a.to(torch.float64), z_b.to(torch.float64)
    c = a.T @ b / a.shape[0]  # (D, D)
    return torch.linalg.eigvalsh((c + c.T) / 2).flip(0)


def effective_rank(eigvals: Tensor) -> float:
    r"""Effective rank: the exponential of the entropy of the normalised eigenvalues.

        p_k = λ_k / Σ_j λ_j,    erank = exp(−Σ_k p_k log p_k),    with 0 · log 0 = 0

    It is 1 when one direction holds all the variance and D when all D directions hold the same
    amount (isotropic data); in between it counts "how many directions are used".

    Args:
        eigvals: covariance eigenvalues, shape (D,), e.g. from `eigenvalues`; any order.
            Negative values (round-off) are clamped to 0. Computed in float64.

    Returns:
        A float in [1, D]; NaN when every eigenvalue is 0 (no variance at all).

    References:
        Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
        EUSIPCO 2007. They define it on the singular values of a matrix; applied to covariance
        eigenvalues (the squared singular values of the centred data) as in the SSL spectrum
        literature, so it weighs large directions more than RankMe does.
    """
    lam = eigvals.to(torch.float64).clamp_min(0)
    total = lam.sum()
    if total <= 0:
        return float("nan")
    p = lam / total
    entropy = -torch.special.xlogy(p, p).sum()  # xlogy(0, 0) = 0
    return float(torch.exp(entropy))


def rankme(x: Tensor, *, eps: float = RANKME_EPS, gram: Tensor | None = None) -> float:
    r"""RankMe: the exponential of the entropy of the L1-normalised singular values of `x`.

        p_k = σ_k(x) / ‖σ(x)‖₁ + ε,    RankMe = exp(−Σ_{k ≤ min(N, D)} p_k log p_k)

    A matrix with k equal non-zero singular values scores k, up to ε's effect: each zero
    singular value adds about ε·|log ε| ≈ 1.6e-6 to the entropy (within 0.1 % of k for
    min(N, D) ≤ 500).

    Args:
        x: embeddings, shape (N, D), used as given: not centred and not normalised, as in
            the paper. Cast to float64 inside. The paper uses N = 25,600 samples; with N < D
            the score is at most N.
        eps: ε, added after normalisation and not renormalised, exactly as in the paper's
            formula; 1e-7 is the value of the authors' code. It keeps log finite for zero
            singular values.
        gram: ``xᵀx`` (or ``x xᵀ`` when N < D) in float64, if the caller has it already
            (see :func:`singular_values`).

    Returns:
        A float in about [1, min(N, D)]; NaN for an all-zero `x`.

    References:
        Garrido, Balestriero, Najman & LeCun, "RankMe: Assessing the Downstream Performance of
        Pretrained Self-Supervised Representations by Their Rank", ICML 2023, arXiv:2210.02885
        (Eq. 1). Shape of the code follows stable-pretraining's ``callbacks/rankme.py``.
    """
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (N, D) with N, D >= 1, got {tuple(x.shape)}")
    s = singular_values(x, gram=gram)  # (min(N, D),)
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def singular_values(x: Tensor, *, gram: Tensor | None = None) -> Tensor:
    r"""Singular values of `x` (..., N, D) in float64, from the eigenvalues of its smaller Gram.

        σ_k(x) = √λ_k(xᵀx)  (D ≤ N)   or   √λ_k(x xᵀ)  (N < D),   batched over leading dims

    Why not ``svdvals``: for the instruments' (2048, 512) matrices ``eigvalsh`` of the 512×512
    Gram is ~3× faster (benchmarks/bench.md: the instruments' share of training), and ~10× for
    the capacity instrument's batch of (K, K) local Gram matrices. Squaring costs precision
    only in the smallest values. Eigenvalues under max(N, D) · ε₆₄ · λ_max (the usual
    numerical-rank tolerance, round-off of exact zeros) are set to 0, so an exactly
    rank-deficient x gives exact zeros; the price is that singular values below
    √(max(N, D) · ε₆₄) · σ_max (3e-7 σ_max at D = 512) read as 0, which moves RankMe by about
    its own ε = 1e-7 of the normalised values and a PPE by at most ~1e-7·√min(N, D).

    Args:
        x: (..., N, D), any float dtype; cast to float64 inside.
        gram: the smaller Gram matrix of x in float64, (..., min(N, D), min(N, D)), if the
            caller has computed it already; otherwise computed here.

    Returns:
        Shape (..., min(N, D)), float64, on `x`'s device, descending.
    """
    if gram is None:
        x = x.to(torch.float64)
        gram = x.mT @ x if x.shape[-1] <= x.shape[-2] else x @ x.mT  # (..., min, min)
    lam = torch.linalg.eigvalsh(gram).flip(-1)  # descending
    tolerance = max(x.shape[-2:]) * torch.finfo(torch.float64).eps * lam[..., :1].clamp_min(0)
    return torch.where(lam > tolerance, lam, 0.0).sqrt()
