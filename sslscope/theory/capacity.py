"""MMCR's pretraining percent error for random centroids: the baseline PPE is measured against.

For P uniform random unit vectors in D dimensions stacked into M (P×D), the centroid nuclear
norm falls short of its bound √(P·min(P, D)) by a fixed fraction that depends on P/D alone as
P, D → ∞, largest at P = D (the "double descent" of Schaeffer et al. 2024):

    PPE(P, D) = 1 − ‖M‖_* / √(P·min(P, D))  →  1 − E_{λ ~ MP(c)} √λ,   c = min(P, D)/max(P, D)

where MP(c) is the Marchenko–Pastur law of ratio c and unit variance (the eigenvalues of
M Mᵀ when P ≤ D, of (D/P) MᵀM when P ≥ D: rows of unit norm are, for large D, rows of iid
entries of variance 1/D). At c = 1 it is the quarter-circle law of the singular values, whose
mean is 8/(3π), so PPE → 1 − 8/(3π) ≈ 0.1512; for small c, PPE ≈ c/8. methods.md §2.2 and its
appendix check (2) give the Monte-Carlo numbers: 0.151 at P = D, 0.067 at c = ½, 0.032 at ¼,
0.016 at ⅛.

References:
    Schaeffer et al., "Towards an Improved Understanding and Utilization of Maximum Manifold
    Capacity Representations", 2024, arXiv:2406.09366, Eq. (4) (PPE) and §3 (the peak at P = D).
    Marchenko & Pastur, "Distribution of eigenvalues for some sets of random matrices", Math.
    USSR-Sbornik 1967 (the law; the quarter-circle law is its c = 1 case for √λ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# 1 − 8/(3π): the limit of the random-centroid PPE on the diagonal P = D (quarter-circle law).
SQUARE_RANDOM_PPE = 1.0 - 8.0 / (3.0 * math.pi)
QUADRATURE_POINTS = 128  # Gauss–Legendre nodes in θ; the integrand is smooth: error < 1e-12


def random_centroid_ppe(p: int, d: int, trials: int = 4, seed: int = 0) -> float:
    r"""Monte-Carlo PPE of P uniform random unit vectors in D dimensions, averaged over trials.

        M = [u_1 … u_P]ᵀ,  u_n = g_n / ‖g_n‖,  g_n ~ N(0, I_D)   (uniform on S^{D−1})
        PPE = 1 − ‖M‖_* / √(P·min(P, D))

    The centroids have unit norm (perfectly agreeing views), so the error is that of their
    directions alone: what a network whose centroids were spread at random would score.

    Args:
        p: P, the number of centroids (images of the batch), ≥ 1.
        d: D, the embedding dimension, ≥ 1.
        trials: independent draws averaged; the spread between draws is about 1/P of the
            value at P = D = 256, so a few suffice.
        seed: of the float64 torch generator; the same seed gives the same value.

    Returns:
        The mean PPE over the trials, a float in [0, 1).
    """
    if p < 1 or d < 1 or trials < 1:
        raise ValueError(f"P, D and trials must be at least 1, got {p}, {d} and {trials}")
    generator = torch.Generator().manual_seed(seed)
    bound = math.sqrt(p * min(p, d))
    errors = []
    for _ in range(trials):
        g = torch.randn(p, d, generator=generator, dtype=torch.float64)  # (P, D)
        m = g / g.norm(dim=1, keepdim=True)  # rows uniform on the sphere
        errors.append(1.0 - float(torch.linalg.svdvals(m).sum()) / bound)
    return float(np.mean(errors))


def asymptotic_ppe(ratio: float) -> float:
    r"""The large-P, large-D limit of the random-centroid PPE at ratio c = min(P, D)/max(P, D).

        PPE(c) = 1 − E √λ,   λ ~ MP(c) on [(1 − √c)², (1 + √c)²],
        p(λ) = √((λ₊ − λ)(λ − λ₋)) / (2π c λ)

    computed by Gauss–Legendre quadrature after λ = (λ₊ + λ₋)/2 + (λ₊ − λ₋)/2 · cos θ, which removes
    the square-root endpoints. Symmetric in P ↔ D by construction (only the ratio enters).
    PPE(1) = 1 − 8/(3π) (:data:`SQUARE_RANDOM_PPE`); PPE(c) ≈ c/8 for small c.

    Args:
        ratio: c in (0, 1]; a value above 1 is read as its inverse (the same P/D grid cell).

    Returns:
        A float in [0, 1 − 8/(3π)].
    """
    if not ratio > 0:
        raise ValueError(f"the ratio min(P, D)/max(P, D) must be positive, got {ratio}")
    c = min(ratio, 1.0 / ratio)
    lo, hi = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_POINTS)  # on [−1, 1]
    theta = (nodes + 1) * math.pi / 2  # (Q,) on [0, π]
    lam = (hi + lo) / 2 + (hi - lo) / 2 * np.cos(theta)
    # p(λ) dλ = ((λ₊ − λ₋)/2)² sin²θ / (2π c λ) dθ; times √λ:
    integrand = ((hi - lo) / 2) ** 2 * np.sin(theta) ** 2 / (2 * math.pi * c * np.sqrt(lam))
    return 1.0 - float((weights * integrand).sum() * math.pi / 2)


def ppe_surface(ps: Sequence[int], ds: Sequence[int], *, trials: int = 4,
                seed: int = 0) -> np.ndarray:
    """The random-centroid PPE over a grid of batch sizes P and dimensions D (the study's plot).

    Args:
        ps: the P values, rows of the result.
        ds: the D values, columns.
        trials, seed: as in :func:`random_centroid_ppe`; every cell uses ``seed``.

    Returns:
        float64 (len(ps), len(ds)): entry [i, j] is ``random_centroid_ppe(ps[i], ds[j])``,
        highest on the diagonal P = D and falling off on both sides.
    """
    return np.array([[random_centroid_ppe(p, d, trials, seed) for d in ds] for p in ps],
                    dtype=np.float64)
