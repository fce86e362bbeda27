"""MMCR losses transcribed operation by operation from the authors' code, for equality tests.

Sources, ThomasYerxa/mmcr@fafd3a98:
- ``mmcr_official``: mmcr/cifar_stl/loss_mmcr.py, MMCR_Loss.forward (L19–L56).
- ``mmcr_momentum_official``: mmcr/imagenet/loss_mmcr_momentum.py, MMCR_Momentum_Loss.forward
  (L21–L79).
The repository has no licence file at that commit; this transcription is a test oracle only and
is not shipped in ``sslscope/``.

Differences from the original: the module state (lmbda, n_aug) became arguments; the
``distributed`` all-gather branch is dropped (single process: the gather is the identity);
``einops.rearrange(z, "(B N) C -> B C N", N=n_aug)`` is written as the equivalent
``z.reshape(B, n_aug, C).permute(0, 2, 1)`` (einops is not a dependency); the returned dict of
``.item()`` values and the ``print`` are dropped. Input layout, as in the authors' loaders: a
flat batch (B·n_aug, C) with the n_aug views of one image contiguous.
"""

import torch
import torch.nn.functional as F


def _rearrange_b_c_n(z, n_aug):  # einops "(B N) C -> B C N"
    return z.reshape(z.shape[0] // n_aug, n_aug, z.shape[1]).permute(0, 2, 1)


def mmcr_official(z, lmbda, n_aug):
    z = F.normalize(z, dim=-1)
    z_local_ = _rearrange_b_c_n(z, n_aug)
    z_local = z_local_

    centroids = torch.mean(z_local, dim=-1)
    if lmbda != 0.0:
        local_nuc = torch.linalg.svdvals(z_local).sum()
    else:
        local_nuc = torch.tensor(0.0)
    global_nuc = torch.linalg.svdvals(centroids).sum()

    batch_size = z_local.shape[0]
    loss = lmbda * local_nuc / batch_size - global_nuc
    return loss


def mmcr_momentum_official(z, z_m, lmbda, n_aug):
    z = F.normalize(z, dim=-1)
    z_m = F.normalize(z_m, dim=-1)

    z_local_ = _rearrange_b_c_n(z, n_aug)
    z_local_m = _rearrange_b_c_n(z_m, n_aug)
    z_local = z_local_
    z_m_local = z_local_m

    if lmbda == 0:
        local_nuc = 0
    else:
        local_nuc = torch.linalg.svdvals(z_local).sum()

    centroids = (torch.mean(z_local, dim=-1) + torch.mean(z_m_local, dim=-1)) * 0.5

    # filter infs and nans
    selected = centroids.isfinite().all(dim=1)
    centroids = centroids[selected]

    global_nuc = torch.linalg.svdvals(centroids).sum()

    batch_size = z_local.shape[0]
    loss = -1.0 * global_nuc + lmbda * local_nuc / batch_size
    loss = loss * 1.00
    return loss
