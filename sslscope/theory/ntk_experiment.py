r"""Kernel prediction for a wide MLP: does it learn the top eigenmodes of its NTK's K_Γ?

Model (NTK parametrisation, no biases; m inputs, h hidden units, d outputs):

    f(x) = W2 φ(x),   φ(x) = relu(W1 x / √m) / √h,   W1 ~ N(0, 1),   W2 ~ init_scale · N(0, 1)

trained by full-batch plain GD on L = ‖C − I‖²_F (``barlow_twins_linear_loss``) over n fixed
pairs. With one learning rate for both layers this parametrisation makes the NTK the kernel of
the dynamics; averaged over outputs (:func:`~sslscope.theory.kernel.empirical_ntk`) it is

    K(x, y) = φ(x)ᵀφ(y) + (xᵀy/m) (1/h) Σ_k ω_k 1[w1_k·x > 0] 1[w1_k·y > 0],  ω_k = ‖W2[:, k]‖²/d
              (W2 block: random features)   (W1 block: ∝ W2², ≈ init_scale² × the first at init)

Which block drives learning: at small init ∂f/∂W1 ∝ W2 ≈ 0, so it is the W2 block, the
random-features kernel of φ. The W1 block switches on as W2 grows, but stays small at large
width: C = I forces ‖W2‖²_F ≈ Σ_j 1/λ_j (λ_j: eigenvalues of K_Γ), so mean ω ≈ Σ_j λ_j⁻¹/(hd)
→ 0 as 1/h (tr fraction 0.28, 0.14, 0.05 at h = 256, 1024, 4096). The prediction is
:func:`~sslscope.theory.kernel.kernel_embedding` on X = [x_1 … x_n, x_1' … x_n'] and x_test,
from three kernels: the full empirical NTK after training (primary, as in the paper), at init,
and the W2 block after training; compared up to rotation by linear CKA and principal angles.

Measured at the defaults on :func:`digits_pairs` (n = 50, 50 test points, one core, 5–6 s):
loss 3e-30; CKA train 0.9989, test 0.9988 (end NTK), 0.9968 (init NTK), 0.9994 (W2 block);
angles (0.45, 1.0, 1.6, 2.6)°; untrained-network baseline CKA 0.42. Seeds 1–3 (data and net):
CKA train 0.9954–0.9989, largest angle 2.8–6.5°, baseline 0.26–0.35. init_scale = 1: CKA
0.89, angles up to 26°. Surprises: (i) W1 moves only 2.7 % yet λ_4 of K_Γ grows 0.0026 → 0.0040
(the motion is aligned with the learned modes; the eigenvectors stay put); (ii) the largest
angle is set by the init, not the width: mode d+1 has grown to e ≈ e_0^{1 − λ_{d+1}/λ_d} when
mode d completes (the logistic of :mod:`~sslscope.theory.stepwise`) and a zero-loss solution
keeps it: h = 4096 (lr 1) gives angles (0.1, 0.2, 0.7, 9.9)° at init_scale 0.01, 4.6° at
0.001; with few outputs a near tie of step times (random init overlaps) gives up to 42°; (iii)
the end NTK partly adapts to what was learned: in a near tie at h = 256 the trained embedding is
73° from the init NTK's top modes and 5° from the end NTK's, so agreement with the end NTK
alone overstates the kernel regime; ``cka_init_ntk_train`` is the stricter test.

References:
    Simon et al., "On the Stepwise Nature of Self-Supervised Learning", ICML 2023,
    arXiv:2303.15438, §5, Prop. 5.1 (and methods.md §1.4, §1.7 item 2).
    Jacot, Gabriel & Hongler, "Neural Tangent Kernel", NeurIPS 2018 (parametrisation, NTK).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sslscope.losses.barlow_twins import barlow_twins_linear_loss
from sslscope.theory.kernel import (
    contrastive_kernel,
    empirical_ntk,
    kernel_embedding,
    linear_cka,
    principal_angles,
)


class TwoLayerMLP(nn.Module):
    """f(x) = W2 relu(W1 x / √m) / √h, float64, no biases (NTK parametrisation)."""

    def __init__(self, m: int, width: int, d: int, init_scale: float, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(width, m, generator=g, dtype=torch.float64))
        self.w2 = nn.Parameter(init_scale * torch.randn(d, width, generator=g,
                                                        dtype=torch.float64))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) = relu(W1 x / √m) / √h, (N, m) → (N, h); the gradient of f w.r.t. W2's rows."""
        return torch.relu(x @ self.w1.T / self.w1.shape[1] ** 0.5) / self.w1.shape[0] ** 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.w2.T  # (N, d)


@dataclass(frozen=True)
class NTKComparison:
    """Predicted vs trained embeddings; CKA ∈ [0, 1] (1: equal up to rotation and scale)."""

    n_pairs: int
    width: int
    d: int
    steps: int
    lr: float
    init_scale: float
    final_loss: float
    cka_train: float  # end-of-training NTK prediction vs trained f, on the 2n training inputs
    cka_test: float  # the same on the held-out points
    angles_train_deg: list[float]  # principal angles (ascending) of the two (2n, d) embeddings
    cka_init_ntk_train: float  # prediction from the full NTK at init
    cka_random_features_train: float  # prediction from the W2 block φᵀφ after training
    baseline_cka_train: float  # trained f vs an untrained network of another seed: the floor
    kernel_eigenvalues: list[float]  # top d + 1 eigenvalues of the end NTK's K_Γ (the gap)
    kernel_eigenvalues_init: list[float]  # the same at init
    w1_block_fraction: float  # tr(W1 block) / tr(full NTK) on X after training
    w1_relative_change: float  # ‖W1 − W1(0)‖_F / ‖W1(0)‖_F: how lazy the hidden layer was
    seconds: float
    predicted: np.ndarray = field(repr=False, compare=False)  # end NTK, rows [X; x_test]
    trained: np.ndarray = field(repr=False, compare=False)  # trained f, the same rows
    model: nn.Module = field(repr=False, compare=False)  # the trained network

    def as_dict(self) -> dict:
        """The number and list fields (arrays and the model left out), JSON-ready."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), (int, float, list))}


def digits_pairs(n_pairs: int = 50, n_test: int = 50, *, noise: float = 0.1, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two views of sklearn digits (pixels / 16, + N(0, noise²) per view), centred on the 2n views.

    Returns ``(x, x_prime, x_test)``: (n_pairs, 64), (n_pairs, 64), (n_test, 64) clean test images
    not among the pairs; all three minus the mean of the 2n training views.
    """
    from sklearn.datasets import load_digits

    images = load_digits().images.reshape(-1, 64) / 16
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    x = images[order[:n_pairs]]
    x_test = images[order[n_pairs:n_pairs + n_test]]
    views = [x + noise * rng.standard_normal(x.shape) for _ in range(2)]
    mean = np.concatenate(views).mean(0)
    return views[0] - mean, views[1] - mean, x_test - mean


study_inputs = digits_pairs  # the name sslscope.studies.stepwise_claims imports


def _predict(k: np.ndarray, n2: int, d: int) -> np.ndarray:
    """kernel_embedding for all rows of a kernel on [X; x_test], (N, N) → (N, d)."""
    return kernel_embedding(k[:n2, :n2], k[:, :n2], d)


def ntk_prediction(x: np.ndarray, x_prime: np.ndarray, x_test: np.ndarray, *, width: int = 1024,
                   d: int = 4, steps: int = 1000, lr: float = 2.0, init_scale: float = 0.01,
                   seed: int = 0) -> NTKComparison:
    """Train :class:`TwoLayerMLP` on the pairs and compare it with the NTK prediction.

    Args:
        x, x_prime: the n pairs' two views, (n, m) each, used as given (centre them first).
        x_test: (N_test, m) held-out points, N_test ≥ 2.
        width: h, the hidden units.
        d: embedding dimension, at most the number of positive eigenvalues of K_Γ (≤ n; fewer
            with identical views and a rank-deficient kernel of the n inputs).
        steps, lr: plain full-batch GD; t = lr × steps must pass the d-th step time
            ln(1/e_0 − 1) / (8 λ_d), e_0 ≈ λ_d d init_scale² (:mod:`~sslscope.theory.stepwise`;
            ≈ 700 at the defaults).
        init_scale: std of W2's entries; small is the kernel regime.
        seed: the network's init (the baseline network uses seed + 1).

    Returns:
        :class:`NTKComparison`; its ``predicted`` and ``trained`` are (2n + N_test, d).

    Raises:
        ValueError: on mismatched or non-finite inputs, bad hyper-parameters, d beyond the
            positive eigenvalues of K_Γ at init (checked before training), or a diverged loss.
    """
    start = time.perf_counter()
    x, x_prime, x_test = (np.asarray(a, dtype=np.float64) for a in (x, x_prime, x_test))
    if x.ndim != 2 or x.shape != x_prime.shape or x.shape[0] < 2:
        raise ValueError(f"x and x_prime must be (n, m) of one shape with n ≥ 2, got {x.shape} "
                         f"and {x_prime.shape}")
    if x_test.ndim != 2 or x_test.shape[1] != x.shape[1] or x_test.shape[0] < 2:
        raise ValueError(f"x_test must be (N ≥ 2, {x.shape[1]}), got {x_test.shape}")
    if not all(np.isfinite(a).all() for a in (x, x_prime, x_test)):
        raise ValueError("inputs must be finite")
    if width < 1 or steps < 1 or d < 1 or not lr > 0 or not init_scale > 0:
        raise ValueError(f"need width, steps, d ≥ 1 and lr, init_scale > 0, got width={width}, "
                         f"steps={steps}, d={d}, lr={lr}, init_scale={init_scale}")
    n, m = x.shape
    data = torch.from_numpy(np.concatenate([x, x_prime, x_test]))  # (2n + N_test, m)
    train = data[:2 * n]
    model = TwoLayerMLP(m, width, d, init_scale, seed)

    w1_init = model.w1.detach().clone()
    k_init = empirical_ntk(model, data).numpy()
    # Check d before spending the training time; the same tolerance as kernel.RCOND.
    lam_init = contrastive_kernel(k_init[:2 * n, :2 * n])[0]
    n_pos = int((lam_init > 1e-10 * max(lam_init[0], 0.0)).sum())
    if d > n_pos:
        raise ValueError(f"d={d} exceeds the {n_pos} positive eigenvalues of K_Γ at init "
                         f"(at most n={n}); only positive modes can be learned")

    for _ in range(steps):
        z = model(train)
        loss = barlow_twins_linear_loss(z[:n], z[n:])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= lr * g
    with torch.no_grad():
        z, phi = model(data), model.features(data).numpy()
        final_loss, z = float(barlow_twins_linear_loss(z[:n], z[n:2 * n])), z.numpy()
    if not np.isfinite(final_loss) or not np.isfinite(z).all():
        raise ValueError(f"training diverged (loss {final_loss}); lower lr={lr}")

    k_end = empirical_ntk(model, data).numpy()
    k_rf = phi @ phi.T  # the W2 block: ∂f_o/∂W2[o] = φ for every output o
    pred_end, pred_init, pred_rf = (_predict(k, 2 * n, d) for k in (k_end, k_init, k_rf))
    with torch.no_grad():
        z_random = TwoLayerMLP(m, width, d, 1.0, seed + 1)(train).numpy()
        w1_change = float((model.w1 - w1_init).norm() / w1_init.norm())
    tr = 2 * n
    return NTKComparison(
        n_pairs=n, width=width, d=d, steps=steps, lr=lr, init_scale=init_scale,
        final_loss=final_loss,
        cka_train=linear_cka(pred_end[:tr], z[:tr]),
        cka_test=linear_cka(pred_end[tr:], z[tr:]),
        angles_train_deg=np.degrees(principal_angles(pred_end[:tr], z[:tr])).tolist(),
        cka_init_ntk_train=linear_cka(pred_init[:tr], z[:tr]),
        cka_random_features_train=linear_cka(pred_rf[:tr], z[:tr]),
        baseline_cka_train=linear_cka(z_random, z[:tr]),
        kernel_eigenvalues=contrastive_kernel(k_end[:tr, :tr])[0][:d + 1].tolist(),
        kernel_eigenvalues_init=lam_init[:d + 1].tolist(),
        w1_block_fraction=float(1 - np.trace(k_rf[:tr, :tr]) / np.trace(k_end[:tr, :tr])),
        w1_relative_change=w1_change, seconds=time.perf_counter() - start,
        predicted=pred_end, trained=z, model=model,
    )
