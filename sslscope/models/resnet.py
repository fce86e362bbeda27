"""Residual backbones for small images: CIFAR-stem ResNet-18/34/50 and the RES-L-H family.

Every backbone here maps images ``x`` of shape (N, C_in, H, W) to a representation ``h`` of shape
(N, out_dim) by global average pooling; none has a classification head. For layer-wise probing,
``forward_features(x)`` returns the globally pooled output of every stage, keyed by a stable name,
so that probes and instruments can address a layer as e.g. ``"layer3"`` or ``"block7"``.

Written from the papers, not copied from torchvision (which the project does not import).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "ResLH",
    "res_lh",
    "resnet18",
    "resnet34",
    "resnet50",
]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: every conv here is followed by BatchNorm, whose shift makes a bias redundant.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Shortcut for a block that changes shape: 1×1 conv + BN ("option B" of He et al.), else id."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Two 3×3 convolutions plus a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x))``.

    Args:
        in_channels: channels of the input, C_in.
        channels: channels of both convolutions; the output has as many.
        stride: stride of the first convolution (and of the projection shortcut). With stride 2 the
            output is (N, channels, ⌈H/2⌉, ⌈W/2⌉).
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_channels, channels, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm that closes the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block. ``x``: (N, C_in, H, W) → (N, channels, H/stride, W/stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (×4), with an additive shortcut.

    "For each residual function F, we use a stack of 3 layers instead of 2. The three layers are
    1×1, 3×3, and 1×1 convolutions, where the 1×1 layers are responsible for reducing and then
    increasing (restoring) dimensions" (He et al., CVPR 2016, §4.1).

    The stride sits on the 3×3 convolution ("ResNet v1.5", as in the torchvision model that the
    Barlow Twins, VICReg and MMCR code train); the paper put it on the first 1×1. v1.5 costs
    more FLOPs and is what the numbers in performance.md §3 were measured on.

    Args:
        in_channels: channels of the input, C_in.
        channels: width of the inner 3×3 convolution; the output has ``4 * channels`` channels.
        stride: stride of the 3×3 convolution and of the projection shortcut; the output is
            (N, 4·channels, ⌈H/stride⌉, ⌈W/stride⌉).
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_channels, out_channels, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm that closes the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block. ``x``: (N, C_in, H, W) → (N, 4·channels, H/stride, W/stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


Block = type[BasicBlock] | type[Bottleneck]


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, BN γ=1 β=0; optionally γ=0 on each branch's last BN.

    fan_out (std √(2 / (k² · C_out))) is what facebook/fb.resnet.torch and the torchvision
    ResNets trained by the SSL baselines use; it preserves the variance of the backward pass
    through each conv + ReLU. With ``zero_init_residual`` every block starts as
    ``relu(shortcut(x))``, so the network starts close to a shallower one (Goyal et al.,
    "Accurate, Large Minibatch SGD", arXiv:1706.02677). The residual convs then get zero
    gradient on the first step, until γ moves away from 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn.weight)


def _pooled_taps(stages: Sequence[tuple[str, nn.Module]], x: Tensor) -> dict[str, Tensor]:
    """Run ``x`` through ``stages`` in order and globally average-pool each stage's output."""
    taps = {}
    for name, stage in stages:
        x = stage(x)
        taps[name] = x.mean(dim=(-2, -1))  # (N, C, H', W') -> (N, C)
    return taps


def _stem(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        _conv3x3(in_channels, out_channels),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem (3×3 conv, stride 1, no max-pool), four stages, GAP, no fc.

    Stage widths are ``w · (1, 2, 4, 8)`` with ``w = round(64 · width_multiplier)`` and strides
    (1, 2, 2, 2), so a 32×32 input reaches layer4 at 4×4 and an 8×8 input at 1×1.

    Args:
        block: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (ResNet-50).
        layers: number of blocks in each of the four stages, e.g. (2, 2, 2, 2) for ResNet-18.
        in_channels: image channels C_in (3 for RGB, 1 for grayscale).
        width_multiplier: scales every width; 1.0 is the standard network.
        zero_init_residual: set γ=0 in the last BN of every residual branch. False (torchvision's
            default); the Barlow Twins and VICReg official code pass True.

    Attributes:
        out_dim: channels of ``h`` = ``8 · w · block.expansion`` (512 for ResNet-18/34, 2048
            for ResNet-50).
        feature_dims: channels of each tap of ``forward_features``, in forward order.

    References:
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
        arXiv:1512.03385 (blocks, stage layout).
        Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
        ICML 2020, arXiv:2002.05709, App. B.9 (CIFAR stem).
        Zero-init: facebookresearch/barlowtwins@8e8d284, main.py L191, BarlowTwins.__init__;
        facebookresearch/vicreg@4e12602, main_vicreg.py L190 and resnet.py L230–235.
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        in_channels: int = 3,
        width_multiplier: float = 1.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be four positive block counts, got {tuple(layers)}")
        base = round(64 * width_multiplier)
        if base < 1:
            raise ValueError(f"width_multiplier={width_multiplier} leaves no channels")
        self.stem = _stem(in_channels, base)
        channels_in = base
        stages = []
        for i, (num_blocks, stride) in enumerate(zip(layers, (1, 2, 2, 2), strict=True)):
            width = base * 2**i
            blocks = []
            for j in range(num_blocks):
                blocks.append(block(channels_in, width, stride if j == 0 else 1))
                channels_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_dim: int = channels_in
        self.feature_dims: dict[str, int] = {"stem": base} | {
            f"layer{i + 1}": base * 2**i * block.expansion for i in range(4)
        }
        _init_weights(self, zero_init_residual)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return [
            ("stem", self.stem),
            ("layer1", self.layer1),
            ("layer2", self.layer2),
            ("layer3", self.layer3),
            ("layer4", self.layer4),
        ]

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Globally average-pooled output of every stage.

        Args:
            x: images, (N, C_in, H, W).

        Returns:
            ``{"stem", "layer1", "layer2", "layer3", "layer4"}`` → (N, feature_dims[name]); for
            ResNet-18 the widths are 64, 64, 128, 256, 512. ``"layer4"`` equals ``forward(x)``.
        """
        return _pooled_taps(self._stages(), x)

    def forward(self, x: Tensor) -> Tensor:
        """Representation ``h``: (N, C_in, H, W) → (N, out_dim)."""
        for _, stage in self._stages():
            x = stage(x)
        return x.mean(dim=(-2, -1))  # (N, out_dim, H', W') -> (N, out_dim)


def resnet18(in_channels: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-18: BasicBlock × (2, 2, 2, 2), 11,168,832 parameters at 3 channels.

    "Because CIFAR-10 images are much smaller than ImageNet images, we replace the first 7x7 Conv
    of stride 2 with 3x3 Conv of stride 1, and also remove the first max pooling operation."
    (Chen et al., SimCLR, arXiv:2002.05709, App. B.9). solo-learn and the MMCR CIFAR code use the
    same stem.

    Args:
        in_channels: image channels.
        **kwargs: ``width_multiplier``, ``zero_init_residual`` (see ``CifarResNet``).

    Returns:
        Model mapping (N, in_channels, H, W) → (N, 512) at width 1.
    """
    return CifarResNet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels, **kwargs)


def resnet34(in_channels: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-34: BasicBlock × (3, 4, 6, 3), 21,276,992 parameters at 3 channels.

    Same stem as ``resnet18`` ("we replace the first 7x7 Conv of stride 2 with 3x3 Conv of
    stride 1, and also remove the first max pooling operation", SimCLR App. B.9). Arguments as
    in ``resnet18``; maps (N, in_channels, H, W) → (N, 512) at width 1.
    """
    return CifarResNet(BasicBlock, (3, 4, 6, 3), in_channels=in_channels, **kwargs)


def resnet50(in_channels: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-50: Bottleneck × (3, 4, 6, 3), 23,500,352 parameters at 3 channels.

    "As our goal is not to optimize CIFAR-10 performance, but rather to provide further
    confirmation of our observations on ImageNet, we use the same architecture (ResNet-50) for
    CIFAR-10 experiments. [...] we replace the first 7x7 Conv of stride 2 with 3x3 Conv of stride
    1, and also remove the first max pooling operation." (SimCLR, App. B.9). The MMCR CIFAR
    backbone is this network too.

    Args:
        in_channels: image channels.
        **kwargs: ``width_multiplier``, ``zero_init_residual`` (see ``CifarResNet``).

    Returns:
        Model mapping (N, in_channels, H, W) → (N, 2048) at width 1.
    """
    return CifarResNet(Bottleneck, (3, 4, 6, 3), in_channels=in_channels, **kwargs)


class ResLH(nn.Module):
    """RES-L-H: a 3×3 stem conv to H channels, then L BasicBlocks of constant width H, then GAP.

    Ben-Shaul et al. train RES-10-250 as their main model. In Galanti/Ben-Shaul naming RES-L-H is
    a ResNet with L residual blocks of width H, but that reading is from memory, no code was
    released, and the exact layout is unverified (methods.md §3). So this class is **our concrete
    definition**, not a reproduction:

    - stem: 3×3 conv (stride 1, no bias) C_in → H, BN, ReLU — the CIFAR stem of ``CifarResNet``;
    - blocks: L ``BasicBlock``s (two 3×3 convs each) of width H; blocks with 0-based index
      ``L // 3`` and ``2L // 3`` have stride 2 and a 1×1-conv+BN projection shortcut, all others
      keep the resolution (our choice: it gives three roughly equal stages, like a ResNet, while
      keeping the width constant). For L = 10 these are the blocks tapped as ``"block4"`` and
      ``"block7"``; for L < 3 the two indices can coincide or be 0;
    - GAP, no fc; ``out_dim = H``.

    Cost warning: the first L/3 blocks run at full resolution with H channels, so RES-10-250 at
    32×32 needs about 9.3 GFLOP per image forward, 8× a CIFAR ResNet-18.

    Args:
        num_blocks: L ≥ 1.
        width: H ≥ 1, channels of the stem and every block.
        in_channels: image channels C_in.
        zero_init_residual: as in ``CifarResNet``.

    Attributes:
        out_dim: H.
        downsample_blocks: 0-based indices of the stride-2 blocks.
        feature_dims: channels of each tap (all H), in forward order.

    References:
        Ben-Shaul, Shwartz-Ziv, Galanti, Dekel & LeCun, "Reverse Engineering Self-Supervised
        Learning", NeurIPS 2023, arXiv:2305.15614.
    """

    def __init__(
        self,
        num_blocks: int,
        width: int,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if num_blocks < 1 or width < 1:
            raise ValueError(f"RES-L-H needs L ≥ 1 and H ≥ 1, got L={num_blocks}, H={width}")
        self.downsample_blocks: tuple[int, ...] = tuple(
            sorted({num_blocks // 3, 2 * num_blocks // 3})
        )
        self.stem = _stem(in_channels, width)
        self.blocks = nn.Sequential(
            *(
                BasicBlock(width, width, stride=2 if i in self.downsample_blocks else 1)
                for i in range(num_blocks)
            )
        )
        self.out_dim: int = width
        self.feature_dims: dict[str, int] = {"stem": width} | {
            f"block{i + 1}": width for i in range(num_blocks)
        }
        _init_weights(self, zero_init_residual)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem)] + [
            (f"block{i + 1}", block) for i, block in enumerate(self.blocks)
        ]

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Globally average-pooled output of the stem and of every block.

        Args:
            x: images, (N, C_in, H_img, W_img).

        Returns:
            ``{"stem", "block1", ..., "blockL"}`` → (N, H) each. ``"blockL"`` equals
            ``forward(x)``.
        """
        return _pooled_taps(self._stages(), x)

    def forward(self, x: Tensor) -> Tensor:
        """Representation ``h``: (N, C_in, H_img, W_img) → (N, H)."""
        x = self.blocks(self.stem(x))
        return x.mean(dim=(-2, -1))  # (N, H, H', W') -> (N, H)


def res_lh(num_blocks: int, width: int, in_channels: int = 3, **kwargs: bool) -> ResLH:
    """RES-L-H backbone of Ben-Shaul et al. (NeurIPS 2023); ``res_lh(10, 250)`` is their main model.

    No sentence is quoted here because we could not check the paper's definition: the name is
    theirs, the layout is ours (see ``ResLH``).

    Args:
        num_blocks: L.
        width: H.
        in_channels: image channels.
        **kwargs: ``zero_init_residual``.

    Returns:
        Model mapping (N, in_channels, H_img, W_img) → (N, width).
    """
    return ResLH(num_blocks, width, in_channels=in_channels, **kwargs)
