"""NT-Xent (SimCLR / InfoNCE with in-batch negatives), for two or more views."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.losses._terms import check_pair
from sslscope.methods import Method


def _logits_and_positives(views: tuple[Tensor, ...], temperature: float) -> tuple[Tensor, Tensor]:
    """Cosine logits of the V·N anchors against all other views, and the positive mask.

    Returns:
        logits (VN, VN) with −inf on the diagonal (an anchor is not its own candidate), and a
        boolean mask (VN, VN) that is true where column j is another view of anchor i's image.
    """
    if len(views) < 2:
        raise ValueError(f"NT-Xent needs at least two views, got {len(views)}")
    for other in views[1:]:
        check_pair(views[0], other)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = views[0].shape[0]
    z = F.normalize(torch.cat(views), dim=1)  # (VN, D), view-major
    logits = z @ z.T / temperature  # (VN, VN)
    image = torch.arange(len(views) * n, device=z.device) % n
    self_mask = torch.eye(len(image), dtype=torch.bool, device=z.device)
    positives = (image[:, None] == image[None, :]) & ~self_mask
    return logits.masked_fill(self_mask, float("-inf")), positives


def nt_xent_terms(*views: Tensor, temperature: float) -> dict[str, Tensor]:
    r"""NT-Xent split into attraction and normalisation; they sum to :func:`nt_xent_loss`.

    positive   = −mean_i (1/(V−1)) Σ_{j∈P(i)} sim(z_i, z_j)/τ
    normaliser =  mean_i log Σ_{k≠i} exp(sim(z_i, z_k)/τ)
    """
    logits, positives = _logits_and_positives(views, temperature)
    attraction = logits.masked_fill(~positives, 0.0).sum(dim=1) / (len(views) - 1)
    return {
        "positive": -attraction.mean(),
        "normaliser": torch.logsumexp(logits, dim=1).mean(),
    }


def nt_xent_loss(z_a: Tensor, z_b: Tensor, *more_views: Tensor, temperature: float = 0.5) -> Tensor:
    r"""Normalised-temperature cross-entropy over all views (SimCLR; multi-positive for V > 2).

    For the V·N L2-normalised views, where P(i) are the other V − 1 views of anchor i's image
    and sim is the cosine similarity:

        ℓ_i = −(1/(V−1)) Σ_{j∈P(i)} log [ exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ]
        L   = mean_i ℓ_i

    With V = 2 this is SimCLR's NT-Xent: each anchor sees 2N − 1 candidates, its positive and
    2N − 2 negatives, and with every embedding collinear L = log(2N − 1) for any τ. With V > 2
    the positives are averaged outside the log, as SupCon's L_out does (Khosla et al. 2020,
    Eq. 2, with the image index as the label).

    Args:
        z_a, z_b, *more_views: projector outputs of V ≥ 2 views, each (N, D), N ≥ 2.
            L2-normalised here.
        temperature: τ; 0.5 is lightly's NTXentLoss default and SimCLR's CIFAR-10 value.

    Returns:
        Scalar tensor. Negatives are the local batch only; the caller gathers across ranks.

    References:
        Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
        Visual Representations", ICML 2020, arXiv:2002.05709, Eq. (1).
        Layout as lightly-ai/lightly@e8d317f, lightly/loss/ntx_ent_loss.py, NTXentLoss.
        Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, arXiv:2004.11362.
    """
    return sum(nt_xent_terms(z_a, z_b, *more_views, temperature=temperature).values())


METHODS = [
    Method("nt_xent", "SimCLR's NT-Xent; multi-positive for V > 2 (Chen et al. 2020)",
           nt_xent_loss, nt_xent_terms,
           args={"z_a": "N D", "z_b": "N D", "*more_views": "N D"}, views=None),
]
