"""TiCo and the VICReg–TiCo hybrid: losses with a running (EMA) covariance as state.

Each loss is a pure step function ``(z_a, z_b, cov_prev, **hyper) -> (loss, cov_new)``; the tests
target these. A small ``nn.Module`` per loss keeps the state in a registered buffer, so it is
checkpointed with ``state_dict()`` and follows ``.to(device)``; to the training loop it is a plain
``(z_a, z_b) -> Tensor`` callable. The ``*_terms`` functions return the weighted terms (which sum
to the loss) together with the new state.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslscope.losses._terms import check_pair, covariance, off_diagonal
from sslscope.losses.vicreg import variance_hinge
from sslscope.methods import Method


def _check_state(cov_prev: Tensor, d: int, beta: float) -> None:
    if cov_prev.shape != (d, d):
        raise ValueError(f"cov_prev must have shape ({d}, {d}), got {tuple(cov_prev.shape)}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")


def tico_terms(
    z_a: Tensor, z_b: Tensor, cov_prev: Tensor, *, beta: float, rho: float
) -> tuple[dict[str, Tensor], Tensor]:
    """The two weighted TiCo terms and the new state; the terms sum to :func:`tico_step`'s loss."""
    check_pair(z_a, z_b)
    _check_state(cov_prev, z_a.shape[1], beta)
    u_a, u_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)  # unit rows, (N, D)
    batch_moment = (u_a.T @ u_a).detach() / z_a.shape[0]  # (D, D); detached as in lightly
    cov = beta * cov_prev.detach().to(z_a.dtype) + (1 - beta) * batch_moment  # C_t: constant
    terms = {
        "invariance": 1 - (u_a * u_b).sum(dim=1).mean(),
        "covariance": rho * ((u_a @ cov) * u_a).sum(dim=1).mean(),
    }
    return terms, cov


def tico_step(
    z_a: Tensor, z_b: Tensor, cov_prev: Tensor, *, beta: float = 0.9, rho: float = 8.0
) -> tuple[Tensor, Tensor]:
    r"""One TiCo step: the loss and the updated running covariance.

    With u = z / ‖z‖ row-wise (the inputs are L2-normalised here):

        B_t = u_aᵀ u_a / N                              (D×D, detached, not centred)
        C_t = β · C_{t−1} + (1 − β) · B_t               (C_{t−1} detached)

        L = (1 − mean_n cos(z_a,n, z_b,n))  +  ρ · mean_n u_a,nᵀ C_t u_a,n

    The second term is "covariance contrast": at β = 0 it equals ρ‖u_aᵀu_a/N‖²_F =
    (ρ/N²) Σ_{n,m} (u_a,n · u_a,m)², which repels every pair in proportion to its squared
    similarity; β > 0 adds a memory of past batches. Only z_a enters the covariance term, so the
    loss is not symmetric in the two views (both reference implementations feed z_b from a
    momentum encoder).

    Args:
        z_a: embeddings of the online branch, shape (N, D), N ≥ 2.
        z_b: embeddings of the other (in the references: momentum) branch, shape (N, D).
        cov_prev: C_{t−1}, shape (D, D); zeros at the first step. Detached, and cast to the
            dtype of z (a module may keep its state at a higher precision).
        beta: β, EMA coefficient of the covariance; 0.9 as in the paper and both references.
        rho: ρ, weight of the covariance term; 8.0 is the paper's value (lightly's default;
            sayannag's code defaults to 20 with a help text recommending 8).

    Returns:
        ``(loss, cov_new)``: a scalar tensor and C_t of shape (D, D), detached. The caller
        passes C_t back as ``cov_prev`` on the next step (:class:`TiCoLoss` does that).

    Deviations from the references: follows lightly (B detached, so C_t is a constant and the
    gradient flows only through the explicit u_a factors; invariance written as 1 − mean cos).
    sayannag's version writes −mean cos (a constant offset of 1) and lets the gradient flow
    through the current B, which changes the gradient (not the value, nor C_t). Earlier lightly
    versions (e.g. @214eedc) also centred z before normalising; the current one does not, and
    neither does this. Nothing is gathered across processes.

    References:
        Zhu, Moraes, Karakulak, Sobol, Canziani & LeCun, "TiCo: Transformation Invariance and
        Covariance Contrast for Self-Supervised Visual Representation Learning", 2022,
        arXiv:2206.10698. No official code was found.
        lightly-ai/lightly@e8d317f, lightly/loss/tico_loss.py, TiCoLoss.forward.
        sayannag/TiCo-pytorch@2259b83, TiCo/main.py, TiCo_Loss.forward.
    """
    terms, cov = tico_terms(z_a, z_b, cov_prev, beta=beta, rho=rho)
    return terms["invariance"] + terms["covariance"], cov


def _batch_second_moment(z: Tensor, cov_embedding: str) -> Tensor:
    """B_t of the hybrid, (N, D) -> (D, D): Cov(z) for "raw", uᵀu/N of unit rows for "l2"."""
    if cov_embedding == "raw":
        return covariance(z)  # centred, / (N − 1): VICReg's Cov(Z)
    u = F.normalize(z, dim=1)
    return u.T @ u / z.shape[0]  # TiCo's B: not centred, / N


def _ema_contrast(cov_t: Tensor, batch: Tensor, offdiag_only: bool) -> Tensor:
    """(1/D) Σ C ⊙ (B − ½C) over the off-diagonal (or all) entries; C carries no gradient."""
    prod = cov_t * (batch - cov_t / 2)  # (D, D)
    return (off_diagonal(prod) if offdiag_only else prod).sum() / batch.shape[0]


def vicreg_tico_terms(
    z_a: Tensor,
    z_b: Tensor,
    cov_prev: Tensor,
    *,
    inv_weight: float,
    var_weight: float,
    cov_weight: float,
    beta: float,
    offdiag_only: bool,
    cov_embedding: Literal["raw", "l2"],
    gamma: float,
    eps: float,
) -> tuple[dict[str, Tensor], Tensor]:
    """The three weighted hybrid terms and the new state; see :func:`vicreg_tico_step`."""
    check_pair(z_a, z_b)
    _check_state(cov_prev, z_a.shape[1], beta)
    if cov_embedding not in ("raw", "l2"):
        raise ValueError(f"cov_embedding must be 'raw' or 'l2', got {cov_embedding!r}")
    var = (
        variance_hinge(z_a, gamma=gamma, eps=eps) / 2
        + variance_hinge(z_b, gamma=gamma, eps=eps) / 2
    )
    past = beta * cov_prev.detach().to(z_a.dtype)
    b_a, b_b = _batch_second_moment(z_a, cov_embedding), _batch_second_moment(z_b, cov_embedding)
    c_a = past + (1 - beta) * b_a.detach()  # per-branch EMA estimate, no gradient
    c_b = past + (1 - beta) * b_b.detach()
    contrast = _ema_contrast(c_a, b_a, offdiag_only) + _ema_contrast(c_b, b_b, offdiag_only)
    terms = {
        "invariance": inv_weight * F.mse_loss(z_a, z_b),
        "variance": var_weight * var,
        "covariance": cov_weight * contrast,
    }
    return terms, (c_a + c_b) / 2


def vicreg_tico_step(
    z_a: Tensor,
    z_b: Tensor,
    cov_prev: Tensor,
    *,
    inv_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 2.0,
    beta: float = 0.9,
    offdiag_only: bool = True,
    cov_embedding: Literal["raw", "l2"] = "raw",
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> tuple[Tensor, Tensor]:
    r"""One step of VICReg with TiCo's running covariance as its covariance term.

    Invariance and variance are VICReg's, on the raw embeddings. The covariance term weighs the
    current batch covariance B by a running estimate C that carries no gradient:

        B_a = Cov(Z_a) (centred, /(N−1))   or   B_a = û_aᵀ û_a / N, û = z/‖z‖   ("l2")
        C_a = β · C_{t−1} + (1 − β) · B_a                    (detached; likewise C_b)
        c_t(Z_a) = (1/D) Σ_{i≠j} (C_a)_ij · [(B_a)_ij − ½ (C_a)_ij]

        L = λ · mean(z_a − z_b)²  +  μ · [v(Z_a) + v(Z_b)] / 2  +  ν_h · [c_t(Z_a) + c_t(Z_b)]

        C_t = β · C_{t−1} + (1 − β) · (B_a + B_b) / 2 = (C_a + C_b) / 2      (the new state)

    The gradient of c_t(Z_a) is (1/D) Σ_{i≠j} (C_a)_ij ∇(B_a)_ij: TiCo's covariance contrast with
    the EMA covariance as a fixed weight. At β = 0, C_a = B_a, so c_t(Z_a) = ½ c(Z_a) in value
    and in gradient (∇ tr(C B) with C fixed is half of ∇‖B‖²), where c is VICReg's
    (1/D) Σ_{i≠j} Cov_ij². Hence ν_h = 2ν, and at β = 0 with ``cov_embedding="raw"``,
    ``offdiag_only=True`` and ν_h = 2ν this is exactly :func:`~sslscope.losses.vicreg_loss`.

    Args:
        z_a, z_b: projector outputs of the two views, shape (N, D), N ≥ 2. Used raw for the
            invariance and variance terms (unit-norm rows would keep VICReg's hinge always on).
        cov_prev: C_{t−1}, shape (D, D); zeros at the first step. Detached, cast to z's dtype.
        inv_weight: λ, VICReg's 25.
        var_weight: μ, VICReg's 25.
        cov_weight: ν_h = 2ν with VICReg's ν = 1, so that β = 0 reproduces VICReg.
        beta: β, EMA coefficient; 0.9 is TiCo's. β = 0 is VICReg; β → 1 freezes C.
        offdiag_only: sum over i ≠ j (default). With ``False`` the diagonal is included
            (tr(C B)/D as in TiCo), which penalises variance and fights the hinge.
        cov_embedding: what B is computed from. "raw" (default): the covariance of the raw
            embeddings, centred and divided by N − 1 as VICReg's Cov, so that β = 0 is exact.
            "l2": TiCo's second moment of L2-normalised rows, not centred, divided by N.
        gamma: γ, target standard deviation of the hinge, VICReg's 1.
        eps: ε inside the hinge's square root, VICReg's 1e-4.

    Returns:
        ``(loss, cov_new)``: a scalar tensor and the new state C_t, (D, D), detached.

    Conventions (the seed proposal fixes none of these):
        Symmetric, as VICReg: one term per view, each weighting its own batch covariance.
        One shared state: C_t is the EMA of the two views' mean B. Within a step each view mixes
        the shared past βC_{t−1} with its own current B (not the mean), which keeps β = 0 exact.
        The −½C² part has no gradient; it shifts the value so that it is ½c(Z) at β = 0 and the
        loss, not only its gradient, equals VICReg's there. Equivalently
        c_t = (1/2D) Σ_{i≠j} [B² − (B − C)²]: half VICReg's penalty, less half the squared gap
        between the batch covariance and its running estimate.

    References:
        Bardes, Ponce & LeCun, "VICReg", ICLR 2022, arXiv:2105.04906;
        facebookresearch/vicreg@4e12602, main_vicreg.py, VICReg.forward.
        Zhu et al., "TiCo", 2022, arXiv:2206.10698; lightly-ai/lightly@e8d317f,
        lightly/loss/tico_loss.py. The hybrid is the seed-003 proposal (student report).
    """
    terms, cov = vicreg_tico_terms(
        z_a, z_b, cov_prev, inv_weight=inv_weight, var_weight=var_weight, cov_weight=cov_weight,
        beta=beta, offdiag_only=offdiag_only, cov_embedding=cov_embedding, gamma=gamma, eps=eps,
    )
    return terms["invariance"] + terms["variance"] + terms["covariance"], cov


class _RunningCovariance(nn.Module):
    """Holds C as the buffer ``cov``, (D, D), sized at construction or by the first batch.

    :meth:`terms` advances the state and returns the weighted terms (what the training loop
    logs); :meth:`forward` returns their sum, the loss.
    """

    cov: Tensor

    def __init__(
        self,
        terms_fn: Callable[..., tuple[dict[str, Tensor], Tensor]],
        step: Callable[..., Any],
        dim: int | None,
        step_kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        bound = inspect.signature(step).bind(None, None, None, **step_kwargs)  # unknown: TypeError
        bound.apply_defaults()  # the step function's signature holds the defaults
        self.step_kwargs = {k: v for k, v in bound.arguments.items()
                            if k not in ("z_a", "z_b", "cov_prev")}
        self._terms_fn = terms_fn
        self.register_buffer("cov", torch.zeros(dim or 0, dim or 0))

    def _state_like(self, z: Tensor) -> Tensor:
        if self.cov.numel() == 0:  # lazy: D from the first batch, at least the buffer's precision
            d, dtype = z.shape[1], torch.promote_types(z.dtype, self.cov.dtype)
            self.cov = torch.zeros(d, d, dtype=dtype, device=z.device)
        return self.cov

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "cov")
        if saved is not None and self.cov.numel() == 0:  # a lazy buffer takes the saved size
            dtype = torch.promote_types(saved.dtype, self.cov.dtype)
            self.cov = torch.empty(saved.shape, dtype=dtype, device=self.cov.device)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def terms(self, z_a: Tensor, z_b: Tensor) -> dict[str, Tensor]:
        """The weighted terms of this step's loss; advances ``cov`` to C_t."""
        terms, cov = self._terms_fn(z_a, z_b, self._state_like(z_a), **self.step_kwargs)
        with torch.no_grad():
            self.cov.copy_(cov)  # safe: the graph holds C_t, a new tensor, not the buffer
        return terms

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        return sum(self.terms(z_a, z_b).values())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.step_kwargs.items())


class TiCoLoss(_RunningCovariance):
    """TiCo as a callable ``(z_a, z_b) -> loss``; each call advances the buffer ``cov``.

    Args:
        dim: D, to size the buffer now; ``None`` sizes it from the first batch (and a lazy
            module loading a state dict takes the saved size).
        **step_kwargs: ``beta``, ``rho``, passed to :func:`tico_step`, whose signature holds
            the defaults.
    """

    def __init__(self, dim: int | None = None, **step_kwargs: Any) -> None:
        super().__init__(tico_terms, tico_step, dim, step_kwargs)


class VICRegTiCoLoss(_RunningCovariance):
    """The VICReg–TiCo hybrid as a callable ``(z_a, z_b) -> loss``; each call advances ``cov``.

    Args:
        dim: D, to size the buffer now; ``None`` sizes it from the first batch.
        **step_kwargs: passed to :func:`vicreg_tico_step`, whose signature holds the defaults.
    """

    def __init__(self, dim: int | None = None, **step_kwargs: Any) -> None:
        super().__init__(vicreg_tico_terms, vicreg_tico_step, dim, step_kwargs)


_WITH_STATE = {"z_a": "N D", "z_b": "N D", "cov_prev": "state D D"}
METHODS = [
    Method("tico", "TiCo: invariance + EMA covariance contrast (Zhu et al. 2022)",
           tico_step, tico_terms, args=_WITH_STATE, module=TiCoLoss),
    Method("vicreg_tico", "VICReg with TiCo's EMA covariance term (seed 003)",
           vicreg_tico_step, vicreg_tico_terms, args=_WITH_STATE, module=VICRegTiCoLoss),
]
