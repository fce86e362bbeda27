"""Debiased InfoNCE clustering (`sslscope.icon.clustering`) on digits features.

Targets asserted: on 600 standardised digits (pixels), the full recipe's Hungarian accuracy is
at least k-means' on the same features (measured: 0.79 against 0.67; the ladder's rungs 0.75,
0.77, 0.79, the order of the paper's Table 3); with noisy copies as the augmented views, 0.815,
still at least k-means; the fused ClusterKL equals icon_loss and its gradient in float64;
every rung uses at least half of the clusters and beats chance by far; the same seed gives
the same clusters; bad shapes raise.
"""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from sslscope.evaluate.clustering import hungarian_accuracy
from sslscope.icon.clustering import LADDER, ClusterKL, infonce_clustering
from sslscope.icon.divergence import icon_loss


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data - data.data.mean(0)) / (data.data.std(0) + 1e-6)
    return torch.tensor(x[:600], dtype=torch.float32), data.target[:600]


def test_full_recipe_is_near_kmeans(digits):
    x, y = digits
    ours = hungarian_accuracy(infonce_clustering(x, 10, steps=150).numpy(), y)
    kmeans = hungarian_accuracy(KMeans(10, n_init=3, random_state=0).fit_predict(x.numpy()), y)
    assert ours >= kmeans, (ours, kmeans)


@pytest.mark.parametrize("rung", list(LADDER))
def test_every_rung_trains_without_collapse(digits, rung):
    x, y = digits
    clusters = infonce_clustering(x, 10, steps=150, **LADDER[rung])
    assert len(np.unique(clusters.numpy())) >= 5
    assert hungarian_accuracy(clusters.numpy(), y) > 0.6  # chance is about 0.1


def test_augmented_copies_join_p_and_beat_kmeans(digits):
    # Copies with feature noise stand in for augmented views: the augmentation part of p ties
    # each copy to its image's other copy, so the head learns what survives the noise.
    x, y = digits
    copies = x[None] + 0.5 * torch.randn(4, *x.shape, generator=torch.Generator().manual_seed(0))
    ours = hungarian_accuracy(infonce_clustering(x, 10, views=copies, steps=150).numpy(), y)
    kmeans = hungarian_accuracy(KMeans(10, n_init=3, random_state=0).fit_predict(x.numpy()), y)
    assert ours >= kmeans, (ours, kmeans)
    with pytest.raises(ValueError, match="views must be"):
        infonce_clustering(x, 10, views=copies[:1])
    with pytest.raises(ValueError, match="views must be"):
        infonce_clustering(x, 10, views=copies[:, :10])


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_cluster_kl_is_icon_loss_of_the_cluster_kernel(alpha):
    # The fast path against the general one: icon_loss of log(a/S @ b.T), α on both sides.
    g = torch.Generator().manual_seed(0)
    p = torch.rand(40, 40, generator=g, dtype=torch.float64) ** 6
    p = p / p.sum(dim=1, keepdim=True)
    logits = torch.randn(2, 40, 5, generator=g, dtype=torch.float64, requires_grad=True)
    a, b = torch.softmax(logits, dim=2)
    reference = icon_loss(p, torch.log((a / b.sum(0)) @ b.T), alpha_p=alpha, alpha_q=alpha)
    fast = ClusterKL(p, alpha)(a, b)
    assert abs(fast.item() - reference.item()) < 1e-12
    (g_ref,) = torch.autograd.grad(reference, logits, retain_graph=True)
    (g_fast,) = torch.autograd.grad(fast, logits)
    assert torch.allclose(g_fast, g_ref, atol=1e-12, rtol=0)


def test_seeded_and_checked(digits):
    x, _ = digits
    a = infonce_clustering(x[:200], 10, steps=30, seed=1)
    assert torch.equal(a, infonce_clustering(x[:200], 10, steps=30, seed=1))
    with pytest.raises(ValueError, match="need \\(N, D\\) features"):
        infonce_clustering(x[:5], 10)
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        infonce_clustering(x, 10, restarts=0)
