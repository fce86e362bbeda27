"""Closed-form dynamics of linear Barlow Twins from small initialisation (the stepwise theory).

Model and loss (λ_BT = 1, no standardisation, the symmetrised cross-correlation):

    f(x) = W x,  W ∈ ℝ^{d×m},   Γ = (1/2n) Σ_i (x_i x_i'ᵀ + x_i' x_iᵀ),   C = W Γ Wᵀ
    L = ‖C − I_d‖²_F,            gradient flow  Ẇ = −∇L = −4 (W Γ Wᵀ − I) W Γ

Normalisation convention (methods.md §1.2): this module uses L = ‖C − I‖²_F and time
t = lr × step of plain gradient descent on L, which puts the constant 8 in the exponents below;
with L = ½‖C − I‖² every 8 becomes 4. The tests check the convention against gradient descent.

From an aligned start W(0) = U diag(s_j(0)) V_dᵀ (V_d: the top-d eigenvectors of Γ), W stays
aligned and each singular value follows

    ṡ_j = 4 λ_j s_j (1 − λ_j s_j²)   ⇒   s_j(t)² = e^{8λ_j t} / (1/s_j(0)² + λ_j (e^{8λ_j t} − 1))

so the j-th eigenvalue of C, e_j(t) = λ_j s_j(t)², rises logistically from λ_j s_j(0)² to 1, and
crosses ½ at t_j = ln(1/(λ_j s_j(0)²) − 1) / (8 λ_j). The loss is Σ_j (1 − e_j(t))²: a staircase
from ≈ d down by ≈ 1 at each t_j. The end point is W∞ = U Λ_d^{-1/2} V_dᵀ.

References:
    Simon, Knutins, Ziyin, Geisz, Fetterman & Albrecht, "On the Stepwise Nature of
    Self-Supervised Learning", ICML 2023, arXiv:2303.15438 (§4, Prop. 4.1; the closed forms
    here were derived and checked independently, methods.md §1.2–1.3).
"""

from __future__ import annotations

import numpy as np


def pair_cross_correlation(x: np.ndarray, x_prime: np.ndarray) -> np.ndarray:
    r"""Γ = (1/2n) Σ_i (x_i x_i'ᵀ + x_i' x_iᵀ), the symmetrised input cross-correlation.

    Args:
        x, x_prime: the n positive pairs' two views, (n, m) each, used as given (centre them
            first if the model should see centred inputs).

    Returns:
        (m, m) float64, symmetric.
    """
    x, x_prime = np.asarray(x, dtype=np.float64), np.asarray(x_prime, dtype=np.float64)
    if x.ndim != 2 or x.shape != x_prime.shape:
        raise ValueError(f"expected two (n, m) arrays of one shape, got {x.shape}, "
                         f"{x_prime.shape}")
    c = x.T @ x_prime / x.shape[0]
    return (c + c.T) / 2


def eigenpairs(gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns, same order) of a symmetric Γ."""
    lam, vecs = np.linalg.eigh(np.asarray(gamma, dtype=np.float64))
    return lam[::-1].copy(), vecs[:, ::-1].copy()


def _check(lam: np.ndarray, s0: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    lam = np.asarray(lam, dtype=np.float64)
    s0 = np.broadcast_to(np.asarray(s0, dtype=np.float64), lam.shape)
    if (lam <= 0).any() or (s0 <= 0).any():
        raise ValueError("the theory needs positive eigenvalues λ_j and initial scales s_j(0)")
    return lam, s0


def embedding_eigenvalues(t: np.ndarray | float, lam: np.ndarray,
                          s0: np.ndarray | float) -> np.ndarray:
    r"""e_j(t) = λ_j s_j(t)², the eigenvalues of C along the aligned trajectory.

    Args:
        t: times (T,) or a scalar, in units of lr × step.
        lam: λ_j, the top-d eigenvalues of Γ, (d,).
        s0: s_j(0), the initial singular values, (d,) or one value for all.

    Returns:
        (T, d), or (d,) for a scalar t.
    """
    lam, s0 = _check(lam, s0)
    t = np.asarray(t, dtype=np.float64)
    e0 = lam * s0**2
    # The same curve written as a logistic, which stays finite for any t ≥ 0.
    return 1 / (1 + (1 / e0 - 1) * np.exp(-8 * lam * t[..., None]))  # (…, d)


def loss_curve(t: np.ndarray | float, lam: np.ndarray, s0: np.ndarray | float) -> np.ndarray:
    """L(t) = Σ_j (1 − e_j(t))² along the aligned trajectory, (T,) or a scalar."""
    return ((1 - embedding_eigenvalues(t, lam, s0)) ** 2).sum(-1)


def time_to_reach(e: np.ndarray | float, lam: np.ndarray, s0: np.ndarray | float, *,
                  precondition: float = 0.0) -> np.ndarray:
    r"""When the aligned trajectory's e_j(t) reaches the level ``e``, exactly (the inverse curve).

    Plain gradient flow, ė = 8λ e (1 − e) (the logistic of :func:`embedding_eigenvalues`):

        t_j(e) = ln( e (1 − e_j0) / ((1 − e) e_j0) ) / (8 λ_j),        e_j0 = λ_j s_j(0)²

    With the eigen-preconditioned gradient of :mod:`sslscope.precondition` (ε > 0),
    ė = 8λ e (1 − e) / (e + ε), whose separable integral ∫ (e + ε) / (e (1 − e)) de gives

        t_j(e) = ( ε ln(e / e_j0) + (1 + ε) ln((1 − e_j0) / (1 − e)) ) / (8 λ_j)

    Args:
        e: the level(s) in (0, 1), a scalar or (T,) broadcast against the d modes.
        lam, s0: as in :func:`embedding_eigenvalues`.
        precondition: ε of the preconditioner; 0 is plain gradient descent.

    Returns:
        (d,) for a scalar ``e``, (T, d) otherwise, in units of lr × step; 0 where a mode starts
        at or above ``e``.
    """
    lam, s0 = _check(lam, s0)
    e = np.asarray(e, dtype=np.float64)
    if ((e <= 0) | (e >= 1)).any():
        raise ValueError("levels must lie in (0, 1)")
    if precondition < 0:
        raise ValueError(f"precondition must be ≥ 0, got {precondition}")
    e = e[..., None]
    e0 = np.minimum(lam * s0**2, e)  # a mode already past e takes no time
    if precondition == 0:
        t = np.log(e * (1 - e0) / ((1 - e) * e0))
    else:
        t = precondition * np.log(e / e0) + (1 + precondition) * np.log((1 - e0) / (1 - e))
    return np.maximum(t, 0.0) / (8 * lam)


def step_times(lam: np.ndarray, s0: np.ndarray | float, *, fraction: float = 0.5,
               precondition: float = 0.0) -> np.ndarray:
    r"""When e_j(t) crosses ``fraction`` (½: the step of mode j), exactly.

        t_j = ln( f (1/(λ_j s_j(0)²) − 1) / (1 − f) ) / (8 λ_j)

    For f = ½ this is ln(1/(λ_j s_j(0)²) − 1) / (8 λ_j) ≈ ln(1/(λ_j s_j(0)²)) / (8 λ_j), the
    approximation of methods.md §1.2. For small random init W_0 ~ N(0, σ²) entrywise, pass the
    effective s_j(0) = ‖W_0 v_j‖ ≈ σ √d. With ``precondition=ε`` the times are those of the
    eigen-preconditioned gradient (:func:`time_to_reach`); for small e_j(0) they shrink from
    ≈ ln(1/e_j0) / (8λ_j) to ≈ (ε ln(1/(2 e_j0)) + (1 + ε) ln 2) / (8λ_j).

    Returns:
        (d,) times in units of lr × step; 0 for a mode already past ``fraction`` at t = 0.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    return time_to_reach(fraction, lam, s0, precondition=precondition)


def final_weights(gamma: np.ndarray, d: int) -> np.ndarray:
    r"""W∞ = Λ_d^{-1/2} V_dᵀ, the end point of the dynamics up to a rotation U on the left.

    Any W with W Γ Wᵀ = I whose rows lie in the top-d eigenspace equals U W∞ for an orthogonal
    U; :func:`rotation_residual` measures that.

    Returns:
        (d, m) float64.

    Raises:
        ValueError: λ_d ≤ 0 (the top-d eigenspace has a non-positive direction; it cannot be
            whitened).
    """
    lam, vecs = eigenpairs(gamma)
    if d < 1 or d > lam.size or lam[d - 1] <= 0:
        raise ValueError(f"need 1 ≤ d ≤ m with λ_d > 0, got d={d}")
    return vecs[:, :d].T / np.sqrt(lam[:d])[:, None]


def rotation_residual(w: np.ndarray, gamma: np.ndarray) -> float:
    r"""‖M Mᵀ − I‖_F with M = W V_d Λ_d^{1/2}: 0 exactly when W = U W∞ for an orthogonal U."""
    w = np.asarray(w, dtype=np.float64)
    lam, vecs = eigenpairs(gamma)
    d = w.shape[0]
    m = w @ vecs[:, :d] * np.sqrt(lam[:d])
    return float(np.linalg.norm(m @ m.T - np.eye(d)))


def gradient_descent(w0: np.ndarray, gamma: np.ndarray, *, lr: float, steps: int,
                     record_every: int = 1, precondition: float = 0.0,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient descent on L = ‖W Γ Wᵀ − I‖²_F, the reference the closed forms predict.

    Args:
        w0: W(0), (d, m).
        gamma: Γ, (m, m).
        lr: the step size; time t = lr × step.
        steps: how many steps.
        record_every: keep the spectrum of C and the loss every this many steps.
        precondition: ε > 0 multiplies the gradient by P = (C₊ + εI)⁻¹ on the left, which is
            what the embedding-gradient preconditioner of :mod:`sslscope.precondition` does to
            W's gradient in the linear model (∂L/∂Z P summed against x gives P ∇_W L); 0: plain.

    Returns:
        ``(t, eigvals, w)``: times (T,), eigenvalues of C at those times (T, d), descending, and
        the final W.
    """
    w = np.asarray(w0, dtype=np.float64).copy()
    gamma = np.asarray(gamma, dtype=np.float64)
    eye = np.eye(w.shape[0])
    times, spectra = [], []
    for step in range(steps + 1):
        c = w @ gamma @ w.T
        if step % record_every == 0:
            times.append(lr * step)
            spectra.append(np.linalg.eigvalsh((c + c.T) / 2)[::-1])
        if step < steps:
            grad = 4 * (c - eye) @ w @ gamma
            if precondition:
                vals, vecs = np.linalg.eigh((c + c.T) / 2)
                grad = (vecs / (np.maximum(vals, 0) + precondition)) @ vecs.T @ grad
            w -= lr * grad
    return np.asarray(times), np.asarray(spectra), w
