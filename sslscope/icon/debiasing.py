r"""Debiasing by uniform mixing: move a fraction α of each row's mass to a uniform distribution.

    p̃(j|i) = (1 − α) p(j|i) + α / N_i   for the allowed j,   0 elsewhere

The paper's N is "the neighbourhood (batch) size". Here N_i is the number of *allowed* columns
of row i: B − 1 for a (B, B) kernel whose diagonal is excluded, B when it is included, C for a
(B, C) class kernel. Reasons: (1) the mixed row stays a distribution on the same candidates,
so a zero diagonal stays zero and a −inf diagonal of log q stays −inf (mass α/B on the diagonal
of p, where q is −inf, would make the cross-entropy infinite); (2) on one-hot labels with N = C
it is exactly ``F.cross_entropy(..., label_smoothing=α)``, which also spreads α/C over all C
classes, the true one included.

Deviation from the reference code: ICon's ``Kernel.leak`` uses N = ``size(1)`` = B and adds α/B
to every entry, the diagonal included.

References:
    Alshammari et al., "I-Con: A Unifying Framework for Representation Learning", ICLR 2025,
    arXiv:2504.16929, §3.3 ("debiasing"); Chuang et al., "Debiased Contrastive Learning",
    NeurIPS 2020 (the contrast). ShadeAlsha/ICon@afbf34f3, distributions/base.py, LeakKernel.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def debias(p: Tensor, *, alpha: float, allowed: Tensor | None = None) -> Tensor:
    r"""Mix each row of a probability kernel with the uniform distribution on its allowed columns.

        p̃(j|i) = (1 − α) p(j|i) + α / N_i · 1[j allowed],   N_i = #allowed columns of row i

    Args:
        p: row-stochastic kernel, shape (B, M), zero outside ``allowed``. Not modified.
        alpha: mixing weight α ∈ [0, 1]; the paper recommends 0.2–0.6 for feature learning,
            0.6–0.8 for clustering.
        allowed: boolean mask broadcastable to (B, M) of the columns each row may use; default
            all columns (then N = M, as label smoothing and ICon's ``leak``). For a (B, B)
            kernel without self-pairs pass ``~torch.eye(B, dtype=torch.bool)``;
            :func:`sslscope.icon.divergence.icon_loss` passes ``log_q > −inf``.

    Returns:
        Shape (B, M), rows summing to 1, zero outside ``allowed``.
    """
    _check_alpha(alpha)
    if alpha == 0.0:
        return p
    if allowed is None:
        return (1 - alpha) * p + alpha / p.shape[-1]
    allowed = allowed.expand_as(p)
    n_allowed = allowed.sum(dim=-1, keepdim=True).to(p.dtype)  # (B, 1)
    return torch.where(allowed, (1 - alpha) * p + alpha / n_allowed, torch.zeros_like(p))


def debias_log(log_q: Tensor, *, alpha: float) -> Tensor:
    r"""The same mixing applied to a log-kernel, in log space.

        log q̃(j|i) = logaddexp(log(1 − α) + log q(j|i), log(α / N_i))   for log q(j|i) > −inf

    The allowed columns are those where ``log_q`` is finite (the kernel's candidates); the
    others stay −inf. No ``exp`` then ``log`` round trip, so tiny q keep their precision.

    Args:
        log_q: log of a row-stochastic kernel, shape (B, M), −inf on excluded entries.
        alpha: mixing weight α ∈ [0, 1].

    Returns:
        Shape (B, M): log of the debiased kernel, −inf where ``log_q`` was −inf.
    """
    _check_alpha(alpha)
    if alpha == 0.0:
        return log_q
    allowed = log_q > -math.inf
    n_allowed = allowed.sum(dim=-1, keepdim=True).to(log_q.dtype)  # (B, 1)
    kept = log_q + math.log1p(-alpha) if alpha < 1.0 else torch.full_like(log_q, -math.inf)
    mixed = torch.logaddexp(kept, math.log(alpha) - torch.log(n_allowed))
    return mixed.masked_fill(~allowed, -math.inf)
