"""Debiased InfoNCE clustering (I-Con §5): a linear clustering head on frozen features.

    clusters = infonce_clustering(features, 10)                          # kNN p alone
    clusters = infonce_clustering(features, 10, views=bank)              # + augmentations
    clusters = infonce_clustering(features, 10, debias=0, walk_length=1)  # the ladder's baseline

The head maps each feature vector to soft assignments φ_i = softmax(W f_i + b) over m
clusters; the learned kernel is the uniform-on-clusters kernel of φ (pick one of i's clusters,
then a member uniformly, :func:`sslscope.icon.learned.cluster_kernel`); the supervisory kernel
is each image's k nearest neighbours in the clean feature space (k = 3), spread by walks of
length L; both are debiased by α (the paper's "debiased InfoNCE clustering"); the loss is the
mean KL(p̃(·|i) ‖ q̃(·|i)) (:class:`ClusterKL`). Full batch: the neighbour graph is computed
once.

Without ``views`` the points are the N clean feature vectors, p is the kNN part alone and q
keeps j = i (Thm 13's form of the kernel, whose rows sum to 1 with it).
With ``views``, a bank of A ≥ 2 augmented copies of every image's features, each step draws
two different copies a_i ≠ b_i of every image; the anchors are the a-copies, the candidates the
b-copies (the two-view candidate set of I-Con's CLIP row, Thm 8, which keeps the kernel N × N
instead of 2N × 2N), and

    p(j|i) = ½ 1[j = i] + ½ walks_L(kNN_k)(j|i)     (the other view of i, and i's neighbours)
    q(j|i) = Σ_c φ(f_{a_i})_c φ(f_{b_j})_c / Σ_k φ(f_{b_k})_c

The paper's ablation ladder (Table 3): the baseline (no debiasing, no propagation),
+ debiasing, + kNN propagation; :data:`LADDER` names its rungs.

References:
    Alshammari et al., "I-Con", ICLR 2025, arXiv:2504.16929, §5 and Table 3 (α ≈ 0.6–0.8 for
    clustering; p = augmentations + kNN(k = 3) + walks; a linear head on frozen features,
    no feature normalisation). The paper's batches hold 2 augmentations and 2 neighbours of
    each image; here every step is the full data set.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sslscope.icon.supervisory import knn_graph, knn_walks

# The ablation ladder of I-Con's Table 3 as keyword arguments of infonce_clustering.
LADDER: dict[str, dict[str, float | int]] = {
    "baseline": {"debias": 0.0, "walk_length": 1},
    "+ debias": {"debias": 0.6, "walk_length": 1},
    "+ kNN propagation": {"debias": 0.6, "walk_length": 2},
}


def _neighbours(features: Tensor, *, knn_k: int, walk_length: int) -> Tensor:
    p_sup = knn_graph(features, k=knn_k, metric="cosine")
    return knn_walks(p_sup, length=walk_length) if walk_length > 1 else p_sup


class ClusterKL:
    r"""KL(p̃ ‖ q̃) for a fixed p and the two-sided cluster kernel, cheaper than the general path.

        p̃ = (1 − α) p + α/N,   q̃(j|i) = (1 − α) Σ_c a_ic b_jc / Σ_k b_kc + α/N,
        L = (1/N) Σ_ij p̃_ij log p̃_ij − (1/N) Σ_ij p̃_ij log q̃_ij

    This is :func:`sslscope.icon.divergence.icon_loss` of ``p`` and
    ``cluster_kernel``-style log q (every one of the N candidates allowed, j = i included)
    with α on both sides (tested equal in float64); p̃ and its entropy are computed once, and
    q̃ is one ``addmm`` and one ``log`` (three times faster per step on 1,797 points).

    Args:
        p_sup: the supervisory kernel (N, N), rows summing to 1.
        alpha: α ∈ [0, 1) for both sides.
    """

    def __init__(self, p_sup: Tensor, alpha: float) -> None:
        n = p_sup.shape[1]
        self.alpha = alpha
        self.uniform = alpha / n
        self.p = (1 - alpha) * p_sup + self.uniform  # (N, N)
        self.entropy = torch.special.xlogy(self.p, self.p).sum() / p_sup.shape[0]

    def __call__(self, anchors: Tensor, candidates: Tensor) -> Tensor:
        """The loss of soft assignments ``anchors`` (N, m) against ``candidates`` (N, m)."""
        bias = anchors.new_full((1, 1), self.uniform)
        q = torch.addmm(bias, anchors / candidates.sum(dim=0), candidates.T, alpha=1 - self.alpha)
        return self.entropy - (self.p * q.log()).sum() / anchors.shape[0]


def infonce_clustering(
    features: Tensor,
    clusters: int,
    *,
    views: Tensor | None = None,
    knn_k: int = 3,
    walk_length: int = 2,
    debias: float = 0.6,
    steps: int = 200,
    lr: float = 1e-2,
    restarts: int = 3,
    seed: int = 0,
) -> Tensor:
    r"""Cluster ``features`` with a linear head trained by the debiased InfoNCE-clustering loss.

        p̃ = debias_α(p),   q̃ = debias_α(q),   φ = softmax(W f + b),
        L = (1/N) Σ_i KL(p̃(·|i) ‖ q̃(·|i))       (p and q: module docstring)

    Like k-means' restarts (and TEMI's many heads, whose protocol the paper follows),
    ``restarts`` heads train from different initialisations and the one with the lowest loss,
    averaged over its last tenth of steps, gives the clusters: no label is looked at.

    Args:
        features: frozen features (N, D) of the clean images, any float dtype; used as given
            (no normalisation). The neighbour graph and the returned clusters are theirs.
        clusters: m, the number of clusters (the head's outputs).
        views: optional (A, N, D) features of A ≥ 2 augmented copies of the same N images: p
            gains the augmentation part and the head trains on the copies.
        knn_k: neighbours of p's graph (cosine), the paper's k = 3.
        walk_length: L of the propagation P + … + P^L; 1 is none.
        debias: α for p and for q (the paper's clustering range 0.6–0.8); 0 is none.
        steps: full-batch Adam steps per head.
        lr: Adam's learning rate.
        restarts: heads trained; the lowest loss wins.
        seed: of the heads' initialisations and the copies drawn.

    Returns:
        (N,) int64 cluster ids: the argmax of φ on ``features``, on their device.
    """
    n = features.shape[0]
    if clusters < 2 or features.ndim != 2 or n <= max(clusters, knn_k):
        raise ValueError(f"need (N, D) features with N > max(clusters, knn_k) and at least 2 "
                         f"clusters, got {tuple(features.shape)} and {clusters}")
    if views is not None and (views.ndim != 3 or views.shape[0] < 2
                              or views.shape[1:] != features.shape):
        raise ValueError(f"views must be (A ≥ 2, N, D) = (A, {n}, {features.shape[1]}), got "
                         f"{tuple(views.shape)}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps and restarts must be at least 1, got {steps} and {restarts}")
    f = features.float()
    p_sup = _neighbours(f, knn_k=knn_k, walk_length=walk_length)
    if views is not None:  # the other view of the same image is half of p
        p_sup = (p_sup + torch.eye(n, dtype=f.dtype, device=f.device)) / 2
    loss_of = ClusterKL(p_sup, debias)
    bank = None if views is None else views.float()  # once, not at every step
    best: tuple[float, nn.Module] | None = None
    for restart in range(restarts):
        head, final_loss = _train_head(f, bank, loss_of, clusters, steps=steps, lr=lr,
                                       seed=seed * restarts + restart)
        if best is None or final_loss < best[0]:
            best = (final_loss, head)
    assert best is not None
    with torch.no_grad():
        return best[1](f).argmax(dim=1)


def _train_head(f: Tensor, views: Tensor | None, loss_of: ClusterKL, clusters: int, *,
                steps: int, lr: float, seed: int) -> tuple[nn.Module, float]:
    """One head trained from ``seed``; returns it and its loss over the last tenth of steps."""
    n = f.shape[0]
    torch.manual_seed(seed)
    head = nn.Linear(f.shape[1], clusters).to(f.device)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    draws = torch.Generator(device="cpu").manual_seed(seed)
    rows = torch.arange(n, device=f.device)
    tail: list[Tensor] = []
    for step in range(steps):
        if views is None:  # both sides are the clean features; q keeps j = i (Thm 13's form)
            anchors = candidates = torch.softmax(head(f), dim=1)
        else:  # two different copies of every image
            a = torch.randint(views.shape[0], (n,), generator=draws)
            b = (a + torch.randint(1, views.shape[0], (n,), generator=draws)) % views.shape[0]
            anchors = torch.softmax(head(views[a.to(f.device), rows]), dim=1)
            candidates = torch.softmax(head(views[b.to(f.device), rows]), dim=1)
        loss = loss_of(anchors, candidates)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.detach())
    return head, float(torch.stack(tail).mean())
