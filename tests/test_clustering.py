"""Clustering accuracy against a brute-force reference, hand cases and properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sslscope.evaluate import hungarian_accuracy, kmeans_clustering
from sslscope.evaluate.suite import ProbeSettings, probe_features
from tests.test_evaluate import gaussian_classes


def brute_force_accuracy(clusters: np.ndarray, labels: np.ndarray) -> float:
    """max over every injective cluster → class map, by enumeration (the metric's definition)."""
    k, c = int(clusters.max()) + 1, int(labels.max()) + 1
    best = 0
    for image in itertools.permutations(range(max(k, c)), k):  # classes ≥ c match nothing
        best = max(best, int(sum(image[a] == b for a, b in zip(clusters, labels, strict=True))))
    return best / labels.size


def test_hungarian_hand_cases():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert hungarian_accuracy(np.array([2, 2, 0, 0, 1, 1]), labels) == 1.0  # a relabelling
    assert hungarian_accuracy(np.array([2, 2, 0, 1, 1, 1]), labels) == pytest.approx(5 / 6)
    assert hungarian_accuracy(np.zeros(6, dtype=int), labels) == pytest.approx(2 / 6)
    # Six singleton clusters: only three can be matched, one sample each.
    assert hungarian_accuracy(np.arange(6), labels) == pytest.approx(3 / 6)
    assert hungarian_accuracy(torch.tensor([1, 0]), torch.tensor([0, 1])) == 1.0  # tensors too


@pytest.mark.parametrize("seed", range(6))
def test_hungarian_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k, c = rng.integers(2, 6, size=2)
    clusters, labels = rng.integers(0, k, 23), rng.integers(0, c, 23)
    assert hungarian_accuracy(clusters, labels) == pytest.approx(
        brute_force_accuracy(clusters, labels), abs=1e-12)


def test_hungarian_is_invariant_to_renaming_clusters():
    rng = np.random.default_rng(0)
    clusters, labels = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
    renamed = rng.permutation(5)[clusters]
    assert hungarian_accuracy(renamed, labels) == hungarian_accuracy(clusters, labels)


def test_hungarian_rejects_bad_shapes():
    with pytest.raises(ValueError, match="equal-length"):
        hungarian_accuracy(np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        hungarian_accuracy(np.array([0, -1]), np.array([0, 1]))


def test_kmeans_recovers_separated_classes_and_ignores_row_scale():
    x, y = gaussian_classes(300, 6, 16, sep=6.0, seed=0)
    result = kmeans_clustering(x, y)
    assert result == {"test_acc": 1.0, "nmi": pytest.approx(1.0)}
    scaled = x * torch.rand(300, 1, generator=torch.Generator().manual_seed(1)).add(0.1)
    assert kmeans_clustering(scaled, y) == result  # L2-normalised first: cosine geometry


def test_kmeans_on_noise_is_near_chance():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(600, 8, generator=g), torch.randint(0, 4, (600,), generator=g)
    result = kmeans_clustering(x, y)
    # Chance with the best matching of 4 clusters is a little above 1/4; NMI near 0.
    assert 0.25 <= result["test_acc"] < 0.35 and result["nmi"] < 0.02


def test_kmeans_is_seeded_and_checks_k():
    x, y = gaussian_classes(120, 3, 5, sep=0.7, seed=2)
    assert kmeans_clustering(x, y, seed=4) == kmeans_clustering(x, y, seed=4)
    with pytest.raises(ValueError, match="num_clusters must be between 1 and 120"):
        kmeans_clustering(x, y, num_clusters=121)
    with pytest.raises(ValueError, match="integer labels"):
        kmeans_clustering(x, y.float())


def test_probe_features_reports_ncc_and_clustering():
    x, y = gaussian_classes(400, 4, 10, sep=5.0, seed=3)
    out = probe_features(x[:300], y[:300], x[300:], y[300:], ProbeSettings(20, 0.1, 0, 0))
    assert out["ncc/test_acc"] == 1.0 and out["ncc/train_acc"] == 1.0
    assert out["cluster/test_acc"] == 1.0 and out["cluster/nmi"] == pytest.approx(1.0)
    assert set(out) >= {"linear/test_acc", "knn/test_acc"}
