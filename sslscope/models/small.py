"""Backbones for small images: a linear map, an MLP and a small CNN sized for 8×8 digits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Linear(nn.Module):
    """The stepwise theory's model: f(x) = W (x − x̄) on the flattened pixels, no bias.

    x is the encoder's normalised input, flattened; x̄ (``centre``, a buffer) is the mean
    training image, set by :meth:`fit_statistics` when the model is built from data, so W acts
    on centred pixels. With ``--projector-dims ''`` (z = h) and ``barlow_twins_linear``, the
    ordinary training loop trains exactly the model of :mod:`sslscope.theory.stepwise`, whose Γ
    is computed on the same centred x (:meth:`inputs`).

    Args:
        in_features: m = C·H·W.
        out_features: d, the embedding width (``out_dim``).

    Shapes:
        (N, C, H, W) -> (N, out_features)
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.flatten = nn.Flatten()
        self.weight_map = nn.Linear(in_features, out_features, bias=False)
        self.register_buffer("centre", torch.zeros(in_features))
        self.out_dim = out_features
        self.feature_dims: dict[str, int] = {"linear": out_features}

    @torch.no_grad()
    def fit_statistics(self, x: Tensor) -> None:
        """Set x̄ to the mean of normalised images x, (N, C, H, W)."""
        self.centre.copy_(self.flatten(x).mean(0))

    def inputs(self, x: Tensor) -> Tensor:
        """The centred, flattened inputs W multiplies: (N, C, H, W) -> (N, m)."""
        return self.flatten(x) - self.centre

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """The one tap: ``{"linear": forward(x)}``."""
        return {"linear": self.forward(x)}

    def forward(self, x: Tensor) -> Tensor:
        return self.weight_map(self.inputs(x))


class MLP(nn.Module):
    """Flatten, then Linear → BatchNorm → ReLU blocks.

    Args:
        in_features: C·H·W of the input images.
        widths: hidden widths; the last one is the representation size ``out_dim``.

    Attributes:
        feature_dims: the taps ``layer1`` … ``layerK`` (after each ReLU) and their widths.

    Shapes:
        (N, C, H, W) -> (N, widths[-1])
    """

    def __init__(self, in_features: int, widths: Sequence[int] = (512, 512)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for width in widths:
            layers += [nn.Linear(prev, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            prev = width
        self.net = nn.Sequential(*layers)
        self.out_dim = prev
        self.feature_dims: dict[str, int] = {f"layer{i + 1}": w for i, w in enumerate(widths)}

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """The output of every hidden layer (after its ReLU); the last equals ``forward(x)``.

        Returns:
            ``{"layer1", …, "layerK"}`` → (N, widths[k]).
        """
        return _taps_after_relu(self.net, x, "layer", pool=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _taps_after_relu(layers: nn.Sequential, x: Tensor, prefix: str, *, pool: bool
                     ) -> dict[str, Tensor]:
    """Run ``layers`` and keep the output of every ReLU, globally average-pooled if ``pool``."""
    taps = {}
    for layer in layers:
        x = layer(x)
        if isinstance(layer, nn.ReLU):
            taps[f"{prefix}{len(taps) + 1}"] = x.mean(dim=(-2, -1)) if pool else x
    return taps


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallCNN(nn.Module):
    """A VGG-style CNN for tiny images: two 3×3 conv blocks per stage, 2×2 max-pool between.

    With ``widths=(32, 64, 128)`` an 8×8 input goes 8×8 → 4×4 → 2×2, then a global average
    pool gives the representation h. No residual connections: at this size they do not help,
    and a plain network keeps the kernel regime of the stepwise theory easy to reason about.

    Args:
        in_channels: 1 for grayscale, 3 for colour.
        widths: channels of each stage; stage s is followed by a 2×2 max-pool except the last.

    Attributes:
        feature_dims: the taps ``conv1`` … ``conv{2S}`` (every conv block, after its ReLU and
            before any max-pool, globally average-pooled) and their channels.

    Shapes:
        (N, C, H, W) -> (N, widths[-1])
    """

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers += _conv_bn_relu(prev, width) + _conv_bn_relu(width, width)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = width
        self.features = nn.Sequential(*layers)
        self.out_dim = prev
        self.feature_dims: dict[str, int] = {
            f"conv{i + 1}": w for i, w in enumerate(w for w in widths for _ in range(2))
        }

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Every conv block's output, globally average-pooled; the last equals ``forward(x)``.

        Returns:
            ``{"conv1", …, "conv6"}`` → (N, channels) for the default three stages.
        """
        return _taps_after_relu(self.features, x, "conv", pool=True)

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
