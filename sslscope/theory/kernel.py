"""The kernel (NTK) version of the stepwise theory, and how to compare embeddings to it.

For a model f(x) = W φ(x) on fixed features, with the kernel K(x, y) = φ(x)ᵀ φ(y), the dynamics
of :mod:`sslscope.theory.stepwise` happen in feature space with Γ_φ = Φᵀ Z Φ. The same
eigenvalues and the same final embedding come from 2n × 2n kernel matrices alone:

    X = [x_1 … x_n, x_1' … x_n'],   K_ab = K(X_a, X_b),   Z = (1/2n) [[0, I_n], [I_n, 0]]
    K_Γ = K^{1/2} Z K^{1/2} = Σ_a λ_a u_a u_aᵀ
    f(x) = Λ_d^{-1/2} [u_1 … u_d]ᵀ K^{-1/2} k(x),   k(x) = [K(x, X_a)]_a

(up to the rotation U of the linear case). Only positive eigenvalues of K_Γ can be learned. With
identical views, K_Γ has the eigenvalues of K_n / n (K_n the kernel of the n inputs) and their
eigenvectors on both halves: the model learns kernel PCA. (methods.md §1.4 says "K_Γ ∝ K²",
which holds for K Z K, not for the K^{1/2} Z K^{1/2} of the solution; the tests check this.) For
a wide network at small init, K is its empirical neural tangent kernel (:func:`empirical_ntk`).

References:
    Simon et al., ICML 2023, arXiv:2303.15438, §5 and Prop. 5.1 (derived and checked
    independently: methods.md §1.4).
    Jacot, Gabriel & Hongler, "Neural Tangent Kernel", NeurIPS 2018 (the NTK).
    Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations
    Revisited", ICML 2019 (linear CKA).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from torch import nn

RCOND = 1e-10  # eigenvalues of K below this times the largest are treated as 0


def pairing_matrix(n: int) -> np.ndarray:
    """Z = (1/2n) [[0, I_n], [I_n, 0]], (2n, 2n): which rows of X are positive pairs."""
    z = np.zeros((2 * n, 2 * n))
    z[np.arange(n), n + np.arange(n)] = z[n + np.arange(n), np.arange(n)] = 1 / (2 * n)
    return z


def _sqrt_and_inverse_sqrt(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K^{1/2} and the pseudo-inverse K^{-1/2} of a symmetric PSD K (round-off clipped)."""
    vals, vecs = np.linalg.eigh((k + k.T) / 2)
    keep = vals > RCOND * vals.max()
    root = np.where(keep, np.sqrt(np.clip(vals, 0, None)), 0.0)
    inv_root = np.where(keep, 1 / np.where(keep, root, 1.0), 0.0)
    return (vecs * root) @ vecs.T, (vecs * inv_root) @ vecs.T


def contrastive_kernel(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Eigenvalues (descending) and eigenvectors of K_Γ = K^{1/2} Z K^{1/2}.

    Args:
        k: the (2n, 2n) kernel matrix of X = [x_1 … x_n, x_1' … x_n'] (first views, then the
            second views in the same order).

    Returns:
        ``(lam, u)``: (2n,) eigenvalues in descending order and (2n, 2n) eigenvectors as columns.
    """
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2:
        raise ValueError(f"expected a (2n, 2n) kernel matrix, got {k.shape}")
    root, _ = _sqrt_and_inverse_sqrt(k)
    lam, u = np.linalg.eigh(root @ pairing_matrix(k.shape[0] // 2) @ root)
    return lam[::-1].copy(), u[:, ::-1].copy()


def kernel_embedding(k: np.ndarray, k_x: np.ndarray, d: int) -> np.ndarray:
    r"""The predicted final embeddings f(x) = Λ_d^{-1/2} U_dᵀ K^{-1/2} k(x) of new points.

    Args:
        k: the (2n, 2n) training kernel matrix (as for :func:`contrastive_kernel`).
        k_x: (N, 2n) kernel values between N points and the 2n training inputs.
        d: embedding dimension; the top-d eigenvalues of K_Γ must be positive.

    Returns:
        (N, d) embeddings.
    """
    lam, u = contrastive_kernel(k)
    if d < 1 or lam[d - 1] <= 0:
        raise ValueError(f"need d ≥ 1 positive eigenvalues of K_Γ, got d={d}, λ_d={lam[d - 1]}")
    _, inv_root = _sqrt_and_inverse_sqrt(np.asarray(k, dtype=np.float64))
    return (np.asarray(k_x, dtype=np.float64) @ inv_root @ u[:, :d]) / np.sqrt(lam[:d])


def empirical_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""The empirical NTK of ``model`` on ``x``, averaged over its output dimensions.

        K_ij = (1/d) Σ_o ⟨∂f_o(x_i)/∂θ, ∂f_o(x_j)/∂θ⟩

    Computed with ``torch.func`` (per-sample Jacobians by ``vmap(jacrev)``) at the current
    parameters, with BatchNorm and dropout as the module's mode says (call ``model.eval()``
    for a per-sample function).

    Args:
        model: maps (N, …) to (N, d); its parameters are the θ.
        x: inputs (N, …).

    Returns:
        (N, N) float64, symmetric positive semi-definite.
    """
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (sample.unsqueeze(0),)).squeeze(0)  # (d,)

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)  # name → (N, d, *shape)
    flat = torch.cat([j.flatten(2) for j in jac.values()], dim=2).double()  # (N, d, P)
    d = flat.shape[1]
    return torch.einsum("iop,jop->ij", flat, flat) / d


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    r"""Linear centred kernel alignment of two representations of the same N points.

        CKA = ‖Bᵀ A‖²_F / (‖Aᵀ A‖_F ‖Bᵀ B‖_F),   A, B column-centred

    1 when B is an orthogonal transform (and rescaling) of A; invariant to those, which is
    what comparing a learned embedding with a prediction defined up to rotation needs.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.linalg.norm(b.T @ a) ** 2
                 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column spaces of a (N, p), b (N, q)."""
    return np.sort(scipy.linalg.subspace_angles(np.asarray(a, dtype=np.float64),
                                                np.asarray(b, dtype=np.float64)))
