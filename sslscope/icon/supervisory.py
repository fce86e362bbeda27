r"""Supervisory kernels p: which neighbours each anchor should have, as row distributions.

Every function returns ``p_sup`` with ``p_sup[i, j] = p(j|i)``: non-negative rows that sum to 1.
Square (B, B) kernels never give an anchor to itself (``p_sup[i, i] = 0``), because the learned
kernels in :mod:`sslscope.icon.learned` exclude the diagonal from their candidates; a p with
mass where log q = −inf would make the cross-entropy infinite.

These are targets: they carry no gradient (integer inputs, or ``x`` read under ``no_grad``).
Functions that must reject a batch (a sample with no positive) look at the values, which reads
them on the host; build p where the labels live, or once per batch outside the hot loop.

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929, Table 1 and §3.3.
    Reference code: ShadeAlsha/ICon@afbf34f3, distributions/graph.py (Label, Augmentation,
    UniformKNN); distributions/distance.py (Gaussian, which has a perplexity argument it never
    uses: the calibration here is ours, after van der Maaten's tsne.py).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.icon.learned import pairwise_squared_distances


def _normalise_rows(weights: Tensor, what: str) -> Tensor:
    """Divide each row of a non-negative (B, M) matrix by its sum; raise if a row is empty."""
    totals = weights.sum(dim=1, keepdim=True)
    if bool((totals == 0).any()):
        rows = torch.nonzero(totals.squeeze(1) == 0).flatten().tolist()
        raise ValueError(f"{what}: rows {rows[:10]} have no positive, so p(·|i) is undefined")
    return weights / totals


def _check_keys(*keys: Tensor) -> None:
    for key in keys:
        if key.ndim != 1 or key.dtype.is_floating_point:
            raise ValueError(f"expected a 1-D integer tensor, got {key.dtype} {tuple(key.shape)}")
    if len({key.shape[0] for key in keys}) != 1:
        raise ValueError(f"expected equal lengths, got {[tuple(k.shape) for k in keys]}")


def _not_self(b: int, device: torch.device) -> Tensor:
    return ~torch.eye(b, dtype=torch.bool, device=device)


def augmentation_pairs(index: Tensor, *, dtype: torch.dtype | None = None) -> Tensor:
    r"""Uniform over the other views of the same source image (SimCLR / InfoNCE p).

        p(j|i) = 1[index_j = index_i, j ≠ i] / (K_i − 1),   K_i = #views of image index_i

    With two views per image this is the one-hot "positive pair" p of Thm 3.

    Args:
        index: source-image id of each view, shape (B,), integer. Order is free; SimCLR's
            ``cat([z_a, z_b])`` layout is ``index = cat([arange(N), arange(N)])``.
        dtype: floating dtype of the result; default ``torch.get_default_dtype()``.

    Returns:
        p_sup, shape (B, B), zero diagonal. Raises ``ValueError`` if an image has one view.

    References:
        I-Con Thm 3. ShadeAlsha/ICon@afbf34f3, distributions/graph.py, Augmentation.
    """
    return _same_key(index, dtype, "augmentation_pairs")


def same_label(labels: Tensor, *, dtype: torch.dtype | None = None) -> Tensor:
    r"""Uniform over the other samples with the same label (SupCon p).

        p(j|i) = 1[y_j = y_i, j ≠ i] / (K_{y_i} − 1),   K_c = #samples of class c in the batch

    Args:
        labels: class of each sample, shape (B,), integer.
        dtype: floating dtype of the result; default ``torch.get_default_dtype()``.

    Returns:
        p_sup, shape (B, B), zero diagonal. Raises ``ValueError`` if a class occurs once (its
        anchor has no positive; SupCon's official code divides by zero there).

    References:
        I-Con Thm 6; Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
        arXiv:2004.11362, Eq. 2. ShadeAlsha/ICon@afbf34f3, distributions/graph.py, Label.
    """
    return _same_key(labels, dtype, "same_label")


def _same_key(key: Tensor, dtype: torch.dtype | None, what: str) -> Tensor:
    _check_keys(key)
    match = (key[:, None] == key[None, :]) & _not_self(key.shape[0], key.device)  # (B, B)
    return _normalise_rows(match.to(dtype or torch.get_default_dtype()), what)


def one_hot_labels(labels: Tensor, num_classes: int, *, dtype: torch.dtype | None = None) -> Tensor:
    r"""Data-to-class p of cross-entropy: p(c|i) = 1[y_i = c].

    The "neighbours" of a sample are the C class prototypes, so the matrix is (B, C) and has
    no diagonal to exclude.

    Args:
        labels: shape (B,), integer in [0, num_classes).
        num_classes: C.
        dtype: floating dtype of the result; default ``torch.get_default_dtype()``.

    Returns:
        p_sup, shape (B, C).

    References:
        I-Con Thm 9. ShadeAlsha/ICon@afbf34f3, distributions/graph.py, Label(pairwise=False).
    """
    _check_keys(labels)
    return F.one_hot(labels, num_classes).to(dtype or torch.get_default_dtype())


def _gaussian_rows(dist: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """Rows p ∝ exp(−β_i d_ij) and their entropies in nats, for finite (B, M) distances.

    H = log Z − Σ_j p_j l_j with l = −β d (tsne.py's form): no log of a probability is taken.
    """
    logits = -beta[:, None] * dist
    log_norm = torch.logsumexp(logits, dim=1)  # (B,)
    p = torch.exp(logits - log_norm[:, None])
    return p, log_norm - (p * logits).sum(dim=1)


@torch.no_grad()
def gaussian_affinities(
    x: Tensor, *, perplexity: float = 30.0, tol: float = 1e-10, max_iter: int = 200
) -> Tensor:
    r"""SNE's conditional Gaussian affinities with a per-point bandwidth set by perplexity.

        p(j|i) = exp(−β_i ‖x_i − x_j‖²) / Σ_{k≠i} exp(−β_i ‖x_i − x_k‖²),   β_i = 1/(2σ_i²)

    β_i is found by bisection (doubling until bracketed, as van der Maaten's tsne.py) so that
    the row entropy H_i in nats equals log(perplexity), i.e. 2^{H_i in bits} = perplexity.
    The search runs in float64 on all rows at once.

    Args:
        x: data, shape (B, D). Read under ``no_grad``: p is a fixed target.
        perplexity: effective number of neighbours, in (1, B − 1); 30 is t-SNE's customary
            value (van der Maaten & Hinton 2008 suggest 5–50; scikit-learn's default).
        tol: stop when every |H_i − log perplexity| < tol (nats).
        max_iter: bisection steps; 200 reaches the float64 limit from any start.

    Returns:
        p_sup, shape (B, B), zero diagonal, dtype of ``x``. If the nearest distance of a row is
        tied between m points, perplexities below m cannot be reached; that row ends with the
        largest β tried (mass spread over the m ties).

    References:
        Hinton & Roweis, "Stochastic Neighbor Embedding", NeurIPS 2002; van der Maaten &
        Hinton, "Visualizing Data using t-SNE", JMLR 2008, §2. I-Con Thm 1 (same p).
    """
    b = x.shape[0]
    if x.ndim != 2 or not 1.0 < perplexity < b - 1:
        raise ValueError(f"need x of shape (B, D) and 1 < perplexity < B − 1 = {b - 1}")
    off = _not_self(b, x.device)
    dist = pairwise_squared_distances(x.double())[off].view(b, b - 1)  # (B, B − 1), j ≠ i
    target = math.log(perplexity)
    beta = 1.0 / dist.mean(dim=1).clamp_min(1e-300)  # start at the scale of the data
    lo = torch.zeros_like(beta)
    hi = torch.full_like(beta, math.inf)
    for _ in range(max_iter):
        _, entropy = _gaussian_rows(dist, beta)
        if bool(((entropy - target).abs() < tol).all()):
            break
        too_flat = entropy > target  # entropy falls as β grows
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), 2 * beta, (lo + hi) / 2)
    p, _ = _gaussian_rows(dist, beta)
    p_sup = torch.zeros(b, b, dtype=x.dtype, device=x.device)
    p_sup[off] = p.flatten().to(x.dtype)
    return p_sup


@torch.no_grad()
def knn_graph(x: Tensor, *, k: int, metric: Literal["cosine", "euclidean"] = "cosine") -> Tensor:
    r"""Uniform over each point's k nearest neighbours (LGSimCLR, PMI/TEMI clustering p).

        p(j|i) = (1/k) · 1[j ∈ kNN(i)],   i ∉ kNN(i)

    Directed: j ∈ kNN(i) does not imply i ∈ kNN(j), and every row has exactly k entries, so
    rows sum to 1 without renormalisation. Ties are broken by ``torch.topk``.

    Args:
        x: features, shape (B, D). Read under ``no_grad``.
        k: neighbours per point, 1 ≤ k ≤ B − 1.
        metric: "cosine" (default: the paper's ImageNet clustering pipeline uses a global
            cosine kNN on DINO features, §5) or "euclidean" (squared distance; the ICon
            ``UniformKNN`` default). Both exclude the point itself.

    Returns:
        p_sup, shape (B, B), zero diagonal, dtype of ``x``.

    References:
        I-Con Table 1 (LGSimCLR, PMI clustering) and §5.
        ShadeAlsha/ICon@afbf34f3, distributions/graph.py, UniformKNN.
    """
    b = x.shape[0]
    if not 1 <= k <= b - 1:
        raise ValueError(f"k must be in [1, B − 1 = {b - 1}], got {k}")
    if metric == "cosine":
        x_unit = F.normalize(x, dim=1)
        closeness = x_unit @ x_unit.T
    elif metric == "euclidean":
        closeness = -pairwise_squared_distances(x)
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    closeness = closeness.masked_fill(~_not_self(b, x.device), -math.inf)
    neighbours = closeness.topk(k, dim=1).indices  # (B, k)
    return torch.zeros_like(closeness).scatter_(1, neighbours, 1.0 / k)


@torch.no_grad()
def knn_walks(
    p_sup: Tensor, *, length: int, weighting: Literal["walks", "uniform"] = "walks"
) -> Tensor:
    r"""Neighbour propagation: spread p over the points reachable in up to ``length`` steps.

        "walks":    P̃ ∝ P + P² + … + P^L              (row-normalised)
        "uniform":  P̃_U ∝ 1[P + P² + … + P^L > 0]     (uniform over the reachable set)

    with P_ij = p(j|i) and L = ``length``. Self-returns (i → j → i) are dropped before the
    rows are normalised: the learned kernels exclude the diagonal, and a walk back to the
    anchor is not a neighbour. The paper finds L = 1–2 best; L = 1 returns P itself
    (with its diagonal zeroed).

    Args:
        p_sup: supervisory kernel, shape (B, B), rows summing to 1 (e.g. :func:`knn_graph`).
        length: L ≥ 1.
        weighting: "walks" keeps the walk probabilities; "uniform" is the paper's P̃_U.

    Returns:
        p_sup, shape (B, B), zero diagonal.

    References:
        I-Con §3.3 ("neighbor propagation") and Table 4. Not in ShadeAlsha/ICon@afbf34f3
        (the ImageNet clustering pipeline is not in the repository).
    """
    b = p_sup.shape[0]
    if p_sup.ndim != 2 or p_sup.shape[1] != b:
        raise ValueError(f"knn_walks needs a square (B, B) p_sup, got {tuple(p_sup.shape)}")
    if length < 1:
        raise ValueError(f"length must be ≥ 1, got {length}")
    step = p_sup
    reach = p_sup
    for _ in range(length - 1):
        step = step @ p_sup
        reach = reach + step
    reach = reach.masked_fill(~_not_self(b, p_sup.device), 0)
    if weighting == "uniform":
        reach = (reach > 0).to(p_sup.dtype)
    elif weighting != "walks":
        raise ValueError(f"weighting must be 'walks' or 'uniform', got {weighting!r}")
    return _normalise_rows(reach, "knn_walks")


def cross_modal_pairs(
    index: Tensor, modality: Tensor, *, dtype: torch.dtype | None = None
) -> Tensor:
    r"""Uniform over the positives of the *other* modalities (CLIP, CMC p).

        p(j|i) = 1[index_j = index_i, modality_j ≠ modality_i] / Z_i

    Args:
        index: pair id of each item, shape (B,), integer (image i and caption i share it).
        modality: modality id of each item, shape (B,), integer.
        dtype: floating dtype of the result; default ``torch.get_default_dtype()``.

    Returns:
        p_sup, shape (B, B), zero diagonal. For CLIP's layout ``cat([z_image, z_text])`` use
        ``index = cat([arange(N), arange(N)])`` and ``modality = cat([zeros(N), ones(N)])``,
        to pair with :func:`sslscope.icon.learned.cross_modal_gaussian_cosine`.

    References:
        I-Con Thm 8.
    """
    _check_keys(index, modality)
    match = (index[:, None] == index[None, :]) & (modality[:, None] != modality[None, :])
    return _normalise_rows(match.to(dtype or torch.get_default_dtype()), "cross_modal_pairs")
