"""Barlow Twins references, for equality tests.

``barlow_twins_official``: transcribed operation by operation from facebookresearch/barlowtwins
@8e8d284c, main.py, ``off_diagonal`` (L180–L184) and ``BarlowTwins.forward`` (L207–L221), with
``self.bn = nn.BatchNorm1d(sizes[-1], affine=False)`` (L205) and ``--lambd`` default 0.0051 (L39).
MIT licence. Differences: the backbone and projector are dropped (the function takes z1, z2);
``args.batch_size`` and ``args.lambd`` became arguments; the BatchNorm is built fresh in train
mode on each call (its running statistics play no part in the train-mode output); the
``torch.distributed.all_reduce(c)`` and SyncBatchNorm are dropped (single process, so both are
the identity). The in-place ``div_``, ``add_`` and ``pow_`` are kept as in the original.

``barlow_twins_linear_paper``: the stepwise paper's form (Simon et al., ICML 2023,
arXiv:2303.15438, §4), written in NumPy from its per-pair definition
C = (1/2n) Σ_i (f(x_i) f(x_i')ᵀ + f(x_i') f(x_i)ᵀ), L = Σ_j (1 − C_jj)² + λ Σ_{j≠k} C_jk².
The authors' code (GitLab) could not be obtained; the no-BN, symmetrised form is from memory of
the paper, not verified against its text (shared/reference/methods.md §1.1, tag [mem]).
"""

import numpy as np
import torch
from torch import nn


def off_diagonal(x):
    # return a flattened view of the off-diagonal elements of a square matrix
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def barlow_twins_official(z1, z2, lambd=0.0051):
    batch_size = z1.shape[0]
    bn = nn.BatchNorm1d(z1.shape[1], affine=False).to(z1.dtype)  # train mode, as in training

    # empirical cross-correlation matrix
    c = bn(z1).T @ bn(z2)

    # sum the cross-correlation matrix between all gpus
    c.div_(batch_size)
    # torch.distributed.all_reduce(c)  -- single process: identity

    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = off_diagonal(c).pow_(2).sum()
    loss = on_diag + lambd * off_diag
    return loss


def barlow_twins_linear_paper(f_a: np.ndarray, f_b: np.ndarray, lambd: float = 1.0) -> float:
    n, d = f_a.shape
    c = np.zeros((d, d))
    for i in range(n):
        c += np.outer(f_a[i], f_b[i]) + np.outer(f_b[i], f_a[i])
    c /= 2 * n
    on = sum((1 - c[j, j]) ** 2 for j in range(d))
    off = sum(c[j, k] ** 2 for j in range(d) for k in range(d) if j != k)
    return float(on + lambd * off)
