"""The I-Con study's clustering ladder: InfoNCE clustering against k-means on frozen features.

For a finished run, :func:`feature_bank` computes the backbone features h of every image of its
data set (training and test splits together: clustering uses no labels) and of ``copies``
augmented copies of each, drawn with the run's own augmentation recipe. :func:`ladder` clusters
them with k-means (on h and on L2-normalised h: the stronger is the bar) and with every rung of
:data:`sslscope.icon.clustering.LADDER`, each scored by Hungarian accuracy against the labels.

Reference: Alshammari et al., "I-Con", ICLR 2025, §5, Tables 3 and 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import Tensor

from sslscope.data import load_dataset
from sslscope.evaluate.clustering import hungarian_accuracy
from sslscope.evaluate.suite import extract_features
from sslscope.icon.clustering import LADDER, infonce_clustering
from sslscope.operations import load_trained_parts
from sslscope.runs import RunFiles
from sslscope.views import make_views

COPIES = 8  # augmented copies of each image in the bank: two are drawn per step
STEPS = 200  # Adam steps of each clustering head (lr 1e-2, full batch, 3 restarts)


def feature_bank(run_dir: str | Path, *, copies: int = COPIES,
                 seed: int = 0) -> tuple[Tensor, Tensor, np.ndarray]:
    """The features h of every image of a finished run's data set, clean and augmented.

    Returns:
        (clean (N, D) float32, views (copies, N, D) float32, labels (N,) int64), on the CPU,
        N = training + test images.
    """
    files = RunFiles(Path(run_dir)).require()
    cfg = files.load_config()
    data = load_dataset(cfg.dataset, cfg.data_dir)
    device = torch.device("cpu")
    encoder = load_trained_parts(files, cfg, data, device).encoder
    images = torch.cat([data.train_x, data.test_x])
    labels = torch.cat([data.train_y, data.test_y]).numpy()
    clean = extract_features(encoder, images, device=device)["h"]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        views = torch.stack([extract_features(encoder, view, device=device)["h"]
                             for view in make_views(images, cfg.augment, copies, generator)])
    return clean, views, labels


def kmeans_accuracy(x: Tensor, labels: np.ndarray, *, normalise: bool, seed: int) -> float:
    """Hungarian accuracy of k-means (k = number of classes, 10 restarts) on ``x`` (N, D)."""
    feats = x.double()
    if normalise:
        feats = torch.nn.functional.normalize(feats, dim=1)
    k = int(labels.max()) + 1
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(feats.numpy())
    return hungarian_accuracy(clusters, labels)


def ladder(clean: Tensor, views: Tensor, labels: np.ndarray, *, steps: int = STEPS,
           seed: int = 0) -> dict[str, Any]:
    """k-means and every rung of the ladder on one model's features.

    Returns:
        {"kmeans": acc on h, "kmeans_l2": acc on normalised h, "kNN only": the full recipe
        without the augmentation part of p, rung name: acc, ...}; accuracies in [0, 1].
    """
    k = int(labels.max()) + 1
    result: dict[str, Any] = {
        "kmeans": kmeans_accuracy(clean, labels, normalise=False, seed=seed),
        "kmeans_l2": kmeans_accuracy(clean, labels, normalise=True, seed=seed),
    }
    for rung, options in LADDER.items():
        clusters = infonce_clustering(clean, k, views=views, steps=steps, seed=seed, **options)
        result[rung] = hungarian_accuracy(clusters.numpy(), labels)
    result["kNN only"] = hungarian_accuracy(
        infonce_clustering(clean, k, steps=steps, seed=seed).numpy(), labels)
    return result
