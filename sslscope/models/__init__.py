"""Backbones, heads and the encoder.

``BACKBONES[name]((C, H, W))`` builds a backbone for images of that shape: an
``nn.Module`` mapping (N, C, H, W) to (N, out_dim) with an ``out_dim`` attribute. Any other
module with that contract can be passed to :func:`build_encoder` from Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import nn

from sslscope.errors import UserError
from sslscope.models.cross_modal import CrossModalEncoder, split_modalities
from sslscope.models.heads import Encoder, Normalize, mlp_head
from sslscope.models.small import MLP, SmallCNN

Shape = tuple[int, int, int]


def _resnet(depth: int) -> Callable[[Shape], nn.Module]:
    def build(shape: Shape) -> nn.Module:
        from sslscope.models import resnet

        return getattr(resnet, f"resnet{depth}")(in_channels=shape[0])

    return build


BACKBONES: dict[str, Callable[[Shape], nn.Module]] = {
    "mlp": lambda shape: MLP(math.prod(shape)),
    "small_cnn": lambda shape: SmallCNN(shape[0]),
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "resnet50": _resnet(50),
}


def build_backbone(name: str, shape: Shape) -> nn.Module:
    """Build a registered backbone for images of shape (C, H, W); an unknown name is a UserError."""
    if name not in BACKBONES:
        raise UserError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](shape)


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
    "CrossModalEncoder",
    "Encoder",
    "Normalize",
    "SmallCNN",
    "build_backbone",
    "build_encoder",
    "mlp_head",
    "split_modalities",
]
