"""Clustering accuracy: k-means on frozen features, clusters matched to classes by Hungarian.

No label is used to form the clusters; labels only score them, after the one-to-one
cluster → class assignment that maximises agreement (Kuhn's Hungarian method, solved with
:func:`scipy.optimize.linear_sum_assignment`). This is the unsupervised-clustering accuracy of
DEC / SCAN / I-Con, and the measure C1's InfoNCE-clustering comparison reports.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from torch import Tensor

from sslscope.evaluate.neighbours import check_labelled


def hungarian_accuracy(clusters: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> float:
    r"""Accuracy of cluster ids under the best one-to-one map from clusters to classes.

        acc = max_{m injective} (1/N) Σ_i 1[m(c_i) = y_i]

    Args:
        clusters: cluster id of each sample, shape (N,), integers ≥ 0.
        labels: true class of each sample, shape (N,), integers ≥ 0.

    Returns:
        A float in [0, 1]. With more clusters than classes (or the reverse), the unmatched
        clusters count as wrong.

    References:
        Kuhn, "The Hungarian method for the assignment problem", 1955; the metric as in
        Xie, Girshick & Farhadi, "Unsupervised Deep Embedding for Clustering Analysis"
        (DEC), ICML 2016, eq. 10.
    """
    c = np.asarray(torch.as_tensor(clusters).cpu(), dtype=np.int64)
    y = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
    if c.shape != y.shape or c.ndim != 1 or c.size == 0:
        raise ValueError(f"clusters and labels must be equal-length 1-D, got {c.shape}, {y.shape}")
    if c.min() < 0 or y.min() < 0:
        raise ValueError("cluster ids and labels must be non-negative integers")
    counts = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)  # (clusters, classes)
    np.add.at(counts, (c, y), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / y.size)


def kmeans_clustering(
    x: Tensor, y: Tensor, *, num_clusters: int | None = None, seed: int = 0, n_init: int = 3
) -> dict[str, float]:
    """k-means on L2-normalised features, scored against the labels.

    The features are L2-normalised first, so clusters follow the cosine geometry the kNN probe
    and the contrastive losses use (spherical k-means up to the centroid normalisation).

    Args:
        x: features, shape (N, D), any device; computed in float64 on the CPU.
        y: labels, shape (N,), values in [0, C).
        num_clusters: k; the number of classes present in ``y`` (max + 1) when None.
        seed: k-means++ seed, so the result is reproducible.
        n_init: k-means restarts; the lowest inertia wins.

    Returns:
        {"test_acc": Hungarian accuracy, "nmi": normalised mutual information (arithmetic
        mean), both in [0, 1]}. The key says test_acc because the evaluation clusters the
        test split's features.
    """
    check_labelled(x, y, "clustered")
    k = int(y.max()) + 1 if num_clusters is None else num_clusters
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"num_clusters must be between 1 and {x.shape[0]}, got {k}")
    feats = torch.nn.functional.normalize(x.detach().double(), dim=1).cpu().numpy()
    clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(feats)
    labels = y.cpu().numpy()
    return {
        "test_acc": hungarian_accuracy(clusters, labels),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }
