"""Debiased InfoNCE clustering (I-Con §5): a linear clustering head on frozen features.

    clusters = infonce_clustering(features, 10)                     # the paper's full recipe
    clusters = infonce_clustering(features, 10, debias=0, walk_length=1)   # its baseline

The head maps each feature vector to soft assignments φ_i = softmax(W f_i + b) over m
clusters; the learned kernel is the uniform-on-clusters kernel of φ (pick one of i's clusters,
then a member uniformly, :func:`sslscope.icon.learned.cluster_kernel`), the supervisory kernel
is each point's k nearest neighbours in feature space (k = 3), spread by walks of length L and
debiased (α on both sides, the paper's "debiased InfoNCE clustering"); the loss is the mean
KL(p(·|i) ‖ q(·|i)). Full batch: p is fixed (the features are), computed once.

The paper's ablation ladder (Table 3): the baseline (kNN p, no debiasing, no propagation),
+ debiasing, + kNN propagation; :data:`LADDER` names its rungs for the study.

References:
    Alshammari et al., "I-Con", ICLR 2025, arXiv:2504.16929, §5 and Table 3 (α ≈ 0.6–0.8 for
    clustering; p = augmentations + kNN(k = 3) + walks; a linear head on frozen features,
    no feature normalisation). Here the frozen features have no augmented copies, so p is the
    kNN part alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sslscope.icon.divergence import icon_loss
from sslscope.icon.learned import cluster_kernel
from sslscope.icon.supervisory import knn_graph, knn_walks

# The ablation ladder of I-Con's Table 3 as keyword arguments of infonce_clustering.
LADDER: dict[str, dict[str, float | int]] = {
    "baseline": {"debias": 0.0, "walk_length": 1},
    "+ debias": {"debias": 0.6, "walk_length": 1},
    "+ kNN propagation": {"debias": 0.6, "walk_length": 2},
}


def infonce_clustering(
    features: Tensor,
    clusters: int,
    *,
    knn_k: int = 3,
    walk_length: int = 2,
    debias: float = 0.6,
    steps: int = 500,
    lr: float = 1e-2,
    seed: int = 0,
) -> Tensor:
    r"""Cluster ``features`` with a linear head trained by the debiased InfoNCE-clustering loss.

        p = debias_α(walks_L(kNN_k(f))),   q(j|i) = Σ_c φ_ic φ_jc / Σ_k φ_kc  (j ≠ i),
        φ = softmax(W f + b),   L = (1/N) Σ_i KL(p(·|i) ‖ debias_α(q)(·|i))

    Args:
        features: frozen features (N, D), any float dtype; used as given (no normalisation).
        clusters: m, the number of clusters (the head's outputs).
        knn_k: neighbours of p's graph (cosine), the paper's k = 3.
        walk_length: L of the propagation P + … + P^L; 1 is none.
        debias: α for p and for q (the paper's clustering range 0.6–0.8); 0 is none.
        steps: full-batch Adam steps.
        lr: Adam's learning rate.
        seed: of the head's initialisation.

    Returns:
        (N,) int64 cluster ids: the argmax of φ, on ``features``' device.
    """
    if clusters < 2 or features.ndim != 2 or features.shape[0] <= max(clusters, knn_k):
        raise ValueError(f"need (N, D) features with N > max(clusters, knn_k) and at least 2 "
                         f"clusters, got {tuple(features.shape)} and {clusters}")
    f = features.float()
    p_sup = knn_graph(f, k=knn_k, metric="cosine")
    if walk_length > 1:
        p_sup = knn_walks(p_sup, length=walk_length)
    torch.manual_seed(seed)
    head = nn.Linear(f.shape[1], clusters).to(f.device)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        probs = torch.softmax(head(f), dim=1)  # (N, m)
        log_q = cluster_kernel(probs, include_self=False)
        loss = icon_loss(p_sup, log_q, alpha_p=debias, alpha_q=debias)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return head(f).argmax(dim=1)
