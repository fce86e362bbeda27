"""MMCR's manifold capacity of an embedding: the centroid nuclear norm and its percent error.

Pure functions of a stack of views (N, K, D): K views (or the two modalities of a cross-modal
model) of each of N = P images. Computed in float64, like the spectra. Say in the log key which
representation went in (``inst/z/ppe``, ``inst/h/ppe``).

The random-centroid baseline (PPE ≈ 0.151 at P = D, lower on both sides) is in
:mod:`sslscope.theory.capacity`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sslscope.instruments.spectrum import singular_values
from sslscope.losses.mmcr import mmcr_centroids


def capacity_bound(p: int, d: int) -> float:
    r"""The upper bound of the centroid nuclear norm: √(P · min(P, D)).

    With every ‖μ_n‖ ≤ 1, Σ_r σ_r² = tr(M Mᵀ) ≤ P, and Cauchy–Schwarz over the min(P, D)
    singular values gives ‖M‖_* ≤ √(P · min(P, D)): P when P ≤ D, √(P D) when P ≥ D.

    References:
        Schaeffer et al., "Towards an Improved Understanding and Utilization of Maximum
        Manifold Capacity Representations", 2024, arXiv:2406.09366, Prop. 3.3.
    """
    if p < 1 or d < 1:
        raise ValueError(f"P and D must be at least 1, got {p} and {d}")
    return math.sqrt(p * min(p, d))


def centroid_capacity(views: Tensor) -> tuple[dict[str, float], Tensor]:
    r"""Centroid nuclear norm, its bound, the pretraining percent error and the local norms.

    Every view is L2-normalised, ẑ = z / ‖z‖; image n has the view matrix Z_n = [ẑ_n¹ … ẑ_nᴷ]
    (D×K) and the centroid μ_n = (1/K) Σ_k ẑ_nᵏ; M (P×D) stacks the centroids:

        centroid_nuclear = ‖M‖_* = Σ_r σ_r(M)
        capacity_bound   = √(P · min(P, D))
        ppe              = 1 − ‖M‖_* / √(P · min(P, D))        ∈ [0, 1]
        local_nuclear    = (1/P) Σ_n ‖Z_n‖_*                    ∈ [√K, √(K·min(K, D))]
        centroid_norm    = (1/P) Σ_n ‖μ_n‖                      ∈ [0, 1]

    ppe is 0 for identical views of orthonormal centroids (P ≤ D) and 1 − 1/√min(P, D) for a
    collapse onto one direction. local_nuclear is √K when the K views of every image coincide
    (Z_n of rank 1) and K when they are orthogonal (K ≤ D); centroid_norm is 1 exactly when
    they coincide. These are
    the quantities of :func:`sslscope.losses.mmcr.mmcr_loss` on the same input (its loss is
    −centroid_nuclear + λ · local_nuclear), measured here without gradients.

    Args:
        views: (P, K, D), the K views of image n in ``views[n]``; any float dtype and device.
            Cast to float64 and normalised inside (the input is not modified).

    Returns:
        ``(scalars, singular_values)``: the five scalars above as Python floats, and
        σ(M), (min(P, D),) float64 on the input's device, descending (from the Gram matrix:
        see :func:`sslscope.instruments.spectrum.singular_values` for its accuracy).

    References:
        Yerxa, Kuang, Simoncelli & Chung, "Efficient Coding of Natural Images using Maximum
        Manifold Capacity Representations", NeurIPS 2023, arXiv:2303.03307 (‖M‖_*, ‖Z_n‖_*).
        Schaeffer et al., 2024, arXiv:2406.09366, Eq. (4) (PPE) and Prop. 3.3 (the bound).
    """
    if views.ndim != 3 or min(views.shape) < 1:
        raise ValueError(f"expected views of shape (P, K, D), got {tuple(views.shape)}")
    p, _, d = views.shape
    z_hat = torch.nn.functional.normalize(views.double(), dim=-1)  # (P, K, D)
    centroids = mmcr_centroids(z_hat)  # (P, D); normalising again changes nothing
    sigma = singular_values(centroids)  # (min(P, D),)
    nuclear, bound = float(sigma.sum()), capacity_bound(p, d)
    scalars = {
        "centroid_nuclear": nuclear,
        "capacity_bound": bound,
        "ppe": 1.0 - nuclear / bound,
        "local_nuclear": float(singular_values(z_hat).sum(dim=-1).mean()),  # (P,) -> ()
        "centroid_norm": float(centroids.norm(dim=1).mean()),
    }
    return scalars, sigma
