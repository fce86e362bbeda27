r"""Divergences between the rows of a supervisory kernel p and a learned kernel q.

The I-Con loss (paper Eq. 1) is a *sum* over anchors, L = Σ_i KL(p(·|i) ‖ q(·|i)). Every
function here takes the *mean* over the B rows instead: then the value is on the scale of the
method losses it generalises (NT-Xent, SupCon and ``F.cross_entropy`` all average over anchors)
and the equivalences of :mod:`sslscope.icon.table` hold without a factor B. Multiply by B for
the paper's number.

Conventions: 0 · log 0 = 0, and an entry with p = 0 never touches log q (log q is masked to 0
*before* the product, so a −inf there gives neither NaN in the value nor in the gradient).

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929, Eq. 1 and Thm 13 (reverse KL).
    Reference code: ShadeAlsha/ICon@afbf34f3, playground/divergences.py, kl_divergence and
    reverse_kl_divergence. Naming deviation: ICon's ``kl_divergence`` returns the
    cross-entropy Σ_ij −p log q / B, which is :func:`icon_cross_entropy` here, not
    :func:`icon_kl` (they differ by the mean entropy of p).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from torch import Tensor

from sslscope.icon.debiasing import debias, debias_log


def _check_rows(p_sup: Tensor, log_q: Tensor) -> None:
    if p_sup.ndim != 2 or p_sup.shape != log_q.shape:
        raise ValueError(
            f"expected p_sup and log_q of the same shape (B, M), got {tuple(p_sup.shape)} "
            f"and {tuple(log_q.shape)}"
        )


def _masked_log(p: Tensor) -> Tensor:
    """Elementwise log p where p > 0 and 0 where p = 0 (so p · log p = 0 there, finite grad)."""
    zero = p == 0
    return p.masked_fill(zero, 1.0).log()


def row_entropy(p_sup: Tensor) -> Tensor:
    r"""Entropy of each row in nats: H(p(·|i)) = −Σ_j p(j|i) log p(j|i), with 0 log 0 = 0.

    Args:
        p_sup: row-stochastic kernel, shape (B, M).

    Returns:
        Shape (B,).
    """
    return -(p_sup * _masked_log(p_sup)).sum(dim=1)


def icon_cross_entropy(p_sup: Tensor, log_q: Tensor) -> Tensor:
    r"""Mean over anchors of the cross-entropy between the rows of p and q.

        L = (1/B) Σ_i H(p(·|i), q(·|i)) = −(1/B) Σ_i Σ_{j: p(j|i)>0} p(j|i) log q(j|i)

    With a fixed p this has the same gradient as :func:`icon_kl`; it is what NT-Xent, SupCon and
    cross-entropy compute.

    Args:
        p_sup: supervisory kernel, shape (B, M), rows summing to 1.
        log_q: learned log-kernel, shape (B, M); −inf allowed where p_sup = 0.

    Returns:
        Scalar tensor; +inf if some p(j|i) > 0 meets log q(j|i) = −inf.

    References:
        ShadeAlsha/ICon@afbf34f3, playground/divergences.py, kl_divergence (the same value:
        its sum over entries with p > 1e-10, divided by B).
    """
    _check_rows(p_sup, log_q)
    safe_log_q = log_q.masked_fill(p_sup == 0, 0.0)
    return -(p_sup * safe_log_q).sum(dim=1).mean()


def icon_kl(p_sup: Tensor, log_q: Tensor) -> Tensor:
    r"""Mean over anchors of KL(p(·|i) ‖ q(·|i)): the I-Con loss, averaged instead of summed.

        L = (1/B) Σ_i Σ_{j: p(j|i)>0} p(j|i) (log p(j|i) − log q(j|i))
          = icon_cross_entropy(p, q) − (1/B) Σ_i H(p(·|i))

    Zero exactly when q = p on the support of p.

    Args:
        p_sup: supervisory kernel, shape (B, M), rows summing to 1.
        log_q: learned log-kernel, shape (B, M); −inf allowed where p_sup = 0.

    Returns:
        Scalar tensor, ≥ 0 up to rounding.

    References:
        I-Con Eq. 1.
    """
    _check_rows(p_sup, log_q)
    safe_log_q = log_q.masked_fill(p_sup == 0, 0.0)
    return (p_sup * (_masked_log(p_sup) - safe_log_q)).sum(dim=1).mean()


def icon_reverse_kl(p_sup: Tensor, log_q: Tensor) -> Tensor:
    r"""Mean over anchors of the reverse divergence KL(q(·|i) ‖ p(·|i)).

        L = (1/B) Σ_i Σ_{j: q(j|i)>0} q(j|i) (log q(j|i) − log p(j|i))

    Entries with q = 0 (log q = −inf) contribute 0 whatever p is. Entries with q > 0 and p = 0
    contribute +inf, and so does the loss: that is the divergence's true value, and no ε floor
    hides it. In practice make p positive wherever q is, by debiasing p
    (``icon_loss(..., divergence="reverse_kl", alpha_p=α)`` with α > 0).

    Deviation from the reference code: ICon's ``reverse_kl_divergence`` clamps p and q at 1e-10,
    which turns the +inf into a finite q·(log q + 23.03) per entry.

    Args:
        p_sup: supervisory kernel, shape (B, M), rows summing to 1.
        log_q: learned log-kernel, shape (B, M), −inf on excluded entries.

    Returns:
        Scalar tensor, possibly +inf (see above).

    References:
        I-Con Thm 13 (k-means is reverse-KL I-Con with an entropy penalty).
        ShadeAlsha/ICon@afbf34f3, playground/divergences.py, reverse_kl_divergence.
    """
    _check_rows(p_sup, log_q)
    q_zero = log_q == -math.inf
    safe_log_q = log_q.masked_fill(q_zero, 0.0)
    # log p: 0 where q = 0 (those terms vanish), −inf where q > 0 = p (the honest +inf).
    safe_log_p = _masked_log(p_sup).masked_fill((p_sup == 0) & ~q_zero, -math.inf)
    return (log_q.exp() * (safe_log_q - safe_log_p)).sum(dim=1).mean()


DIVERGENCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "kl": icon_kl,
    "reverse_kl": icon_reverse_kl,
    "cross_entropy": icon_cross_entropy,
}


def icon_loss(
    p_sup: Tensor,
    log_q: Tensor,
    *,
    divergence: Literal["kl", "reverse_kl", "cross_entropy"] = "kl",
    alpha_p: float = 0.0,
    alpha_q: float = 0.0,
) -> Tensor:
    r"""The I-Con loss with optional debiasing of either side (mean over anchors).

        p̃ = (1 − α_p) p + α_p / N,   q̃ = (1 − α_q) q + α_q / N   (N per row, see below)
        L = (1/B) Σ_i D(p̃(·|i), q̃(·|i)),   D = KL(p̃‖q̃), KL(q̃‖p̃) or H(p̃, q̃)

    The allowed columns of each row, and so N, are the candidates of the learned kernel: the
    entries where ``log_q`` is finite (B − 1 for the self-excluding (B, B) kernels, C for
    :func:`sslscope.icon.learned.class_prototypes`). Debiasing both sides is the paper's best
    setting.

    Args:
        p_sup: supervisory kernel, shape (B, M), rows summing to 1, zero where log_q is −inf.
        log_q: learned log-kernel, shape (B, M), −inf on non-candidates.
        divergence: "kl" (default: the paper's Eq. 1 and ICon's ``Config`` default),
            "reverse_kl", or "cross_entropy" (same gradient as "kl" when p is fixed).
        alpha_p: debiasing weight for p (0: none).
        alpha_q: debiasing weight for q, applied in log space (0: none).

    Returns:
        Scalar tensor.

    References:
        I-Con Eq. 1 and §3.3. ShadeAlsha/ICon@afbf34f3, model/kernel_model.py, Model.
    """
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {sorted(DIVERGENCES)}, got {divergence!r}")
    _check_rows(p_sup, log_q)
    if alpha_p:
        p_sup = debias(p_sup, alpha=alpha_p, allowed=log_q > -math.inf)
    if alpha_q:
        log_q = debias_log(log_q, alpha=alpha_q)
    return DIVERGENCES[divergence](p_sup, log_q)
