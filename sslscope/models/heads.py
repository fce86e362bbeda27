"""Projector and predictor heads, and the encoder that ties input, backbone and heads together."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def mlp_head(in_dim: int, dims: Sequence[int], *, last_bn: bool = False) -> nn.Module:
    """Projector / predictor MLP: (Linear → BatchNorm → ReLU) × (len(dims) − 1), then Linear.

    VICReg's projector: "The projector consists of three fully-connected layers … the first two
    layers … followed by a batch normalization layer and ReLU" (Bardes et al. 2022, §4.2); the
    hidden layers have no bias because BatchNorm follows. An empty ``dims`` gives the identity
    (z = h).

    Args:
        in_dim: size of the input (the backbone's ``out_dim``).
        dims: hidden widths followed by the output width, e.g. (2048, 2048, 2048).
        last_bn: append BatchNorm1d(affine=False) to the output (SimSiam's projector has one).

    Shapes:
        (N, in_dim) -> (N, dims[-1])
    """
    if not dims:
        return nn.Identity()
    layers: list[nn.Module] = []
    prev = in_dim
    for width in dims[:-1]:
        layers += [nn.Linear(prev, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
        prev = width
    layers.append(nn.Linear(prev, dims[-1], bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(dims[-1], affine=False))
    return nn.Sequential(*layers)


class Normalize(nn.Module):
    """Per-channel (x − mean) / std with the statistics kept as buffers (exported with weights)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Encoder(nn.Module):
    """images in [0, 1] → normalise → backbone (h) → projector (z).

    Any ``nn.Module`` mapping (N, C, H, W) to (N, out_dim) can be the backbone; pass
    ``out_dim`` explicitly if it has no ``out_dim`` attribute.

    Shapes:
        x (N, C, H, W) float in [0, 1] -> h (N, backbone.out_dim), z (N, projector output)
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, normalize: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.backbone(self.normalize(x))
        return h, self.projector(h)

    def tap_names(self) -> list[str]:
        """The backbone's taps in forward order (its ``feature_dims``); [] if it has none."""
        return list(getattr(self.backbone, "feature_dims", {}))

    def forward_taps(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """h, z and every tap of the backbone (``forward_features``) in one forward pass.

        A backbone with taps returns its last tap equal to its ``forward``, so h is that tap.

        Shapes:
            x (N, C, H, W) -> h (N, D_h), z (N, D_z), {tap: (N, feature_dims[tap])}
        """
        taps = self.backbone.forward_features(self.normalize(x))
        h = taps[next(reversed(taps))]
        return h, self.projector(h), taps
