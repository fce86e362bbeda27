"""Backbones, heads and the encoder.

``BACKBONES[name](in_channels, image_size)`` builds a backbone: an ``nn.Module`` mapping
(N, C, H, W) to (N, out_dim) with an ``out_dim`` attribute. Any other module with that contract
can be passed to :func:`build_encoder` from Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from sslscope.errors import UserError
from sslscope.models.heads import Encoder, Normalize, mlp_head
from sslscope.models.small import MLP, SmallCNN


def _resnet(depth: int) -> Callable[[int, int], nn.Module]:
    def build(in_channels: int, image_size: int) -> nn.Module:
        from sslscope.models import resnet

        return getattr(resnet, f"resnet{depth}")(in_channels=in_channels)

    return build


BACKBONES: dict[str, Callable[[int, int], nn.Module]] = {
    "mlp": lambda c, s: MLP(c * s * s),
    "small_cnn": lambda c, s: SmallCNN(c),
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "resnet50": _resnet(50),
}


def build_backbone(name: str, in_channels: int, image_size: int) -> nn.Module:
    """Build a registered backbone; an unknown name is a UserError."""
    if name not in BACKBONES:
        raise UserError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](in_channels, image_size)


def build_encoder(
    backbone: nn.Module,
    projector_dims: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out_dim: int | None = None,
) -> Encoder:
    """Wrap a backbone with input normalisation and a projector (see :func:`mlp_head`)."""
    dim = out_dim if out_dim is not None else getattr(backbone, "out_dim", None)
    if dim is None:
        raise ValueError("the backbone has no out_dim attribute; pass out_dim=")
    return Encoder(backbone, mlp_head(dim, projector_dims), Normalize(mean, std))


__all__ = [
    "BACKBONES",
    "MLP",
    "Encoder",
    "Normalize",
    "SmallCNN",
    "build_backbone",
    "build_encoder",
    "mlp_head",
]
