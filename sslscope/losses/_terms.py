"""Small shared pieces of the objectives, also used by the instruments.

Every function here is pure, differentiable and shape-documented. They are public because the
same quantities (a covariance, a cross-correlation) are both loss terms and dynamics metrics.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_pair(z_a: Tensor, z_b: Tensor, *, min_batch: int = 2) -> None:
    """Raise ``ValueError`` unless ``z_a`` and ``z_b`` are matching ``(N, D)`` batches."""
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"expected two embeddings of the same shape (N, D), got {tuple(z_a.shape)} "
            f"and {tuple(z_b.shape)}"
        )
    if z_a.shape[0] < min_batch:
        raise ValueError(f"need a batch of at least {min_batch} samples, got {z_a.shape[0]}")


def off_diagonal(m: Tensor) -> Tensor:
    """Off-diagonal entries of a square matrix, flattened.

    Args:
        m: square matrix, shape (D, D).

    Returns:
        Shape (D·D − D,): every entry with row ≠ column, in row-major order.
    """
    d = m.shape[0]
    if m.ndim != 2 or m.shape[1] != d:
        raise ValueError(f"off_diagonal needs a square matrix, got shape {tuple(m.shape)}")
    # Drop the last element, view as (D-1, D+1): the diagonal lands in column 0.
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def center(z: Tensor) -> Tensor:
    """Subtract the batch mean of each dimension: (N, D) -> (N, D)."""
    return z - z.mean(dim=0, keepdim=True)


def covariance(z: Tensor) -> Tensor:
    r"""Unbiased covariance of a batch of embeddings.

        Cov(Z) = (Z − Z̄)ᵀ (Z − Z̄) / (N − 1)

    Args:
        z: embeddings, shape (N, D), N ≥ 2.

    Returns:
        Shape (D, D).
    """
    zc = center(z)
    return zc.T @ zc / (z.shape[0] - 1)


def standardize(z: Tensor, *, eps: float = 1e-5) -> Tensor:
    r"""Per-dimension standardisation over the batch, as BatchNorm1d(affine=False) in train mode.

        ẑ = (z − mean) / √(var_biased + eps)

    Args:
        z: shape (N, D).
        eps: added to the biased variance inside the square root; 1e-5 is BatchNorm's default.

    Returns:
        Shape (N, D).
    """
    zc = center(z)
    var = zc.pow(2).mean(dim=0, keepdim=True)
    return zc / torch.sqrt(var + eps)


def cross_correlation(z_a: Tensor, z_b: Tensor) -> Tensor:
    r"""Cross-correlation of two batches: C = z_aᵀ z_b / N.

    Args:
        z_a, z_b: shape (N, D); pass them standardised for the Barlow Twins C.

    Returns:
        Shape (D, D).
    """
    return z_a.T @ z_b / z_a.shape[0]
