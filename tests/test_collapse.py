"""CDNV, NCC and the NCC/linear ratio against hand-computed cases and the definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from sslscope.data import load_dataset
from sslscope.data.hierarchy import SUPERCLASSES, superclass_labels
from sslscope.evaluate.collapse import LEVEL_WEIGHT_DECAY, cdnv, collapse_metrics


def test_cdnv_two_classes_in_one_dimension_by_hand():
    # Class 0 at {0, 2}: mean 1, Var = ((0-1)² + (2-1)²)/2 = 1. Class 1 at {5, 6, 7}: mean 6,
    # Var = (1 + 0 + 1)/3 = 2/3. ‖μ0 − μ1‖² = 25, so CDNV = (1 + 2/3) / (2·25) = 1/30.
    x = torch.tensor([[0.0], [2.0], [5.0], [6.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1, 1])
    result = cdnv(x, y)
    assert result.cdnv == pytest.approx(1 / 30, rel=1e-12)
    assert result.within_variance == pytest.approx((1 + 2 / 3) / 2, rel=1e-12)
    assert result.between_distance == pytest.approx(25.0, rel=1e-12)


def test_cdnv_is_zero_for_collapsed_classes_and_skips_absent_labels():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 3.0], [4.0, 4.0]])
    y = torch.tensor([0, 0, 2, 2, 5])  # labels 1, 3, 4 are absent: three classes
    result = cdnv(x, y)
    assert result.cdnv == 0.0 and result.within_variance == 0.0
    means = np.array([[1, 0], [0, 3], [4, 4]], dtype=float)
    pairs = [np.sum((means[i] - means[j]) ** 2) for i, j in itertools.combinations(range(3), 2)]
    assert result.between_distance == pytest.approx(np.mean(pairs))


def test_cdnv_matches_the_pairwise_definition_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)) + np.repeat(rng.normal(size=(4, 4)) * 3, 15, axis=0)
    y = np.repeat(np.arange(4), 15)
    mu = [x[y == c].mean(0) for c in range(4)]
    var = [np.mean(np.sum((x[y == c] - mu[c]) ** 2, 1)) for c in range(4)]
    ratios = [(var[i] + var[j]) / (2 * np.sum((mu[i] - mu[j]) ** 2))
              for i in range(4) for j in range(4) if i != j]
    result = cdnv(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    assert result.cdnv == pytest.approx(np.mean(ratios), rel=1e-6)
    # Invariant to a rotation and a translation of the features, scale-free.
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    moved = cdnv(torch.tensor(3 * x @ q + 5.0), torch.tensor(y))
    assert moved.cdnv == pytest.approx(result.cdnv, rel=1e-6)


def test_cdnv_needs_two_classes():
    with pytest.raises(ValueError, match="two classes"):
        cdnv(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))


def test_separated_clusters_have_perfect_ncc_and_a_ratio_of_one():
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(5) * 20
    y = torch.arange(5).repeat(40)
    x = centres[y] + torch.randn(200, 5, generator=gen)
    out = collapse_metrics(x[:100], y[:100], x[100:], y[100:])
    assert out["ncc_train_acc"] == 1.0 and out["ncc_test_acc"] == 1.0
    assert out["linear_test_acc"] == 1.0 and out["ncc_linear_ratio"] == 1.0
    assert out["cdnv"] < 0.01


def test_collapse_linear_probe_within_a_point_of_sklearn_on_digits():
    data = load_dataset("digits")
    train, test = (x.flatten(1).float() / 255 for x in (data.train_x, data.test_x))
    out = collapse_metrics(train, data.train_y, test, data.test_y, variance=False)
    mean, std = train.mean(0), train.std(0, unbiased=False)
    std[std == 0] = 1
    n = train.shape[0]
    # Our objective (1/N) Σ CE + wd ‖W‖² is sklearn's C Σ CE + ½‖W‖² with C = 1 / (2 wd N).
    reference = LogisticRegression(C=1 / (2 * LEVEL_WEIGHT_DECAY * n), max_iter=5000, tol=1e-8)
    reference.fit(((train - mean) / std).numpy(), data.train_y.numpy())
    expected = reference.score(((test - mean) / std).numpy(), data.test_y.numpy())
    assert abs(out["linear_test_acc"] - expected) <= 0.01
    assert set(out) == {"ncc_train_acc", "ncc_test_acc", "linear_test_acc", "ncc_linear_ratio"}


def test_superclass_maps():
    cifar = SUPERCLASSES["cifar100"]
    assert len(cifar.coarse_of) == 100 and len(cifar.names) == 20
    assert sorted(set(cifar.coarse_of)) == list(range(20))
    assert all(cifar.coarse_of.count(c) == 5 for c in range(20))  # five classes each
    digits = superclass_labels("digits", torch.arange(10))
    assert digits.tolist() == [0, 1, 2, 2, 1, 2, 0, 1, 0, 0]
    assert superclass_labels("cifar10", torch.arange(10)) is None
