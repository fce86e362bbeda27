r"""Learned kernels q: the neighbour distributions the embeddings induce, in log space.

Every function returns ``log_q`` with ``log_q[i, j] = log q(j|i)``, normalised over the
candidates of row i with ``log_softmax`` (a ``logsumexp``, never ``log(softmax)``), so it stays
finite and differentiable at any temperature; :func:`cluster_kernel` is a mixture whose rows
sum to 1 by construction, and its log is taken directly. Entries that are not candidates hold
−inf: the diagonal of the (B, B) kernels (an anchor is not its own neighbour), and the
same-modality blocks of :func:`cross_modal_gaussian_cosine`. The finite entries of a row are
its candidate set; :func:`sslscope.icon.divergence.icon_loss` reads it there for debiasing.

Gradients flow to every embedding argument; nothing is detached.

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929, Table 1 and App. B–D.
    Reference code: ShadeAlsha/ICon@afbf34f3, distributions/distance.py (Gaussian, StudentT),
    distributions/clustering.py (UniformCluster).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_embeddings(z: Tensor, *, min_batch: int = 2) -> None:
    if z.ndim != 2 or z.shape[0] < min_batch:
        raise ValueError(f"expected embeddings of shape (B ≥ {min_batch}, D), got {tuple(z.shape)}")


def _log_softmax_without_self(logits: Tensor) -> Tensor:
    """log_softmax over j ≠ i of square (B, B) logits; the diagonal becomes −inf."""
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    return F.log_softmax(logits.masked_fill(eye, -math.inf), dim=1)


def pairwise_squared_distances(z: Tensor) -> Tensor:
    """‖z_i − z_j‖² for all pairs: (B, D) -> (B, B), clamped at 0 against cancellation.

    Uses the Gram expansion ‖z_i‖² + ‖z_j‖² − 2 z_i·z_j (B×B memory, not B×B×D). The diagonal
    is ≈ 0 up to rounding; every kernel here masks it.
    """
    sq = z.pow(2).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2 * z @ z.T).clamp_min(0)


def gaussian_distance(z: Tensor, *, sigma: float = 1.0) -> Tensor:
    r"""Gaussian kernel on squared Euclidean distance, normalised over j ≠ i (SNE's q).

        q(j|i) = exp(−‖z_i − z_j‖² / 2σ²) / Σ_{k≠i} exp(−‖z_i − z_k‖² / 2σ²)

    SNE's q (I-Con Thm 1) is the case 2σ² = 1, i.e. ``sigma = 1/√2``.

    Args:
        z: embeddings, shape (B, D), used as given (not normalised).
        sigma: bandwidth σ > 0; 1.0 is ICon's ``Gaussian`` default.

    Returns:
        log_q, shape (B, B), −inf on the diagonal.

    References:
        I-Con Thm 1. ShadeAlsha/ICon@afbf34f3, distributions/distance.py, Gaussian with
        metric="euclidean" (its "euclidean" distance is already squared) and mask_diagonal.
    """
    _check_embeddings(z)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return _log_softmax_without_self(-pairwise_squared_distances(z) / (2 * sigma**2))


def gaussian_cosine(z: Tensor, *, sigma: float) -> Tensor:
    r"""Gaussian kernel on cosine distance, normalised over j ≠ i: InfoNCE's q with τ = 2σ².

        q(j|i) = exp(cos(z_i, z_j) / 2σ²) / Σ_{k≠i} exp(cos(z_i, z_k) / 2σ²)

    On the unit sphere ‖ẑ_i − ẑ_j‖² = 2 − 2cos, so this is also the Gaussian on the normalised
    embeddings with bandwidth σ/√2; ICon's "cosine" metric (1 − cos) gives the same softmax.

    Args:
        z: embeddings, shape (B, D); L2-normalised here.
        sigma: bandwidth; the InfoNCE temperature is τ = 2σ² (σ = 0.5 gives τ = 0.5; the
            paper's SimCLR example σ = 0.7 gives τ = 0.98).

    Returns:
        log_q, shape (B, B), −inf on the diagonal.

    References:
        I-Con Thm 3 and Thm 6. ShadeAlsha/ICon@afbf34f3, distributions/distance.py, Gaussian
        with metric="cosine" and mask_diagonal.
    """
    _check_embeddings(z)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    z_unit = F.normalize(z, dim=1)
    return _log_softmax_without_self(z_unit @ z_unit.T / (2 * sigma**2))


def student_t(z: Tensor, *, dof: float = 1.0) -> Tensor:
    r"""Student-t kernel on Euclidean distance, normalised over j ≠ i (t-SNE, t-SimCLR q).

        q(j|i) ∝ (1 + ‖z_i − z_j‖² / ν)^{−(ν+1)/2},   j ≠ i

    ν = 1 is the Cauchy kernel (1 + ‖z_i − z_j‖²)^{−1} of t-SNE; ν → ∞ tends to the Gaussian
    with σ = 1.

    Args:
        z: embeddings, shape (B, D), used as given (not normalised).
        dof: degrees of freedom ν > 0; 1 is t-SNE's choice.

    Returns:
        log_q, shape (B, B), −inf on the diagonal.

    Deviation from the reference code:
        ICon's ``StudentT`` computes 1 / (1 + (d²/γ²)^{df/2}) with d already the *squared*
        distance, i.e. 1 / (1 + ‖z_i − z_j‖^{2·df} / γ^{df}). That equals this kernel only at
        df = ν = 1, γ = 1; for other df it is not a Student-t (exponent and scale differ). We
        implement the Student-t that the paper writes (Cor. 2, as in t-SimCNE).

    References:
        I-Con Cor. 1 and Cor. 2; van der Maaten & Hinton, JMLR 2008 (ν = 1).
        ShadeAlsha/ICon@afbf34f3, distributions/distance.py, StudentT.
    """
    _check_embeddings(z)
    if dof <= 0:
        raise ValueError(f"dof must be positive, got {dof}")
    log_kernel = -(dof + 1) / 2 * torch.log1p(pairwise_squared_distances(z) / dof)
    return _log_softmax_without_self(log_kernel)


def cluster_kernel(probs: Tensor, *, include_self: bool = True) -> Tensor:
    r"""Uniform-on-clusters kernel: pick a cluster of i, then a member of it uniformly.

        q(j|i) = Σ_c φ_ic φ_jc / S_c,   S_c = Σ_k φ_kc   (soft cluster size, k over all B)

    Each row already sums to 1 *including* j = i (Σ_j φ_jc = S_c and Σ_c φ_ic = 1), which is
    the form of Thm 13, so by default the diagonal is kept. With ``include_self=False`` the
    diagonal is set to −inf and each row is renormalised over j ≠ i (ICon's ``mask_diagonal``
    zeros the diagonal without renormalising, which leaves rows summing to less than 1).

    Args:
        probs: soft assignments φ, shape (B, C), rows summing to 1 (softmax of a clustering
            head). q(j|i) = 0 only if i and j share no cluster at all; its log is then −inf.
        include_self: keep q(i|i) (Thm 13's form) or renormalise over j ≠ i.

    Returns:
        log_q, shape (B, B).

    References:
        I-Con Thm 13 (probabilistic k-means), Thm 15 (PMI/TEMI), §5 (InfoNCE clustering).
        ShadeAlsha/ICon@afbf34f3, distributions/clustering.py, UniformCluster.
    """
    _check_embeddings(probs)
    cluster_size = probs.sum(dim=0)  # (C,)
    log_q = torch.log((probs / cluster_size) @ probs.T)  # (B, B)
    if include_self:
        return log_q
    eye = torch.eye(probs.shape[0], dtype=torch.bool, device=probs.device)
    return F.log_softmax(log_q.masked_fill(eye, -math.inf), dim=1)


def class_prototypes(z: Tensor, prototypes: Tensor) -> Tensor:
    r"""Softmax over class prototypes: the q of cross-entropy classification.

        q(c|i) = exp(z_i · φ_c) / Σ_{c'} exp(z_i · φ_{c'})

    The C prototypes are the "other view" of each sample (Thm 9); with φ the rows of a linear
    classifier's weight, −mean_i log q(y_i|i) is ``F.cross_entropy(z @ W.T, y)``.

    Args:
        z: embeddings, shape (B, D), used as given.
        prototypes: class embeddings φ, shape (C, D), used as given.

    Returns:
        log_q, shape (B, C). No diagonal: all C classes are candidates.

    References:
        I-Con Thm 9.
    """
    _check_embeddings(z, min_batch=1)
    if prototypes.ndim != 2 or prototypes.shape[1] != z.shape[1]:
        raise ValueError(f"prototypes must be (C, {z.shape[1]}), got {tuple(prototypes.shape)}")
    return F.log_softmax(z @ prototypes.T, dim=1)


def cross_modal_gaussian_cosine(z_a: Tensor, z_b: Tensor, *, sigma: float) -> Tensor:
    r"""Cosine Gaussian kernel where each item's candidates are the other modality only.

        z = [z_a; z_b]  (B = N_a + N_b rows, L2-normalised)
        q(j|i) = exp(cos(z_i, z_j) / 2σ²) / Σ_{k ∈ other modality} exp(cos(z_i, z_k) / 2σ²)

    Rows of z_a are distributions over z_b and vice versa; same-modality entries are −inf.
    With :func:`sslscope.icon.supervisory.cross_modal_pairs` as p, the mean cross-entropy over
    all B rows is CLIP's symmetric loss (image→text and text→image averaged) at τ = 2σ².

    Args:
        z_a: first modality (e.g. images), shape (N_a, D); L2-normalised here.
        z_b: second modality (e.g. captions), shape (N_b, D); L2-normalised here.
        sigma: bandwidth, τ = 2σ².

    Returns:
        log_q, shape (N_a + N_b, N_a + N_b), −inf on the two same-modality diagonal blocks.

    References:
        I-Con Thm 8 (CMC, CLIP; Table 1's dot-product form). Radford et al., "Learning
        Transferable Visual Models From Natural Language Supervision", ICML 2021.
    """
    _check_embeddings(z_a, min_batch=1)
    _check_embeddings(z_b, min_batch=1)
    if z_a.shape[1] != z_b.shape[1]:
        raise ValueError(f"dimension mismatch: {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (N_a + N_b, D)
    in_b = torch.arange(z.shape[0], device=z.device) >= z_a.shape[0]  # (B,)
    same_modality = in_b[:, None] == in_b[None, :]
    logits = (z @ z.T / (2 * sigma**2)).masked_fill(same_modality, -math.inf)
    return F.log_softmax(logits, dim=1)
