"""SNE and t-SNE as I-Con instances: 2-D maps of data, non-parametric or through a network.

    y = icon_embedding(x, q="student_t")                      # t-SNE: a free point per sample
    y = icon_embedding(x, q="gaussian", parametric=True)      # parametric SNE: an MLP x → y

The supervisory kernel is SNE's, p(j|i) = Gaussian affinities of the data at a perplexity
(:func:`sslscope.icon.supervisory.gaussian_affinities`); the learned kernel is a Gaussian
(SNE, I-Con Thm 1) or a Student-t with ν = 1 (t-SNE, Cor. 1) on the map, both conditional
rows; the loss is Σ_i KL(p(·|i) ‖ q(·|i)) = B · :func:`sslscope.icon.divergence.icon_kl`.
Conditional rows are I-Con's form of t-SNE; van der Maaten & Hinton (2008) normalise P and Q
jointly over all pairs instead.

The optimisation follows t-SNE's protocol where it matters for the map: PCA initialisation
scaled to a standard deviation of 1e-4 (scikit-learn's ``init="pca"``), early exaggeration
(the attraction term ×12 for the first 250 steps), then plain KL. The steps are Adam's rather
than t-SNE's momentum with per-coordinate gains: scale-free, so one learning rate serves SNE
and t-SNE and both parametrisations. Full batch: O(N²) memory, fine for a few thousand points.

References:
    Hinton & Roweis, "Stochastic Neighbor Embedding", NeurIPS 2002; van der Maaten & Hinton,
    "Visualizing Data using t-SNE", JMLR 2008 (exaggeration, perplexity 30).
    Alshammari et al., "I-Con", ICLR 2025, arXiv:2504.16929, Thm 1, Cor. 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sslscope.icon.divergence import icon_kl
from sslscope.icon.learned import gaussian_distance, pairwise_squared_distances, student_t
from sslscope.icon.supervisory import gaussian_affinities

KERNELS = ("student_t", "gaussian")
INIT_STD = 1e-4  # scikit-learn's PCA initialisation: first coordinate's std


def pca_init(x: Tensor, dims: int) -> Tensor:
    """The first ``dims`` principal components of ``x`` (N, D), scaled to std 1e-4 (float64)."""
    centred = x.double() - x.double().mean(dim=0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    y = centred @ v[:dims].T  # (N, dims)
    return y / y[:, 0].std() * INIT_STD


def log_kernel(y: Tensor, q: str) -> Tensor:
    """The map's log-kernel log q(j|i), ``y`` (N, dims): Student-t (ν = 1) or SNE's exp(−d²)."""
    if q == "student_t":
        return student_t(y, dof=1.0)
    return gaussian_distance(y, sigma=1 / math.sqrt(2))  # exp(−‖y_i − y_j‖²), Thm 1


def icon_embedding(
    x: Tensor,
    *,
    q: str = "student_t",
    parametric: bool = False,
    perplexity: float = 30.0,
    dims: int = 2,
    steps: int = 1000,
    lr: float | None = None,
    exaggeration: float = 12.0,
    exaggeration_steps: int = 250,
    hidden: int = 256,
    seed: int = 0,
) -> Tensor:
    r"""A ``dims``-D map of ``x`` minimising Σ_i KL(p(·|i) ‖ q(·|i)) (module docstring).

    During the first ``exaggeration_steps`` the attraction −Σ p log k is weighted by
    ``exaggeration`` (k the unnormalised kernel), which lets clusters form before the repulsion
    spreads them; after it the loss is the I-Con KL itself.

    Args:
        x: data (N, D), any float dtype, on the device to compute on.
        q: "student_t" (t-SNE) or "gaussian" (SNE).
        parametric: map through an MLP D → hidden → hidden → dims (ReLU) instead of one free
            point per sample; it starts from random weights, not from PCA.
        perplexity: of p's Gaussian affinities; at most (N − 1)/3 is sensible.
        dims: the map's dimension.
        steps: Adam steps in all, the exaggerated ones included.
        lr: Adam's learning rate; default 1.0 for free points (map coordinates grow to tens),
            1e-3 for the network's weights.
        exaggeration: weight of the attraction in the early phase; 1 turns it off.
        exaggeration_steps: length of the early phase.
        hidden: width of the parametric map's hidden layers.
        seed: of the network's initialisation (the non-parametric start is PCA: no randomness).

    Returns:
        (N, dims) float32 on ``x``'s device.
    """
    if q not in KERNELS:
        raise ValueError(f"q must be one of {KERNELS}, got {q!r}")
    n = x.shape[0]
    if not 1 <= perplexity <= n - 1:
        raise ValueError(f"perplexity must be in [1, N − 1 = {n - 1}], got {perplexity}")
    if steps < 1 or exaggeration < 1:
        raise ValueError(f"steps and exaggeration must be at least 1, got {steps}, {exaggeration}")
    x32 = x.float()
    p = gaussian_affinities(x.double(), perplexity=perplexity).float()  # (N, N), rows sum to 1
    if parametric:
        torch.manual_seed(seed)
        model: nn.Module = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(),
                                         nn.Linear(hidden, hidden), nn.ReLU(),
                                         nn.Linear(hidden, dims)).to(x.device)
        standardised = (x32 - x32.mean(0)) / x32.std(0).clamp_min(1e-6)

        def embed() -> Tensor:
            return model(standardised)

        params = list(model.parameters())
    else:
        y = pca_init(x, dims).float().to(x.device).requires_grad_(True)

        def embed() -> Tensor:
            return y

        params = [y]
    optimizer = torch.optim.Adam(params, lr=lr if lr is not None else (1e-3 if parametric
                                                                          else 1.0))
    for step in range(steps):
        mapped = embed()
        loss = n * icon_kl(p, log_kernel(mapped, q))
        if step < exaggeration_steps and exaggeration > 1:
            d2 = pairwise_squared_distances(mapped)
            log_k = -torch.log1p(d2) if q == "student_t" else -d2  # unnormalised log kernel
            loss = loss - (exaggeration - 1) * (p * log_k).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return embed().detach().float()
