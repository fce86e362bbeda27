"""Objectives: pure functions on embeddings, registered by name.

``LOSSES[name]`` is the loss, with the paper defaults as keyword-only arguments in its
signature. Its positional inputs depend on the method family, and their names say what they are:
``(z_a, z_b)`` two views; ``(z_a, z_b, *more)`` any number of views; ``(z,)`` stacked views
(N, K, D); ``(p_a, p_b, t_a, t_b)`` predictions and targets; ``(z_a, z_b, cov_prev)`` a step of a
loss with running state, returning ``(loss, new_state)``.

``LOSS_TERMS[name]`` takes the same inputs and all keyword arguments (required) and returns the
weighted terms, a dict whose values sum to the loss; the training loop minimises that sum and
logs the terms. Losses with state or learnable parameters are trained through the module in
``LOSS_MODULES[name]``, which keeps the state in registered buffers (checkpointed) and has a
``terms`` method of its own. :func:`resolve_loss_kwargs` fills the defaults from the loss
signature, so no default lives in two places.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from torch import Tensor, nn

from sslscope.errors import UserError
from sslscope.losses._terms import (
    center,
    check_pair,
    covariance,
    cross_correlation,
    off_diagonal,
    standardize,
)
from sslscope.losses.barlow_twins import (
    barlow_twins_linear_loss,
    barlow_twins_linear_terms,
    barlow_twins_loss,
    barlow_twins_terms,
)
from sslscope.losses.byol import byol_loss, byol_terms, simsiam_loss, simsiam_terms
from sslscope.losses.clip import CLIPLoss, LogitScale, clip_loss, clip_terms
from sslscope.losses.contrastive import nt_xent_loss, nt_xent_terms
from sslscope.losses.mmcr import (
    mmcr_loss,
    mmcr_momentum_loss,
    mmcr_momentum_terms,
    mmcr_multimodal_loss,
    mmcr_multimodal_terms,
    mmcr_terms,
    pretraining_percent_error,
)
from sslscope.losses.tico import (
    TiCoLoss,
    VICRegTiCoLoss,
    tico_step,
    tico_terms,
    vicreg_tico_step,
    vicreg_tico_terms,
)
from sslscope.losses.vicreg import covariance_offdiag, variance_hinge, vicreg_loss, vicreg_terms

LOSSES: dict[str, Callable[..., Any]] = {
    "nt_xent": nt_xent_loss,
    "barlow_twins": barlow_twins_loss,
    "barlow_twins_linear": barlow_twins_linear_loss,
    "vicreg": vicreg_loss,
    "tico": tico_step,
    "vicreg_tico": vicreg_tico_step,
    "mmcr": mmcr_loss,
    "mmcr_momentum": mmcr_momentum_loss,
    "byol": byol_loss,
    "simsiam": simsiam_loss,
    "clip": clip_loss,
    "mmcr_multimodal": mmcr_multimodal_loss,
}

LOSS_TERMS: dict[str, Callable[..., Any]] = {
    "nt_xent": nt_xent_terms,
    "barlow_twins": barlow_twins_terms,
    "barlow_twins_linear": barlow_twins_linear_terms,
    "vicreg": vicreg_terms,
    "tico": tico_terms,
    "vicreg_tico": vicreg_tico_terms,
    "mmcr": mmcr_terms,
    "mmcr_momentum": mmcr_momentum_terms,
    "byol": byol_terms,
    "simsiam": simsiam_terms,
    "clip": clip_terms,
    "mmcr_multimodal": mmcr_multimodal_terms,
}

LOSS_MODULES: dict[str, Callable[..., nn.Module]] = {
    "tico": TiCoLoss,
    "vicreg_tico": VICRegTiCoLoss,
    "clip": CLIPLoss,
}


def loss_defaults(name: str) -> dict[str, Any]:
    """Keyword-only hyper-parameters of ``LOSSES[name]`` (or of its module) and their defaults."""
    fn = LOSSES[name]
    if name in LOSS_MODULES and not _keyword_only(fn):
        fn = LOSS_MODULES[name]  # a learnable loss: its options live on the module (CLIP τ₀)
    return _keyword_only(fn)


def _keyword_only(fn: Callable[..., Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def resolve_loss_kwargs(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The loss's defaults updated with ``overrides``; unknown keys or types are a UserError."""
    if name not in LOSSES:
        raise UserError(f"unknown loss '{name}'; choose one of: {', '.join(sorted(LOSSES))}")
    kwargs = loss_defaults(name)
    for key, value in overrides.items():
        if key not in kwargs:
            known = ", ".join(sorted(kwargs)) or "none"
            raise UserError(f"loss '{name}' has no option '{key}'; its options are: {known}")
        default = kwargs[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if default is not None and type(value) is not type(default):
            raise UserError(
                f"loss option '{key}' must be a {type(default).__name__}, got {value!r}"
            )
        kwargs[key] = value
    return kwargs


def make_objective(
    name: str, kwargs: Mapping[str, Any], dim: int
) -> tuple[Callable[..., dict[str, Tensor]], nn.Module | None]:
    """The callable the training loop minimises (returning weighted terms), and its module.

    Args:
        name: key into LOSSES.
        kwargs: complete keyword arguments, from :func:`resolve_loss_kwargs`.
        dim: embedding dimension D, to size a loss module's state.

    Returns:
        ``(terms_fn, module)``: ``module`` is None for pure losses; otherwise it holds state or
        parameters that must be checkpointed (and optimised, if it has parameters).
    """
    if name in LOSS_MODULES:
        module = LOSS_MODULES[name](dim, **kwargs)
        return module.terms, module
    return partial(LOSS_TERMS[name], **kwargs), None


__all__ = [
    "LOSSES",
    "LOSS_MODULES",
    "LOSS_TERMS",
    "CLIPLoss",
    "LogitScale",
    "TiCoLoss",
    "VICRegTiCoLoss",
    "barlow_twins_linear_loss",
    "barlow_twins_loss",
    "byol_loss",
    "center",
    "check_pair",
    "clip_loss",
    "covariance",
    "covariance_offdiag",
    "cross_correlation",
    "loss_defaults",
    "make_objective",
    "mmcr_loss",
    "mmcr_momentum_loss",
    "mmcr_multimodal_loss",
    "nt_xent_loss",
    "nt_xent_terms",
    "off_diagonal",
    "pretraining_percent_error",
    "resolve_loss_kwargs",
    "simsiam_loss",
    "standardize",
    "tico_step",
    "variance_hinge",
    "vicreg_loss",
    "vicreg_terms",
    "vicreg_tico_step",
]
