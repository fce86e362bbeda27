"""The stepwise paper's speed-up: an eigen-preconditioned gradient at the embeddings.

Late eigenmodes are learned late because a mode of embedding eigenvalue e grows at a rate
proportional to e itself (methods.md §1.2: ė_j = 8 λ_j e_j (1 − e_j) for linear Barlow Twins), so
a mode that starts at e_j(0) ≈ 0 waits ln(1/e_j(0)) / (8 λ_j) before it rises. Simon et al.
propose to speed learning up by "selectively focusing gradient on small embedding
eigendirections"; their App. G is not available to us, so this is methods.md §1.6 (a), our
instantiation: the gradient reaching the two views' embeddings is multiplied by the inverse of
their (detached) cross-correlation,

    ∂L/∂Z ← (∂L/∂Z) P,    P = V diag(1 / (max(c_k, 0) + ε)) Vᵀ,    C = V diag(c) Vᵀ
    C = (Z_aᵀ Z_b + Z_bᵀ Z_a) / (2N)          (the matrix whose eigenvalues the theory follows)

In the aligned linear model this turns the dynamics into ė_j = 8 λ_j e_j (1 − e_j) / (e_j + ε):
small modes grow linearly instead of exponentially (the ln(1/e_j(0)) wait shrinks by about ε),
learned modes (e_j ≈ 1) see the plain gradient divided by 1 + ε.
:func:`sslscope.theory.stepwise.step_times` gives the step times with ``precondition=ε``.

Negative eigenvalues of C (two views that anti-align in a direction, which a cross-correlation
allows) are clamped to 0 so that P stays positive definite: the preconditioned step is always a
descent direction. The forward pass is the identity; only the backward pass changes, so the
loss, its terms and every measurement are those of the unmodified method. Under a process
group the loop applies it after the gather, so C is the global batch's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sslscope.methods import Method, all_views


def applies_to(method: Method, n_views: int) -> bool:
    """Whether the preconditioner is defined for ``method``: its loss reads the two views' z.

    Methods with a predictor or an EMA target (BYOL, SimSiam, momentum MMCR) see z through
    another network, cross-modal ones (CLIP) compare two encoders, MMCR stacks K views: for
    none of them is C the matrix the gradient should be preconditioned by.
    """
    return (method.inputs is all_views and not method.predictor and method.target == "none"
            and not method.cross_modal and n_views == 2)


def preconditioner(z_a: Tensor, z_b: Tensor, eps: float) -> Tensor:
    r"""P = (C₊ + εI)⁻¹ for the symmetrised cross-correlation C of two views, (D, D).

    Args:
        z_a, z_b: the two views' embeddings, (N, D) each; detached and cast to float64 inside.
        eps: ε > 0, the floor added to every eigenvalue (the larger, the closer P is to I/ε).

    Returns:
        (D, D), symmetric positive definite, in the dtype of ``z_a``.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    a, b = z_a.detach().to(torch.float64), z_b.detach().to(torch.float64)
    c = a.T @ b / a.shape[0]
    values, vectors = torch.linalg.eigh((c + c.T) / 2)
    p = (vectors / (values.clamp_min(0) + eps)) @ vectors.T
    return p.to(z_a.dtype)


class _Precondition(torch.autograd.Function):
    """Identity forward; the gradients of both views multiplied by P on the right."""

    @staticmethod
    def forward(ctx, z_a: Tensor, z_b: Tensor, eps: float) -> tuple[Tensor, Tensor]:  # noqa: ANN001
        ctx.save_for_backward(preconditioner(z_a, z_b, eps))
        return z_a.view_as(z_a), z_b.view_as(z_b)

    @staticmethod
    def backward(ctx, grad_a: Tensor, grad_b: Tensor) -> tuple[Tensor, Tensor, None]:  # noqa: ANN001
        (p,) = ctx.saved_tensors
        return grad_a @ p, grad_b @ p, None


def eigen_precondition(z_a: Tensor, z_b: Tensor, *, eps: float) -> tuple[Tensor, Tensor]:
    """``(z_a, z_b)`` unchanged, with their gradients preconditioned by P (module docstring).

    Args:
        z_a, z_b: (N, D) each, the inputs of a two-view loss.
        eps: ε > 0.

    Returns:
        Two (N, D) tensors equal to the inputs.
    """
    return _Precondition.apply(z_a, z_b, eps)
