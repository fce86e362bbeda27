"""Frozen-feature evaluation against independent references: sklearn, NumPy loops, hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sslscope.evaluate import (
    class_means,
    knn_accuracy,
    knn_classify,
    linear_probe,
    ncc_accuracy,
    ncc_predict,
)
from sslscope.evaluate.probes import _fit_lbfgs

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def gaussian_classes(n, num_classes, dim, *, sep, seed, dtype=torch.float32):
    """n points in `num_classes` isotropic Gaussian classes whose means have scale `sep`."""
    g = torch.Generator().manual_seed(seed)
    means = sep * torch.randn(num_classes, dim, generator=g, dtype=torch.float64)
    y = torch.arange(n) % num_classes
    x = means[y] + torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x.to(dtype), y


@pytest.fixture(scope="module")
def digits():
    """sklearn digits, raw pixels 0..16, stratified 75/25 split: 1347 train, 450 test, D = 64."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(xtr), torch.tensor(ytr), f(xte), torch.tensor(yte)


# --- linear probe -----------------------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [1e-2, 1e-4])
def test_linear_probe_matches_sklearn_at_fixed_weight_decay(weight_decay):
    # Shifted, unevenly scaled features, 4 classes (sklearn fits a softmax only for > 2 classes).
    x, y = gaussian_classes(500, 4, 20, sep=0.5, seed=1, dtype=torch.float64)
    x = 3 + x * torch.linspace(0.1, 10, 20, dtype=torch.float64)
    xtr, ytr, xte, yte = x[:300], y[:300], x[300:], y[300:]
    mean, std = xtr.mean(0), xtr.std(0, correction=0)
    ztr, zte = ((xtr - mean) / std).numpy(), ((xte - mean) / std).numpy()

    # sklearn minimises C · Σ_i CE_i + ½ ‖W‖²_F (intercept unpenalised). Dividing by C · N
    # gives (1/N) Σ_i CE_i + ‖W‖²_F / (2 C N): our objective with weight_decay = 1 / (2 C N),
    # i.e. C = 1 / (2 · weight_decay · N), N the number of rows fitted.
    n = xtr.shape[0]
    ref = LogisticRegression(C=1 / (2 * weight_decay * n), tol=1e-12, max_iter=100_000)
    ref.fit(ztr, ytr.numpy())

    # The fit that linear_probe runs, on the same standardised float64 features.
    w, b = _fit_lbfgs(torch.from_numpy(ztr), ytr, 4, [weight_decay], None, max_iter=1000)
    prob = torch.softmax(torch.from_numpy(zte) @ w[0].T + b[0], dim=1).numpy()
    np.testing.assert_allclose(prob, ref.predict_proba(zte), atol=1e-4)
    np.testing.assert_array_equal(prob.argmax(1), ref.predict(zte))

    result = linear_probe(xtr, ytr, xte, yte, weight_decays=(weight_decay,), val_fraction=0)
    assert result.test_acc == ref.score(zte, yte.numpy())
    assert result.train_acc == ref.score(ztr, ytr.numpy())
    assert result.weight_decay == weight_decay and math.isnan(result.val_acc)

    # float32 reaches the same optimum to float32 precision.
    w32, b32 = _fit_lbfgs(
        torch.from_numpy(ztr).float(), ytr, 4, [weight_decay], None, max_iter=1000
    )
    prob32 = torch.softmax(torch.from_numpy(zte).float() @ w32[0].T + b32[0], dim=1).numpy()
    np.testing.assert_allclose(prob32, ref.predict_proba(zte), atol=2e-3)


def test_linear_probe_separable_data():
    x, y = gaussian_classes(600, 5, 32, sep=3.0, seed=2)
    result = linear_probe(x[:400], y[:400], x[400:], y[400:])
    assert result.test_acc >= 0.99 and result.train_acc >= 0.99 and result.val_acc >= 0.99


def test_search_breaks_ties_towards_larger_weight_decay():
    # Every weight decay classifies the validation split perfectly: the tie goes to the largest,
    # whatever the order of the grid.
    x, y = gaussian_classes(400, 3, 8, sep=4.0, seed=3)
    result = linear_probe(x[:300], y[:300], x[300:], y[300:], weight_decays=(1e-2, 1e-4, 1e-3))
    assert result.val_acc == 1.0
    assert result.weight_decay == 1e-2


def test_search_picks_the_best_validation_accuracy(digits):
    grid = (1e-5, 1e-3, 1e-1)
    searched = linear_probe(*digits, weight_decays=grid)
    # Same seed, same split: each single-value call reports its own validation accuracy.
    alone = {wd: linear_probe(*digits, weight_decays=(wd,)).val_acc for wd in grid}
    assert searched.val_acc == max(alone.values())
    assert alone[searched.weight_decay] == searched.val_acc


def test_probe_needs_a_validation_sample():
    # The split's properties are tested in test_splits.py; an empty validation part is the
    # probe's error: 0.1 of 4 rounds to 0 in each class.
    x, y = torch.randn(8, 3), torch.arange(8) % 2
    with pytest.raises(ValueError, match="leaves no validation sample"):
        linear_probe(x, y, x, y, val_fraction=0.1)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_linear_probe_is_deterministic(batch_size):
    x, y = gaussian_classes(300, 3, 10, sep=0.6, seed=4)

    def run():
        return linear_probe(
            x[:200], y[:200], x[200:], y[200:], batch_size=batch_size, epochs=5, seed=7
        )

    assert run() == run()


def test_mini_batch_close_to_full_batch():
    # Correlated, shifted features make the conditioning realistic for Adam.
    x, y = gaussian_classes(3000, 10, 48, sep=0.35, seed=5)
    x = x @ torch.randn(48, 48, generator=torch.Generator().manual_seed(0)) + 5
    args = x[:2000], y[:2000], x[2000:], y[2000:]
    full = linear_probe(*args)
    mini = linear_probe(*args, batch_size=256)
    assert 0.6 < full.test_acc < 0.95  # neither trivial nor saturated
    assert abs(mini.test_acc - full.test_acc) <= 0.02


def test_the_suite_reports_each_probe_under_the_probe_vocabulary():
    # The suite's keys are "<probe>/<metric>" with every probe of PROBES, and its numbers are the
    # probes' own: the linear fields are linear_probe's, the kNN accuracy is knn_accuracy's.
    from sslscope.evaluate.suite import PROBES, ProbeSettings, probe_features

    x, y = gaussian_classes(120, 3, 5, sep=2.0, seed=11)
    settings = ProbeSettings(knn_k=5, knn_temperature=0.2, probe_batch_size=0, seed=3)
    out = probe_features(x[:80], y[:80], x[80:], y[80:], settings)
    assert {key.split("/")[0] for key in out} == set(PROBES)
    linear = linear_probe(x[:80], y[:80], x[80:], y[80:], seed=3)
    assert {k: out[f"linear/{k}"] for k in linear.as_dict()} == {
        "test_acc": linear.test_acc, "train_acc": linear.train_acc,
        "val_acc": linear.val_acc, "weight_decay": linear.weight_decay,
    }
    assert out["knn/test_acc"] == knn_accuracy(x[:80], y[:80], x[80:], y[80:], k=5,
                                               temperature=0.2)


def test_linear_probe_rejects_bad_input():
    x, y = gaussian_classes(40, 2, 3, sep=1.0, seed=6)
    with pytest.raises(ValueError, match="features"):
        linear_probe(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="shape"):
        linear_probe(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(x, torch.zeros_like(y), x, y)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(bad, y, x, y)
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(x, y, bad, y)
    with pytest.raises(ValueError, match="integer labels"):
        linear_probe(x, y.float(), x, y)
    with pytest.raises(ValueError, match="weight_decays"):
        linear_probe(x, y, x, y, weight_decays=())
    with pytest.raises(ValueError, match="val_fraction"):
        linear_probe(x, y, x, y, val_fraction=0)


def test_inputs_are_not_modified():
    x, y = gaussian_classes(120, 3, 6, sep=1.0, seed=14)
    args = (x[:80], y[:80], x[80:], y[80:])
    copies = [a.clone() for a in args]
    linear_probe(*args)
    linear_probe(*args, batch_size=32, epochs=2)
    knn_accuracy(*args)
    ncc_accuracy(*args)
    assert all(torch.equal(a, c) for a, c in zip(args, copies, strict=True))


# --- weighted kNN -----------------------------------------------------------------------------


def knn_reference(train_x, train_y, test_x, k, temperature, num_classes):
    """Brute-force weighted kNN, one test point and one train point at a time."""
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    preds = []
    for q in test_x:
        sims = np.array([unit(q) @ unit(t) for t in train_x])
        scores = np.zeros(num_classes)
        for j in np.argsort(-sims, kind="stable")[:k]:
            scores[train_y[j]] += np.exp(sims[j] / temperature)
        preds.append(int(np.argmax(scores)))  # first maximum: the lowest class index
    return np.array(preds)


@pytest.mark.parametrize(
    ("k", "temperature", "chunk_size"),
    [(20, 0.1, 1024), (5, 0.07, 7), (1, 0.5, 16), (500, 0.1, 13)],
)
def test_knn_matches_brute_force(k, temperature, chunk_size):
    g = torch.Generator().manual_seed(k)
    train_x = torch.randn(150, 6, generator=g, dtype=torch.float64)
    train_y = torch.randint(0, 5, (150,), generator=g)
    test_x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    pred = knn_classify(
        train_x, train_y, test_x, k=k, temperature=temperature, chunk_size=chunk_size, num_classes=5
    )
    ref = knn_reference(train_x.numpy(), train_y.numpy(), test_x.numpy(), k, temperature, 5)
    np.testing.assert_array_equal(pred.numpy(), ref)


@pytest.mark.parametrize("labels", [[1, 0, 2], [0, 1, 2]])
def test_knn_class_tie_goes_to_lowest_index(labels):
    # Two identical train points with different labels are the two nearest neighbours of the
    # query, so classes 0 and 1 get exactly the same score.
    train_x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    train_y = torch.tensor(labels)
    test_x = torch.tensor([[2.0, 0.1]])
    assert knn_classify(train_x, train_y, test_x, k=2).tolist() == [0]
    ref = knn_reference(train_x.numpy(), train_y.numpy(), test_x.numpy(), 2, 0.1, 3)
    assert ref.tolist() == [0]


def test_knn_k1_on_train_is_perfect():
    x, y = gaussian_classes(200, 7, 16, sep=0.1, seed=8)  # classes overlap, points distinct
    assert knn_accuracy(x, y, x, y, k=1) == 1.0


def test_knn_invariant_to_positive_row_rescaling():
    x, y = gaussian_classes(300, 4, 12, sep=0.4, seed=9)
    g = torch.Generator().manual_seed(1)
    scale = lambda n: torch.rand(n, 1, generator=g) * 100 + 0.01  # noqa: E731
    train_x, test_x = x[:200], x[200:]
    pred = knn_classify(train_x, y[:200], test_x)
    pred_scaled = knn_classify(train_x * scale(200), y[:200], test_x * scale(100))
    assert torch.equal(pred, pred_scaled)


def test_knn_clips_k_and_survives_small_temperature():
    x, y = gaussian_classes(30, 3, 4, sep=1.0, seed=10)
    big_k = knn_classify(x, y, x, k=1000)
    assert torch.equal(big_k, knn_classify(x, y, x, k=30))
    # exp(1 / 0.001) overflows without the max subtraction
    assert knn_accuracy(x, y, x, y, k=5, temperature=1e-3) == 1.0


# --- nearest class centre ---------------------------------------------------------------------


def test_ncc_hand_computed_example():
    train_x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    train_y = torch.tensor([0, 0, 1, 1])
    torch.testing.assert_close(
        class_means(train_x, train_y, 2), torch.tensor([[1.0, 0.0], [1.0, 4.0]])
    )
    # squared distances to (μ0, μ1) = (1, 0), (1, 4):
    # (1, 1): 1 vs 9 -> 0; (1, 3): 9 vs 1 -> 1; (5, 2.1): 20.41 vs 19.61 -> 1;
    # (0, 1.9): 4.61 vs 5.41 -> 0; (1, 2): 4 vs 4, a tie -> 0 (lowest index)
    test_x = torch.tensor([[1.0, 1.0], [1.0, 3.0], [5.0, 2.1], [0.0, 1.9], [1.0, 2.0]])
    assert ncc_predict(train_x, train_y, test_x).tolist() == [0, 1, 1, 0, 0]
    test_y = torch.tensor([0, 1, 0, 0, 0])
    assert ncc_accuracy(train_x, train_y, test_x, test_y) == 0.8
    assert ncc_accuracy(train_x, train_y, train_x, train_y) == 1.0  # NCC train accuracy


def test_ncc_separated_clusters():
    x, y = gaussian_classes(500, 10, 16, sep=10.0, seed=11)
    assert ncc_accuracy(x[:300], y[:300], x[300:], y[300:]) == 1.0


def test_ncc_never_predicts_a_class_absent_from_train():
    x, y = gaussian_classes(90, 3, 5, sep=5.0, seed=12)
    keep = y != 1
    means = class_means(x[keep], y[keep], 3)
    assert means[1].isnan().all() and not means[[0, 2]].isnan().any()
    assert 1 not in ncc_predict(x[keep], y[keep], x, num_classes=3).tolist()


# --- a real data set --------------------------------------------------------------------------


def test_digits_pixels(digits):
    # Measured (torch 2.13 CPU): linear 436/450 = 0.9689 (wd 1e-3), mini-batch B = 256 the same,
    # kNN 440/450 = 0.9778, NCC 408/450 = 0.9067. Bounds leave ~1 point of slack.
    assert linear_probe(*digits).test_acc >= 0.96
    assert linear_probe(*digits, batch_size=256).test_acc >= 0.96
    assert knn_accuracy(*digits) >= 0.97
    assert ncc_accuracy(*digits) >= 0.89


# --- GPU --------------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_cuda
def test_cuda_matches_cpu(digits):
    cuda = [t.cuda() for t in digits]
    assert knn_classify(*cuda[:3]).cpu().equal(knn_classify(*digits[:3]))
    assert ncc_accuracy(*cuda) == ncc_accuracy(*digits)
    full_cpu, full_gpu = linear_probe(*digits), linear_probe(*cuda)
    assert full_gpu.weight_decay == full_cpu.weight_decay
    assert abs(full_gpu.test_acc - full_cpu.test_acc) <= 0.005
    mini = linear_probe(*cuda, batch_size=256)
    assert abs(mini.test_acc - full_cpu.test_acc) <= 0.02


@pytest.mark.gpu
@needs_cuda
def test_cuda_scales_to_50k_by_2048():
    g = torch.Generator(device="cuda").manual_seed(13)
    means = 0.1 * torch.randn(100, 2048, generator=g, device="cuda")
    y = torch.arange(60_000, device="cuda") % 100
    x = means[y] + torch.randn(60_000, 2048, generator=g, device="cuda")
    args = x[:50_000], y[:50_000], x[50_000:], y[50_000:]
    assert knn_accuracy(*args) > 0.05  # chance is 0.01
    mini = linear_probe(*args, batch_size=1024, epochs=10)
    full = linear_probe(*args)
    assert mini.test_acc > 0.05 and full.test_acc > 0.05
    assert abs(mini.test_acc - full.test_acc) <= 0.05
