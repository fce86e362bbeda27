"""Two "modalities" of one image, each with its own encoder (CLIP / multimodal MMCR on images).

CMC's split (Tian, Krishnan & Isola, "Contrastive Multiview Coding", ECCV 2020): a colour image
becomes its luminance and its chrominance (CMC uses L and ab of Lab; we use Y and CbCr of
YCbCr, ITU-R BT.601, which is linear and needs no colour-space library). A grayscale image has
no colour to split, so it becomes its top and bottom halves.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# ITU-R BT.601 full-range YCbCr, for x in [0, 1]: rows give Y, Cb − ½, Cr − ½.
_YCBCR = torch.tensor([
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
])


def split_modalities(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split images into two modalities.

    Args:
        x: float images in [0, 1], (N, C, H, W) with C = 1 (H even) or C = 3.

    Returns:
        C = 3: luminance (N, 1, H, W) and chrominance (N, 2, H, W), centred at 0.
        C = 1: top half (N, 1, H/2, W) and bottom half (N, 1, H/2, W).
    """
    if x.shape[1] == 3:
        ycbcr = torch.einsum("kc,nchw->nkhw", _YCBCR.to(x), x)  # (N, 3, H, W)
        return ycbcr[:, :1], ycbcr[:, 1:]
    if x.shape[1] == 1 and x.shape[2] % 2 == 0:
        half = x.shape[2] // 2
        return x[:, :, :half], x[:, :, half:]
    raise ValueError(f"cannot split images of shape {tuple(x.shape)} into two modalities")


class CrossModalEncoder(nn.Module):
    """One encoder per modality; evaluation sees both representations concatenated.

    ``modalities(x)`` gives the two embeddings the cross-modal loss compares; ``forward(x)``
    gives (h, z) with h = [h_a, h_b] and z = [z_a, z_b], as CMC evaluates concatenated
    features, so the probes treat this model like any other encoder.

    Shapes:
        x (N, C, H, W) -> h (N, D_h,a + D_h,b), z (N, D_z,a + D_z,b)
    """

    def __init__(self, encoder_a: nn.Module, encoder_b: nn.Module):
        super().__init__()
        self.encoder_a = encoder_a
        self.encoder_b = encoder_b

    def modalities(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Projector outputs of the two modalities, each (N, D)."""
        x_a, x_b = split_modalities(x)
        return self.encoder_a(x_a)[1], self.encoder_b(x_b)[1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_a, x_b = split_modalities(x)
        h_a, z_a = self.encoder_a(x_a)
        h_b, z_b = self.encoder_b(x_b)
        return torch.cat([h_a, h_b], dim=1), torch.cat([z_a, z_b], dim=1)
