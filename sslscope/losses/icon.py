"""I-Con as a trainable method: a supervisory kernel p, a learned kernel q, a divergence.

    sslscope train --method icon --icon-p augmentation --icon-q student_t --debias 0.4

The V views of a batch of N images are the B = V·N points of the kernels (view-major, as
NT-Xent stacks them). p says which points are neighbours, q what the embeddings say, and the
loss is the mean over anchors of a divergence between their rows (:mod:`sslscope.icon`):

    p  "augmentation"      uniform over the other views of the same image (SimCLR's p)
       "augmentation_knn"  ½ (augmentation + uniform over the k nearest other points of the
                           detached embeddings), then propagated by walks of length L
    q  "gaussian"          Gaussian on cosine similarity, τ = 2σ² (SimCLR's q)
       "student_t"         Student-t on Euclidean distance, ν degrees of freedom (t-SimCLR)
       "gaussian_distance" Gaussian on Euclidean distance of the raw embeddings (SNE's q)
    divergence "kl" (the paper's), "reverse_kl" (needs debias > 0: p must cover q's support),
       "cross_entropy" (same gradient as kl, offset by H(p))
    debias α: p ← (1 − α) p + α / (B − 1) over the candidates (the paper's §3.3); debias_q
       likewise for q.

With p = "augmentation", q = "gaussian", divergence "kl" and no debiasing this is NT-Xent at
τ = 2σ² exactly (minus the constant log(V − 1) for V > 2, the entropy of p): tested.

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929 (Eq. 1, Table 1, §3.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from sslscope.icon.divergence import DIVERGENCES, icon_loss
from sslscope.icon.learned import gaussian_cosine, gaussian_distance, student_t
from sslscope.icon.supervisory import augmentation_pairs, knn_graph, knn_walks
from sslscope.losses._terms import check_pair
from sslscope.methods import Method

SUPERVISORY = ("augmentation", "augmentation_knn")
LEARNED = ("gaussian", "student_t", "gaussian_distance")


def supervisory_kernel(z: Tensor, views: int, *, p: str, knn_k: int,
                       walk_length: int) -> Tensor:
    """The supervisory kernel p over the V·N stacked points ``z`` (B, D), view-major; no grad."""
    n = z.shape[0] // views
    index = torch.arange(n, device=z.device).repeat(views)  # view-major image ids (B,)
    p_sup = augmentation_pairs(index, dtype=z.dtype)
    if p == "augmentation_knn":
        p_sup = (p_sup + knn_graph(z.detach(), k=knn_k)) / 2
    if walk_length > 1:
        p_sup = knn_walks(p_sup, length=walk_length)
    return p_sup


def learned_kernel(z: Tensor, *, q: str, sigma: float, dof: float) -> Tensor:
    """The learned log-kernel log q over the stacked points ``z`` (B, D), −inf on the diagonal."""
    if q == "gaussian":
        return gaussian_cosine(z, sigma=sigma)
    if q == "student_t":
        return student_t(z, dof=dof)
    return gaussian_distance(z, sigma=sigma)


def icon_terms(*views: Tensor, p: str, q: str, divergence: str, debias: float,
               debias_q: float, sigma: float, dof: float, knn_k: int,
               walk_length: int) -> dict[str, Tensor]:
    """The I-Con loss as its one term, keyed by the divergence (``{"kl": ...}``)."""
    for other in views[1:]:
        check_pair(views[0], other)
    z = torch.cat(views)  # (V·N, D), view-major
    p_sup = supervisory_kernel(z, len(views), p=p, knn_k=knn_k, walk_length=walk_length)
    log_q = learned_kernel(z, q=q, sigma=sigma, dof=dof)
    return {divergence: icon_loss(p_sup, log_q, divergence=divergence, alpha_p=debias,
                                  alpha_q=debias_q)}


def icon_method_loss(z_a: Tensor, z_b: Tensor, *more_views: Tensor, p: str = "augmentation",
                     q: str = "gaussian", divergence: str = "kl", debias: float = 0.0,
                     debias_q: float = 0.0, sigma: float = 0.5, dof: float = 1.0,
                     knn_k: int = 3, walk_length: int = 1) -> Tensor:
    r"""I-Con over the V ≥ 2 views of a batch (module docstring for p, q and the divergence).

        L = (1/B) Σ_i D( p̃(·|i) ‖ q̃(·|i) ),   B = V·N points, p̃, q̃ debiased by α_p, α_q

    Args:
        z_a, z_b, *more_views: projector outputs of the V views, each (N, D).
        p: the supervisory kernel: "augmentation" or "augmentation_knn".
        q: the learned kernel: "gaussian" (cosine; σ), "student_t" (ν = ``dof``) or
            "gaussian_distance" (Euclidean; σ).
        divergence: "kl", "reverse_kl" or "cross_entropy".
        debias: α_p ∈ [0, 1), the weight of the uniform distribution mixed into p (the paper
            recommends 0.2–0.6 for feature learning).
        debias_q: α_q ∈ [0, 1), the same for q (in log space).
        sigma: σ of the Gaussian kernels; 0.5 makes "gaussian" SimCLR's τ = 0.5.
        dof: ν of the Student-t; 1 is t-SNE's Cauchy kernel.
        knn_k: neighbours of "augmentation_knn" (the paper's clustering uses k = 3).
        walk_length: L of the neighbour propagation P + … + P^L (1: none).

    Returns:
        Scalar tensor.

    References:
        I-Con Eq. 1, Thm 3 (SimCLR), Cor. 2 (t-SimCLR), §3.3 (debiasing, propagation).
    """
    return sum(icon_terms(z_a, z_b, *more_views, p=p, q=q, divergence=divergence,
                          debias=debias, debias_q=debias_q, sigma=sigma, dof=dof,
                          knn_k=knn_k, walk_length=walk_length).values())


def check_options(kwargs: Mapping[str, Any]) -> str | None:
    """One sentence on an option (or a combination) I-Con cannot train with, else None."""
    choices = {"p": SUPERVISORY, "q": LEARNED, "divergence": tuple(DIVERGENCES)}
    for key, allowed in choices.items():
        if kwargs[key] not in allowed:
            return f"{key} must be one of {', '.join(allowed)}, got {kwargs[key]!r}"
    for key in ("debias", "debias_q"):
        if not 0.0 <= kwargs[key] < 1.0:
            return f"{key} must be in [0, 1), got {kwargs[key]}"
    for key in ("sigma", "dof"):
        if not kwargs[key] > 0:
            return f"{key} must be positive, got {kwargs[key]}"
    if kwargs["knn_k"] < 1 or kwargs["walk_length"] < 1:
        return (f"knn_k and walk_length must be at least 1, got {kwargs['knn_k']} and "
                f"{kwargs['walk_length']}")
    if kwargs["divergence"] == "reverse_kl" and kwargs["debias"] == 0:
        return ("reverse_kl needs debias > 0: KL(q‖p) is infinite wherever p is 0 and q is "
                "not, which an undebiased p is for every non-neighbour")
    return None


METHODS = [
    Method("icon", "I-Con: a supervisory kernel p, a learned kernel q, a divergence "
           "(Alshammari et al. 2025)", icon_method_loss, icon_terms,
           args={"z_a": "N D", "z_b": "N D", "*more_views": "N D"}, views=None,
           validate_options=check_options,
           flags={"--icon-p": "p", "--icon-q": "q", "--debias": "debias"}),
]
