"""Geometry of the embedding on the hypersphere: alignment, uniformity and collapse.

Pure functions of (N, D) tensors; the embeddings are L2-normalised inside, as in the papers.
Say in the log key which representation went in (``inst/z/alignment``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def alignment(z_a: Tensor, z_b: Tensor, *, alpha: float = 2.0) -> float:
    r"""Alignment of positive pairs: the mean distance between the two views on the sphere.

        L_align = E_i ‖ẑ_a,i − ẑ_b,i‖₂^α,    ẑ = z / ‖z‖

    0 when every pair coincides; 4 (α = 2) when every pair is antipodal.

    Args:
        z_a, z_b: the two views' embeddings, (N, D) each; normalised inside (float64).
        alpha: α; 2 is the paper's choice.

    References:
        Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and
        Uniformity on the Hypersphere", ICML 2020, arXiv:2005.10242 (Eq. 4, ``align_loss``).
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(f"expected two (N, D) views of one shape, got {tuple(z_a.shape)} and "
                         f"{tuple(z_b.shape)}")
    a, b = F.normalize(z_a.double(), dim=1), F.normalize(z_b.double(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: Tensor, *, t: float = 2.0) -> float:
    r"""Uniformity: the log of the mean Gaussian potential between distinct points on the sphere.

        L_uniform = log E_{i<j} exp(−t ‖ẑ_i − ẑ_j‖²)

    0 when all points coincide (collapse); more negative means more uniform. It is at least −4t
    (every pair antipodal, which only two points can be).

    Args:
        z: embeddings (N, D), N ≥ 2; normalised inside (float64).
        t: the potential's scale; 2 is the paper's choice.

    References:
        Wang & Isola, ICML 2020 (Eq. 6, ``uniform_loss``: ``torch.pdist(x).pow(2)``, all pairs
        i < j).
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"expected (N, D) with N >= 2, got {tuple(z.shape)}")
    x = F.normalize(z.double(), dim=1)
    n = x.shape[0]
    # On the unit sphere ‖a − b‖² = 2 − 2 aᵀb: one matrix product instead of pdist, which is
    # several times slower for the instrument batch (1,024 points). The pairs i < j are half
    # of the off-diagonal entries of the symmetric matrix, so the mean over them is the mean
    # over i ≠ j: no gather of N(N−1)/2 entries (a third of this function's time).
    energy = -t * (2 - 2 * (x @ x.T)).clamp_min(0)  # (N, N)
    energy.fill_diagonal_(-math.inf)  # i = j is not a pair
    return float(torch.logsumexp(energy.flatten(), dim=0) - math.log(n * (n - 1)))


def normalized_std(z: Tensor) -> float:
    r"""Per-dimension standard deviation of the L2-normalised embeddings, averaged over D.

        s = mean_d std_i(ẑ_i,d),    ẑ = z / ‖z‖     (std with N − 1)

    About 1/√D when the embeddings spread over the sphere (a standard normal z gives
    √((1 − 1/D)/D) ≈ 1/√D); 0 when they collapse to one point. SimSiam's collapse monitor.

    Args:
        z: embeddings (N, D), N ≥ 2; normalised inside (float64).

    References:
        Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021, §4.1 and
        Fig. 2 (middle).
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"expected (N, D) with N >= 2, got {tuple(z.shape)}")
    return float(F.normalize(z.double(), dim=1).std(dim=0).mean())
