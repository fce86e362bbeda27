"""NT-Xent (SimCLR / InfoNCE with in-batch negatives)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.losses._terms import check_pair


def _logits(z_a: Tensor, z_b: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Cosine logits of the 2N anchors against the other 2N − 1 views, and positive indices.

    Returns:
        logits (2N, 2N) with −inf on the diagonal (an anchor is not its own negative), and the
        index of each anchor's positive, shape (2N,).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2N, D)
    logits = z @ z.T / temperature  # (2N, 2N)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    idx = torch.arange(n, device=z.device)
    positives = torch.cat([idx + n, idx])
    return logits, positives


def nt_xent_terms(z_a: Tensor, z_b: Tensor, *, temperature: float) -> dict[str, Tensor]:
    r"""NT-Xent split into its attraction and repulsion parts; they sum to :func:`nt_xent_loss`.

    positive  = −(1/2N) Σ_i sim(z_i, z_p(i)) / τ
    normaliser = (1/2N) Σ_i log Σ_{k≠i} exp(sim(z_i, z_k) / τ)
    """
    check_pair(z_a, z_b)
    logits, positives = _logits(z_a, z_b, temperature)
    rows = torch.arange(logits.shape[0], device=logits.device)
    return {
        "positive": -logits[rows, positives].mean(),
        "normaliser": torch.logsumexp(logits, dim=1).mean(),
    }


def nt_xent_loss(z_a: Tensor, z_b: Tensor, *, temperature: float = 0.5) -> Tensor:
    r"""Normalised-temperature cross-entropy over 2N views (SimCLR).

    For the 2N L2-normalised views z_1..z_2N, where view i's positive is p(i) (the other view
    of the same image) and sim is the cosine similarity:

        ℓ_i = −log [ exp(sim(z_i, z_p(i))/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ]
        L   = (1/2N) Σ_i ℓ_i

    Each anchor sees 2N − 1 candidates: its positive and 2N − 2 negatives. With every embedding
    collinear, L = log(2N − 1) for any τ.

    Args:
        z_a, z_b: projector outputs of the two views, shape (N, D), N ≥ 2. L2-normalised here.
        temperature: τ; 0.5 is lightly's NTXentLoss default and SimCLR's CIFAR-10 value.

    Returns:
        Scalar tensor. Negatives are the local batch only; the caller gathers across ranks.

    References:
        Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
        Visual Representations", ICML 2020, arXiv:2002.05709, Eq. (1).
        Layout as lightly-ai/lightly@e8d317f, lightly/loss/ntx_ent_loss.py, NTXentLoss.
    """
    check_pair(z_a, z_b)
    logits, positives = _logits(z_a, z_b, temperature)
    return F.cross_entropy(logits, positives)
