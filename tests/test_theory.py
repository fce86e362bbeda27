"""The stepwise theory of linear Barlow Twins against plain gradient descent on the same model.

Reference: gradient descent on L = ‖W Γ Wᵀ − I‖²_F (float64, small lr, t = lr × step), the
definition the closed forms are derived from (methods.md §1.2–1.3).
"""

import numpy as np
import pytest
import torch

from sslscope.instruments.steps import emergence_steps
from sslscope.theory.kernel import (
    contrastive_kernel,
    empirical_ntk,
    kernel_embedding,
    linear_cka,
    principal_angles,
)
from sslscope.theory.stepwise import (
    eigenpairs,
    embedding_eigenvalues,
    final_weights,
    gradient_descent,
    loss_curve,
    pair_cross_correlation,
    rotation_residual,
    step_times,
)

M, D, N = 20, 4, 2000
LR = 0.002  # t = lr × step; 8 λ_1 lr ≈ 0.017 per step


def horizon(predicted, lam_d, tail=1e-5):
    """Time to the last step plus the time its logistic needs to get within ``tail`` of 1."""
    return predicted.max() + np.log(1 / tail) / (8 * lam_d)


@pytest.fixture(scope="module")
def gamma():
    """Γ of synthetic pairs: anisotropic inputs, a second view with independent noise.

    Four clearly separated top directions and a gap below them: from a random start the model
    can then only end in the top-4 eigenspace (with λ_5 close to λ_4 it would keep some of v_5
    for a long time, as slow as their difference).
    """
    rng = np.random.default_rng(0)
    scales = np.concatenate([[1.0, 0.8, 0.62, 0.48], np.geomspace(0.2, 0.05, M - 4)])
    x = rng.standard_normal((N, M)) * scales
    x_prime = x + 0.3 * rng.standard_normal((N, M)) * scales
    return pair_cross_correlation(x, x_prime)


def crossing_times(t, eigvals, level=0.5):
    """Linear interpolation of the first time each column reaches ``level``."""
    out = []
    for j in range(eigvals.shape[1]):
        k = int(np.argmax(eigvals[:, j] >= level))
        t0, t1, e0, e1 = t[k - 1], t[k], eigvals[k - 1, j], eigvals[k, j]
        out.append(t0 + (level - e0) * (t1 - t0) / (e1 - e0))
    return np.array(out)


def test_pair_cross_correlation_by_hand():
    x, x_prime = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    assert np.allclose(pair_cross_correlation(x, x_prime), [[0, 1], [1, 0]])


def test_aligned_start_follows_the_closed_form(gamma):
    lam, vecs = eigenpairs(gamma)
    s0 = 1e-3
    w0 = s0 * vecs[:, :D].T  # U = I, aligned with the top-4 eigenvectors
    predicted = step_times(lam[:D], s0)
    # A tenth of LR: gradient descent then tracks the flow's curves, not only its step times.
    lr = LR / 20
    t, measured, w = gradient_descent(w0, gamma, lr=lr, record_every=20,
                                      steps=int(horizon(predicted, lam[D - 1]) / lr))
    assert np.all(np.diff(predicted) > 0)  # distinct, ordered steps
    assert np.allclose(crossing_times(t, measured), predicted, rtol=0.02)
    s_measured = np.sqrt(measured / lam[:D])  # s_j(t), the singular values along V_d
    s_predicted = np.sqrt(embedding_eigenvalues(t, lam[:D], s0) / lam[:D])
    assert np.abs(s_measured - s_predicted).max() < 1e-3
    curve = loss_curve(t, lam[:D], s0)
    assert curve[0] == pytest.approx(D, abs=1e-4) and curve[-1] < 1e-3
    assert rotation_residual(w, gamma) < 1e-3


def test_small_random_start_steps_within_30_percent_and_ends_at_w_infinity(gamma):
    lam, vecs = eigenpairs(gamma)
    sigma = 1e-4
    w0 = np.random.default_rng(1).normal(0, sigma, (D, M))
    s0 = np.linalg.norm(w0 @ vecs[:, :D], axis=0)  # the effective s_j(0) = ‖W_0 v_j‖
    predicted = step_times(lam[:D], s0)
    t, measured, w = gradient_descent(w0, gamma, lr=LR, record_every=5,
                                      steps=int(horizon(predicted, lam[D - 1]) / LR))
    assert np.allclose(crossing_times(t, measured), predicted, rtol=0.3)
    # The library's own step detection on the same curves agrees to the recording grid.
    assert np.allclose(emergence_steps(t, measured), crossing_times(t, measured),
                       atol=5 * LR + 1e-12)
    assert rotation_residual(w, gamma) < 1e-3
    w_inf = final_weights(gamma, D)
    u = w @ np.linalg.pinv(w_inf)  # W = U W∞ with U orthogonal
    assert np.allclose(u @ u.T, np.eye(D), atol=1e-3)


def test_step_times_and_trajectories_by_hand():
    lam = np.array([1.0, 0.5])
    s0 = 0.01  # λ s0² = 1e-4 and 5e-5
    assert np.allclose(step_times(lam, s0), np.log(1 / (lam * s0**2) - 1) / (8 * lam))
    at = step_times(lam, s0)
    assert np.allclose(np.diag(embedding_eigenvalues(at, lam, s0)), 0.5)
    assert np.allclose(embedding_eigenvalues(0.0, lam, s0), lam * s0**2)
    assert np.allclose(embedding_eigenvalues(1e3, lam, s0), 1.0)
    assert step_times(np.array([1.0]), 0.9)[0] == 0.0  # already past ½ at the start
    with pytest.raises(ValueError, match="positive"):
        step_times(np.array([1.0, -0.1]), s0)


def random_features(x, omega, phase):
    return np.sqrt(2 / omega.shape[0]) * np.cos(x @ omega.T + phase)


def test_kernel_formula_equals_the_feature_space_solution():
    # Random Fourier features, p = 800 ≫ 2n = 200: the explicit solution W∞ φ(x) in feature
    # space and the kernel formula from 2n × 2n matrices must agree (methods.md §1.4: 8e-15).
    rng = np.random.default_rng(3)
    n, m, p, d = 100, 5, 800, 4
    omega, phase = rng.standard_normal((p, m)), rng.uniform(0, 2 * np.pi, p)
    x = rng.standard_normal((n, m))
    x_prime = x + 0.2 * rng.standard_normal((n, m))
    x_test = rng.standard_normal((30, m))
    phi = random_features(np.concatenate([x, x_prime]), omega, phase)  # (2n, p)
    phi_test = random_features(x_test, omega, phase)
    gamma = pair_cross_correlation(phi[:n], phi[n:])  # (p, p)
    f_features = phi_test @ final_weights(gamma, d).T  # (30, d)
    k = phi @ phi.T
    f_kernel = kernel_embedding(k, phi_test @ phi.T, d)
    lam_features, _ = eigenpairs(gamma)
    lam_kernel, _ = contrastive_kernel(k)
    assert np.allclose(lam_kernel[:10], lam_features[:10], atol=1e-10)
    assert np.abs(f_kernel @ f_kernel.T - f_features @ f_features.T).max() < 1e-8
    assert linear_cka(f_kernel, f_features) == pytest.approx(1.0, abs=1e-10)
    assert principal_angles(f_kernel, f_features).max() < 1e-6


def test_identical_views_make_the_stepwise_model_kernel_pca():
    # Each input paired with itself: K = J ⊗ K_n (J the 2 × 2 all-ones matrix, J² = 2J), so
    # K^{1/2} = J/√2 ⊗ K_n^{1/2} and K^{1/2} Z K^{1/2} = (J P J / 2) ⊗ K_n / (2n) = J ⊗ K_n / (2n)
    # (P the swap, P J = J): the eigenvalues of K_n / n, eigenvectors K_n's on both halves —
    # kernel PCA. (methods.md §1.4 writes "K_Γ ∝ K²"; that holds for K Z K, not for the
    # K^{1/2} Z K^{1/2} of the solution.)
    n = 6
    a = np.random.default_rng(4).standard_normal((n, 9))
    k_n = a @ a.T
    lam, u = contrastive_kernel(np.block([[k_n, k_n], [k_n, k_n]]))
    vals, vecs = np.linalg.eigh(k_n)
    assert np.allclose(lam[:n], vals[::-1] / n, rtol=1e-8)
    assert np.allclose(lam[n:], 0, atol=1e-8)
    top = vecs[:, -1]
    assert abs(u[:n, 0] @ top) == pytest.approx(np.sqrt(0.5), rel=1e-8)  # half on each copy


def test_empirical_ntk_of_a_linear_model_is_the_gram_matrix():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x = torch.randn(7, 5, dtype=torch.float32)
    ntk = empirical_ntk(model, x)
    expected = (x.double() @ x.double().T) + 1  # ∂f_o/∂W = e_o xᵀ, ∂f_o/∂b = e_o
    assert torch.allclose(ntk, expected, atol=1e-5)
    deep = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    k = empirical_ntk(deep, x)
    assert torch.allclose(k, k.T) and torch.linalg.eigvalsh(k).min() > -1e-6


def test_cka_and_angles_ignore_rotation_and_see_a_different_subspace():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((200, 4))
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    assert linear_cka(a, 3 * a @ q) == pytest.approx(1.0)
    assert principal_angles(a, a @ q).max() < 1e-8
    assert linear_cka(a, rng.standard_normal((200, 4))) < 0.2
