"""Backbones, heads and the encoder.

A backbone is named by a spec, ``name`` or ``name:arg1,arg2`` with positive integer arguments
(``small_cnn``, ``res_lh:10,250``). ``BACKBONES[name]`` is its builder: called as
``builder((C, H, W), *args)`` it returns an ``nn.Module`` mapping (N, C, H, W) to
(N, out_dim) with an ``out_dim`` attribute. A builder declares the arguments a spec must give
as the required parameters after ``shape`` in its signature, so the registry, the parser and
the error messages cannot disagree. Any other module with that contract can be passed to
:func:`build_encoder` from Python.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

from torch import nn

from sslscope.errors import UserError
from sslscope.models.cross_modal import CrossModalEncoder, split_modalities
from sslscope.models.heads import Encoder, Normalize, mlp_head
from sslscope.models.small import MLP, Linear, SmallCNN

Shape = tuple[int, int, int]


def _resnet(depth: int) -> Callable[[Shape], nn.Module]:
    def build(shape: Shape) -> nn.Module:
        from sslscope.models import resnet

        return getattr(resnet, f"resnet{depth}")(in_channels=shape[0])

    return build


def _res_lh(shape: Shape, L: int, H: int) -> nn.Module:  # L, H: the paper's names, in errors
    from sslscope.models import resnet

    return resnet.res_lh(L, H, in_channels=shape[0])


# Shown in the error for a malformed spec: Ben-Shaul et al.'s main model, RES-10-250.
_res_lh.example = "10,250"  # type: ignore[attr-defined]

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda shape: MLP(math.prod(shape)),
    "small_cnn": lambda shape: SmallCNN(shape[0]),
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "resnet50": _resnet(50),
    "res_lh": _res_lh,
    "linear": lambda shape, D: Linear(math.prod(shape), D),  # D: the theory's embedding width
}


def _arg_names(builder: Callable[..., nn.Module]) -> list[str]:
    """The required parameters after ``shape``: what a spec must give after the colon."""
    params = list(inspect.signature(builder).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in positional and p.default is p.empty]


def _usage(name: str) -> str:
    args = _arg_names(BACKBONES[name])
    return f"{name}:{','.join(args)}" if args else name


def _parse_backbone(spec: str) -> tuple[str, tuple[int, ...]]:
    """``"res_lh:10,250"`` → ``("res_lh", (10, 250))``; a malformed spec is a UserError."""
    name, colon, rest = spec.partition(":")
    if name not in BACKBONES:
        choices = ", ".join(_usage(n) for n in BACKBONES)
        raise UserError(f"unknown backbone '{name}'; choose one of: {choices}")
    arg_names = _arg_names(BACKBONES[name])
    if not arg_names:
        if colon:
            raise UserError(f"backbone '{name}' takes no arguments, got '{spec}'")
        return name, ()
    parts = [a.strip() for a in rest.split(",")] if colon else []
    # Every argument so far is a count or a width, so "positive" is checked here, before
    # anything is built, rather than left to each model's own ValueError.
    if len(parts) != len(arg_names) or not all(a.isdecimal() and int(a) >= 1 for a in parts):
        example = getattr(BACKBONES[name], "example", None)
        hint = f", e.g. {name}:{example}" if example else ""
        raise UserError(
            f"backbone '{name}' takes {','.join(arg_names)} as positive integers{hint}; "
            f"got '{spec}'"
        )
    return name, tuple(int(a) for a in parts)


def check_backbone(spec: str) -> None:
    """Raise a one-sentence UserError unless ``spec`` names a registered backbone correctly.

    Validates the name and the arguments (their number, and that each is a positive integer)
    without building anything, so a config can be checked before any weights are allocated.

    Args:
        spec: ``name`` or ``name:arg1,arg2``, e.g. ``"small_cnn"`` or ``"res_lh:10,250"``.
    """
    _parse_backbone(spec)


def build_backbone(spec: str, shape: Shape) -> nn.Module:
    """Build the backbone a spec names, for images of shape (C, H, W).

    Args:
        spec: ``name`` or ``name:arg1,arg2`` (see :func:`check_backbone`).
        shape: (C, H, W) of the images.

    Returns:
        The module ``BACKBONES[name](shape, *args)``.

    Raises:
        UserError: an unknown name, or arguments that do not match the builder's.
    """
    name, args = _parse_backbone(spec)
    return BACKBONES[name](shape, *args)


def build_encoder(
    backbone: nn.Module,
    projector_dims: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out_dim: int | None = None,
    projector_last_bn: bool = False,
) -> Encoder:
    """Wrap a backbone with input normalisation and a projector (see :func:`mlp_head`).

    ``projector_last_bn`` ends the projector with BatchNorm1d(affine=False), as SimSiam does.
    """
    # out_dim is sslscope's name; timm models call it num_features.
    dim = out_dim or getattr(backbone, "out_dim", None) or getattr(backbone, "num_features", None)
    if dim is None:
        raise ValueError("the backbone has no out_dim (or num_features) attribute; pass out_dim=")
    projector = mlp_head(dim, projector_dims, last_bn=projector_last_bn)
    return Encoder(backbone, projector, Normalize(mean, std))


__all__ = [
    "BACKBONES",
    "MLP",
    "Linear",
    "CrossModalEncoder",
    "Encoder",
    "Normalize",
    "SmallCNN",
    "build_backbone",
    "build_encoder",
    "check_backbone",
    "mlp_head",
    "split_modalities",
]
