"""VICReg loss transcribed operation by operation from the authors' code, for equality tests.

Source: facebookresearch/vicreg@4e12602f, main_vicreg.py, VICReg.forward (L194–L214) and
off_diagonal (L240–L244), MIT licence. Differences: the module state (args.batch_size,
num_features, sim/std/cov coefficients) became arguments, and the cross-GPU FullGatherLayer is
dropped (single process, so the gather is the identity). The in-place ``pow_`` and ``div`` on
derived tensors are kept as in the original.
"""

import torch
import torch.nn.functional as F


def off_diagonal(x):
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def vicreg_official(x, y, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)

    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)

    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2

    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(num_features) + off_diagonal(cov_y).pow_(
        2
    ).sum().div(num_features)

    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss
