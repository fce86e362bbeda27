"""Objectives: pure functions on embeddings, and the one registry of methods.

Each family's file (``vicreg.py``, ``mmcr.py``, …) holds its losses and ends with ``METHODS``, a
list of :class:`sslscope.methods.Method` records: the loss, its weighted terms, an optional
module holding state or parameters, the model pieces it needs, its inputs adapter and the
declared shapes of its inputs. :data:`FAMILIES` names those files; adding an objective is one
new file plus one line there (or :func:`register` from anywhere, e.g. a test or a notebook).

``METHODS[name]`` is the record and ``LOSSES[name]`` its loss (derived from METHODS, kept as a
plain dict for ``LOSSES["nt_xent"](z_a, z_b, temperature=0.2)``). The positional inputs of a
loss depend on its family, and their names say what they are: ``(z_a, z_b)`` two views;
``(z_a, z_b, *more_views)`` any number of views; ``(z,)`` stacked views (N, K, D);
``(p_a, p_b, t_a, t_b)`` predictions and targets; ``(z_a, z_b, cov_prev)`` a step of a loss with
running state, returning ``(loss, new_state)``. :func:`resolve_loss_kwargs` fills the defaults
from the loss signature, so no default lives in two places.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from sslscope.errors import UserError, shown
from sslscope.losses._terms import (
    center,
    check_pair,
    covariance,
    cross_correlation,
    off_diagonal,
    standardize,
)
from sslscope.losses.barlow_twins import barlow_twins_linear_loss, barlow_twins_loss
from sslscope.losses.byol import byol_loss, simsiam_loss
from sslscope.losses.clip import CLIPLoss, LogitScale, clip_loss
from sslscope.losses.contrastive import nt_xent_loss, nt_xent_terms
from sslscope.losses.mmcr import (
    mmcr_loss,
    mmcr_momentum_loss,
    mmcr_multimodal_loss,
    pretraining_percent_error,
)
from sslscope.losses.tico import TiCoLoss, VICRegTiCoLoss, tico_step, vicreg_tico_step
from sslscope.losses.vicreg import covariance_offdiag, variance_hinge, vicreg_loss, vicreg_terms
from sslscope.methods import Method

# The families, in the order --help and studies list their methods: one line per file.
FAMILIES = (
    "sslscope.losses.vicreg",
    "sslscope.losses.contrastive",
    "sslscope.losses.barlow_twins",
    "sslscope.losses.tico",
    "sslscope.losses.mmcr",
    "sslscope.losses.byol",
    "sslscope.losses.clip",
    "sslscope.losses.icon",
)

METHODS: dict[str, Method] = {}
LOSSES: dict[str, Callable[..., Any]] = {}


def register(method: Method) -> Method:
    """Add ``method`` to METHODS (and its loss to LOSSES) after checking it; returns it.

    Raises:
        ValueError: the name is taken, or the record disagrees with its loss's signature.
    """
    method.check()
    if method.name in METHODS:
        raise ValueError(f"a method named '{method.name}' is already registered")
    METHODS[method.name] = method
    LOSSES[method.name] = method.loss
    return method


for _family in FAMILIES:
    for _method in importlib.import_module(_family).METHODS:
        register(_method)


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name is a UserError listing the choices."""
    if name not in METHODS:
        raise UserError(f"unknown method '{shown(name)}'; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def loss_defaults(name: str) -> dict[str, Any]:
    """Keyword-only hyper-parameters of method ``name``'s loss (or module) and their defaults."""
    return get_method(name).defaults()


def resolve_loss_kwargs(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The loss's defaults updated with ``overrides``; unknown keys or types are a UserError."""
    return get_method(name).resolve(overrides)


__all__ = [
    "FAMILIES",
    "LOSSES",
    "METHODS",
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
    "get_method",
    "loss_defaults",
    "mmcr_loss",
    "mmcr_momentum_loss",
    "mmcr_multimodal_loss",
    "nt_xent_loss",
    "nt_xent_terms",
    "off_diagonal",
    "pretraining_percent_error",
    "register",
    "resolve_loss_kwargs",
    "simsiam_loss",
    "standardize",
    "tico_step",
    "variance_hinge",
    "vicreg_loss",
    "vicreg_terms",
    "vicreg_tico_step",
]
