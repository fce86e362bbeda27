"""lightly's MMCR loss transcribed operation by operation, for equality tests.

Source: lightly-ai/lightly@e8d317fc, lightly/loss/mmcr_loss.py, MMCRLoss.forward (L42–L75),
MIT licence. Differences: ``lmda`` became an argument and the ``lmda >= 0`` check of __init__
is dropped. Note what it does *not* do: no L2 normalisation of the inputs (so it matches the
official loss only on pre-normalised embeddings), and the local term runs over the
concatenated online and momentum views, (B, 2k, D).
"""

import torch
from torch.linalg import svd


def mmcr_lightly(online, momentum, lmda=5e-3):
    assert online.shape == momentum.shape, "online and momentum need to have the same shape"

    B = online.shape[0]

    # Concatenate and calculate centroid
    z = torch.cat([online, momentum], dim=1)
    c = torch.mean(z, dim=1)  # B x D

    # Calculate singular values
    _, S_z, _ = svd(z)
    _, S_c, _ = svd(c)

    # Calculate loss
    loss = -1.0 * torch.sum(S_c) + lmda * torch.sum(S_z) / B

    return loss
