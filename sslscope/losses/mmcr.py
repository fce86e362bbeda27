"""MMCR: maximum manifold capacity representations, its momentum and two-modality variants, PPE.

Layout convention for every function here: ``z`` has shape (N, K, D), N images (manifolds), K
views per image, D embedding dimensions. The view matrix of image n is Z_n = [ẑ_n¹ … ẑ_nᴷ],
D×K in the paper and the official code; we take the singular values of its transpose z[n]
(K×D), which are the same. The official code's flat batch ``(N·K, D)`` with the K views of one
image contiguous is ``z.reshape(N * K, D)``.

Every embedding is L2-normalised inside, as in the official code (``F.normalize``). lightly's
``MMCRLoss`` does not normalise, so there the loss is unbounded below: scaling every
embedding by c > 1 multiplies ‖C‖_* by c. Pass raw projector outputs here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.losses._terms import check_pair
from sslscope.methods import Method, stacked_online_and_target, stacked_views


def _check_views(z: Tensor, name: str = "z") -> None:
    if z.ndim != 3 or min(z.shape) < 1:
        raise ValueError(f"expected {name} of shape (N, K, D), got {tuple(z.shape)}")


def _check_same(z_online: Tensor, z_target: Tensor) -> None:
    _check_views(z_online, "z_online")
    if z_online.shape != z_target.shape:
        raise ValueError(
            f"expected z_online and z_target of the same shape (N, K, D), got "
            f"{tuple(z_online.shape)} and {tuple(z_target.shape)}"
        )


def _nuclear_norm(m: Tensor) -> Tensor:
    """‖m‖_* = Σ_r σ_r(m) over the last two dimensions: (..., A, B) -> (...)."""
    return torch.linalg.svdvals(m).sum(dim=-1)


def mmcr_centroids(z: Tensor) -> Tensor:
    r"""Per-image centroids of the L2-normalised views: c_n = (1/K) Σ_k ẑ_n^(k).

    ‖c_n‖ ≤ 1, with equality iff all K views of image n coincide. This is the matrix C (or M in
    Schaeffer et al. 2024) that :func:`mmcr_loss` and :func:`pretraining_percent_error` use.

    Args:
        z: embeddings, shape (N, K, D); normalised here.

    Returns:
        Shape (N, D).
    """
    _check_views(z)
    return F.normalize(z, dim=-1).mean(dim=1)  # (N, K, D) -> (N, D)


def _local_term(z_hat: Tensor, local_weight: float) -> Tensor:
    """λ · (1/N) Σ_n ‖Z_n‖_* on normalised views (N, K, D); skipped (zero) when λ = 0."""
    if local_weight == 0.0:  # a Python float: no sync; the official code skips the SVD too
        return z_hat.new_zeros(())
    return local_weight * _nuclear_norm(z_hat).mean()


def mmcr_terms(z: Tensor, *, local_weight: float) -> dict[str, Tensor]:
    """The two weighted MMCR terms; they sum to :func:`mmcr_loss` (same arguments).

    Returns:
        ``{"centroid_nuclear": −‖C‖_*, "local_nuclear": λ · mean_n ‖Z_n‖_*}``, both scalars.
        The local term is an exact zero, without an SVD, when ``local_weight == 0``.
    """
    _check_views(z)
    z_hat = F.normalize(z, dim=-1)  # (N, K, D)
    centroids = z_hat.mean(dim=1)  # (N, D)
    return {
        "centroid_nuclear": -_nuclear_norm(centroids),
        "local_nuclear": _local_term(z_hat, local_weight),
    }


def mmcr_loss(z: Tensor, *, local_weight: float = 0.0) -> Tensor:
    r"""Maximum manifold capacity loss over N images with K views each.

    With ẑ = z/‖z‖ per embedding, the view matrices Z_n = [ẑ_n¹ … ẑ_nᴷ] (D×K), the centroids
    c_n = (1/K) Σ_k ẑ_nᵏ stacked into C (N×D), and ‖·‖_* the nuclear norm (sum of singular
    values, batched ``torch.linalg.svdvals``):

        L = −‖C‖_*  +  (λ/N) Σ_n ‖Z_n‖_*

    Since ‖c_n‖ ≤ 1, ‖C‖_* ≤ √(N·min(N, D)) (Schaeffer et al. 2024, Prop. 3.3). With K
    identical views per image and orthonormal centroids (N ≤ D), each ‖Z_n‖_* = √K and
    ‖C‖_* = N, so L = λ√K − N.

    Args:
        z: projector outputs, shape (N, K, D), the K views of image n in ``z[n]``. Pass them
            raw: every embedding is L2-normalised here, as in the official code. (lightly's
            ``MMCRLoss`` does not normalise; its loss is then unbounded below.)
        local_weight: λ. 0 is the value of both official CLIs (``pretrain_cifar_stl.py`` and
            ``pretrain_imagenet.py``); the local SVD is then skipped. lightly's default is
            5e-3, which it describes as the paper's ImageNet value.

    Returns:
        Scalar tensor. Single-process semantics: the official code all-gathers the views
        (without autograd) before both nuclear norms; the caller gathers if ever needed.

    Deviations: none in value. The official code also returns a dict of host-synced Python
    floats; call :func:`mmcr_terms` under ``torch.no_grad()`` at log steps instead.

    References:
        Yerxa, Kuang, Simoncelli & Chung, "Efficient Coding of Natural Images using Maximum
        Manifold Capacity Representations", NeurIPS 2023, arXiv:2303.03307.
        ThomasYerxa/mmcr@fafd3a98, mmcr/cifar_stl/loss_mmcr.py, MMCR_Loss.forward.
        lightly-ai/lightly@e8d317fc, lightly/loss/mmcr_loss.py, MMCRLoss (no normalisation).
    """
    return sum(mmcr_terms(z, local_weight=local_weight).values())


def mmcr_momentum_terms(
    z_online: Tensor, z_target: Tensor, *, local_weight: float
) -> dict[str, Tensor]:
    """The two weighted momentum-MMCR terms; they sum to :func:`mmcr_momentum_loss`.

    Returns:
        ``{"centroid_nuclear": −‖C‖_*, "local_nuclear": λ · mean_n ‖Z_n^online‖_*}``.
    """
    _check_same(z_online, z_target)
    online = F.normalize(z_online, dim=-1)  # (N, K, D)
    target = F.normalize(z_target.detach(), dim=-1)  # (N, K, D), stop-gradient
    centroids = 0.5 * (online.mean(dim=1) + target.mean(dim=1))  # (N, D)
    return {
        "centroid_nuclear": -_nuclear_norm(centroids),
        "local_nuclear": _local_term(online, local_weight),
    }


def mmcr_momentum_loss(z_online: Tensor, z_target: Tensor, *, local_weight: float = 0.0) -> Tensor:
    r"""MMCR with a momentum (EMA) target network: the official ImageNet objective.

    The centroid of image n averages the online and the target views, each normalised:

        c_n = ½ [ (1/K) Σ_k ẑ_n^(k),online + (1/K) Σ_k ẑ_n^(k),target ]
        L   = −‖C‖_*  +  (λ/N) Σ_n ‖Z_n^online‖_*

    The local term uses the online views only, as in the official code. (lightly's
    ``MMCRLoss(online, momentum)`` instead concatenates both into a 2K-view matrix for the
    local term; with λ = 0 the two agree.)

    Args:
        z_online: online projector outputs, shape (N, K, D); normalised here.
        z_target: target (momentum-encoder) outputs of the same K views, shape (N, K, D);
            normalised and **detached here**. The stop-gradient is part of the method (the
            official momentum encoder has ``requires_grad=False``), so detaching in the
            caller as well is harmless but not needed.
        local_weight: λ; 0 as in ``pretrain_imagenet.py`` (the local SVD is then skipped).

    Returns:
        Scalar tensor; gradients reach ``z_online`` only.

    Deviation: the official code drops centroid rows that are not finite before the SVD (and
    its "filtered nan" message can never print: it compares the count after filtering). We do
    not filter: boolean indexing forces a host sync and would hide a divergence. A non-finite
    embedding makes ``svdvals`` raise on CPU or return non-finite values on GPU, which the
    training loop's divergence guard reports.

    References:
        Yerxa et al., NeurIPS 2023, arXiv:2303.03307.
        ThomasYerxa/mmcr@fafd3a98, mmcr/imagenet/loss_mmcr_momentum.py,
        MMCR_Momentum_Loss.forward; EMA τ = 0.99 in mmcr/imagenet/misc.py, MomentumUpdate.
    """
    return sum(mmcr_momentum_terms(z_online, z_target, local_weight=local_weight).values())


def mmcr_multimodal_loss(z_a: Tensor, z_b: Tensor) -> Tensor:
    r"""Two-modality MMCR: each (image, text) pair is a two-point manifold.

        μ_n = ½ (ẑ_a,n + ẑ_b,n),   L = −‖M‖_*,   M = [μ_1 … μ_N]ᵀ (N×D)

    This is :func:`mmcr_loss` with K = 2 and λ = 0 on ``stack([z_a, z_b], dim=1)``. No code
    for the multimodal experiments of Schaeffer et al. (2024) was found; the formula is ours,
    consistent with the description "X and Y are two views of the same object" and with
    the unimodal loss (any λ term or temperature in the paper is unknown).

    Args:
        z_a: first modality's embeddings (e.g. image encoder), shape (N, D); normalised here.
        z_b: second modality's embeddings (e.g. text encoder), shape (N, D); normalised here.

    Returns:
        Scalar tensor in [−√(N·min(N, D)), 0]; gradients reach both inputs.

    References:
        Schaeffer et al., "Towards an Improved Understanding and Utilization of Maximum
        Manifold Capacity Representations", 2024, arXiv:2406.09366 (multimodal MMCR vs CLIP).
    """
    check_pair(z_a, z_b, min_batch=1)
    mu = 0.5 * (F.normalize(z_a, dim=1) + F.normalize(z_b, dim=1))  # (N, D)
    return -_nuclear_norm(mu)


def mmcr_multimodal_terms(z_a: Tensor, z_b: Tensor) -> dict[str, Tensor]:
    """The single term of :func:`mmcr_multimodal_loss`, named as MMCR's global term is."""
    return {"centroid_nuclear": mmcr_multimodal_loss(z_a, z_b)}


def pretraining_percent_error(centroids: Tensor) -> Tensor:
    r"""Pretraining percent error: how far ‖M‖_* is from its upper bound.

        PPE = 1 − ‖M‖_* / √(P · min(P, D))  ∈ [0, 1]   when every ‖μ_n‖ ≤ 1

    0 for orthonormal centroids (P ≤ D); 1 − 1/√min(P, D) when all P rows equal one unit
    vector (rank 1, ‖M‖_* = √P); ≈ 1 − 8/(3π) ≈ 0.151 for uniform random unit rows at P = D
    (quarter-circle law), lower on both sides of the diagonal.

    Args:
        centroids: M, shape (P, D): rows are centroids of L2-normalised views, e.g.
            :func:`mmcr_centroids`. Used as given, **not** normalised: a centroid norm below 1
            is exactly the imperfect view agreement the error is meant to count.

    Returns:
        Scalar tensor (differentiable; call it under ``torch.no_grad()`` for logging).

    References:
        Schaeffer et al., 2024, arXiv:2406.09366, Eq. (4) and Prop. 3.3 (the bound).
    """
    if centroids.ndim != 2 or min(centroids.shape) < 1:
        raise ValueError(f"expected centroids of shape (P, D), got {tuple(centroids.shape)}")
    p, d = centroids.shape
    return 1.0 - _nuclear_norm(centroids) / math.sqrt(p * min(p, d))


METHODS = [
    Method("mmcr", "MMCR: centroid nuclear norm over K views (Yerxa et al. 2023)",
           mmcr_loss, mmcr_terms, args={"z": "N K D"}, inputs=stacked_views, views=None),
    Method("mmcr_momentum", "MMCR with a momentum target network (Yerxa et al. 2023, ImageNet)",
           mmcr_momentum_loss, mmcr_momentum_terms,
           args={"z_online": "N K D", "z_target": "N K D"}, inputs=stacked_online_and_target,
           views=None, target="ema", ema_schedule="constant"),
    Method("mmcr_multimodal", "MMCR on the centroid of two modalities (Schaeffer et al. 2024)",
           mmcr_multimodal_loss, mmcr_multimodal_terms, cross_modal=True),
]
