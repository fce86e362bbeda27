"""Objectives: pure functions on embeddings, registered by name.

``LOSSES[name]`` is the loss: ``(z_a, z_b, **kwargs) -> scalar Tensor`` with the paper defaults in
its signature. ``LOSS_TERMS[name]`` takes the same arguments (all required) and returns the
weighted terms as a dict whose values sum to the loss; the training loop calls it only at log
steps, under ``torch.no_grad()``. :func:`resolve_loss_kwargs` fills the defaults from the loss
signature, so no default lives in two places.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from sslscope.errors import UserError
from sslscope.losses._terms import (
    center,
    check_pair,
    covariance,
    cross_correlation,
    off_diagonal,
    standardize,
)
from sslscope.losses.contrastive import nt_xent_loss, nt_xent_terms
from sslscope.losses.vicreg import covariance_offdiag, variance_hinge, vicreg_loss, vicreg_terms

LOSSES: dict[str, Callable[..., Tensor]] = {
    "nt_xent": nt_xent_loss,
    "vicreg": vicreg_loss,
}

LOSS_TERMS: dict[str, Callable[..., dict[str, Tensor]]] = {
    "nt_xent": nt_xent_terms,
    "vicreg": vicreg_terms,
}


def loss_defaults(name: str) -> dict[str, Any]:
    """Keyword-only hyper-parameters of ``LOSSES[name]`` and their defaults."""
    params = inspect.signature(LOSSES[name]).parameters.values()
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


__all__ = [
    "LOSSES",
    "LOSS_TERMS",
    "center",
    "check_pair",
    "covariance",
    "covariance_offdiag",
    "cross_correlation",
    "loss_defaults",
    "nt_xent_loss",
    "nt_xent_terms",
    "off_diagonal",
    "resolve_loss_kwargs",
    "standardize",
    "variance_hinge",
    "vicreg_loss",
    "vicreg_terms",
]
