"""The NTK kernel-prediction experiment (sslscope.theory.ntk_experiment), against analytic facts."""

import json

import numpy as np
import pytest
import torch

from sslscope.theory.kernel import empirical_ntk, principal_angles
from sslscope.theory.ntk_experiment import TwoLayerMLP, digits_pairs, ntk_prediction


def _cross_correlation(z: np.ndarray, n: int) -> np.ndarray:
    """C = (Z_aᵀ Z_b + Z_bᵀ Z_a) / (2n) of rows [views a; views b], computed independently."""
    c = z[:n].T @ z[n:2 * n] / n
    return (c + c.T) / 2


def test_ntk_is_random_features_block_plus_hidden_block():
    # The closed form of the module docstring, against torch.func's Jacobians.
    m, h, d = 5, 7, 3
    model = TwoLayerMLP(m, h, d, init_scale=0.7, seed=3)
    x = torch.randn(6, m, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        phi = model.features(x)
        active = (x @ model.w1.T > 0).double()  # (N, h)
        omega = (model.w2 ** 2).sum(0) / d  # (h,)
        expected = phi @ phi.T + (x @ x.T / m) * ((active * omega) @ active.T / h)
    torch.testing.assert_close(empirical_ntk(model, x), expected, rtol=1e-12, atol=1e-14)


def test_prediction_agrees_with_training_on_digits():
    x, x_prime, x_test = digits_pairs(50, 50)
    r = ntk_prediction(x, x_prime, x_test, width=256)
    # Training reached the zero-loss set C = I (checked here, not by the loss function).
    assert r.final_loss < 1e-10
    np.testing.assert_allclose(_cross_correlation(r.trained, 50), np.eye(4), atol=1e-6)
    # Measured 0.9959 / 0.9959 / 0.9916, baseline 0.318, angles (1.3, 2.5, 3.9, 4.4)°.
    assert r.cka_train > 0.99 and r.cka_test > 0.99 and r.cka_init_ntk_train > 0.98
    assert max(r.angles_train_deg) < 8
    assert r.baseline_cka_train < 0.6 and r.cka_train > r.baseline_cka_train + 0.3
    # The predicted embedding has C = I too: the kernel solution sits on the same zero-loss set.
    np.testing.assert_allclose(_cross_correlation(r.predicted, 50), np.eye(4), atol=1e-8)
    assert r.predicted.shape == r.trained.shape == (150, 4)
    assert 0 < r.w1_block_fraction < 0.5 and 0 < r.w1_relative_change < 0.2
    json.dumps(r.as_dict())  # numbers and lists only
    assert "predicted" not in r.as_dict() and "model" not in r.as_dict()


def test_large_init_leaves_the_kernel_regime():
    # methods.md: "expect high alignment at ... small init". Measured at width 256: CKA 0.996 vs
    # 0.933, largest angle 4.4° vs 18.5°.
    data = digits_pairs(50, 10)
    small = ntk_prediction(*data, width=256, init_scale=0.01)
    large = ntk_prediction(*data, width=256, init_scale=1.0)
    assert large.final_loss < 1e-8
    assert small.cka_train > large.cka_train + 0.04
    assert max(small.angles_train_deg) < max(large.angles_train_deg) - 5


def test_identical_views_learn_kernel_pca():
    # With x' = x, K = [[K_n, K_n], [K_n, K_n]] and K_Γ has eigenvalues μ_a / n (μ_a, v_a: the
    # eigenpairs of K_n); the prediction is f(x_i) = √n v_a(i) and, for a new point,
    # f_a(x) = √n v_aᵀ k_n(x) / μ_a (the Nyström extension of kernel PCA).
    n, d = 30, 2
    x, _, x_test = digits_pairs(n, 8, seed=1)
    r = ntk_prediction(x, x, x_test, width=256, d=d, init_scale=1e-4)
    data = torch.from_numpy(np.concatenate([x, x_test]))
    k = empirical_ntk(r.model, data).numpy()  # the end NTK on [x; x_test]
    mu, v = np.linalg.eigh(k[:n, :n])
    mu, v = mu[::-1][:d], v[:, ::-1][:, :d]
    np.testing.assert_allclose(r.kernel_eigenvalues[:d], mu / n, rtol=1e-8)

    pred = r.predicted
    np.testing.assert_allclose(pred[:n], pred[n:2 * n], atol=1e-8)
    signs = np.sign((pred[:n] * v).sum(0))  # eigenvectors are defined up to sign
    np.testing.assert_allclose(pred[:n], np.sqrt(n) * v * signs, atol=1e-6)
    nystrom = np.sqrt(n) * k[n:, :n] @ v / mu * signs
    np.testing.assert_allclose(pred[2 * n:], nystrom, atol=1e-6)

    # The trained network itself spans the top-d kernel PCA directions, of the NTK at init as
    # well as at the end (the experiment, not an identity: it fails when the step times of
    # modes d and d + 1 nearly tie, e.g. 42° at width 1024, d = 2, init_scale 0.01, seed 0).
    # Measured: (1.5, 3.9)° at init, (1.2, 4.0)° at the end; an untrained network: (24, 89)°.
    assert r.final_loss < 1e-10
    v_init = np.linalg.eigh(empirical_ntk(TwoLayerMLP(64, 256, d, 1e-4, 0),
                                          torch.from_numpy(x)).numpy())[1][:, ::-1][:, :d]
    with torch.no_grad():
        z_random = TwoLayerMLP(64, 256, d, 1.0, 7)(torch.from_numpy(x)).numpy()
    for basis in (v, v_init):
        assert np.degrees(principal_angles(r.trained[:n], basis)).max() < 8
    assert np.degrees(principal_angles(z_random, v)).max() > 45


def test_bad_inputs_raise():
    x, x_prime, x_test = digits_pairs(10, 4)
    fast = dict(width=16, steps=2)
    with pytest.raises(ValueError, match="one shape"):
        ntk_prediction(x, x_prime[:9], x_test, **fast)
    with pytest.raises(ValueError, match="x_test must be"):
        ntk_prediction(x, x_prime, x_test[:, :10], **fast)
    with pytest.raises(ValueError, match="finite"):
        ntk_prediction(x, np.where(x_prime > 0.5, np.nan, x_prime), x_test, **fast)
    with pytest.raises(ValueError, match="lr"):
        ntk_prediction(x, x_prime, x_test, lr=0.0, **fast)
    # K_Γ = K^{1/2} Z K^{1/2} has at most n positive eigenvalues (Z has n).
    with pytest.raises(ValueError, match="exceeds the 10 positive eigenvalues"):
        ntk_prediction(x, x_prime, x_test, d=11, **fast)
    # Identical views of 3 distinct inputs (each twice): rank 3, so only 3 learnable modes.
    dup = np.concatenate([x[:3], x[:3]])
    with pytest.raises(ValueError, match="exceeds the 3 positive eigenvalues"):
        ntk_prediction(dup, dup, x_test, d=4, **fast)
    with pytest.raises(ValueError, match="diverged"):
        ntk_prediction(x, x_prime, x_test, width=16, steps=50, lr=1e4)
