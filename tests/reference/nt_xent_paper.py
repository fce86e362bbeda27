"""NT-Xent written directly from the SimCLR paper's definition, one anchor at a time (NumPy).

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020,
arXiv:2002.05709, Eq. (1) and Algorithm 1: views 2k and 2k+1 are a positive pair; the loss is
the mean over all 2N anchors of −log softmax over the 2N − 1 other views.
"""

import numpy as np


def nt_xent_paper(z_a: np.ndarray, z_b: np.ndarray, temperature: float) -> float:
    n = z_a.shape[0]
    views = np.empty((2 * n, z_a.shape[1]))
    views[0::2], views[1::2] = z_a, z_b  # Algorithm 1's interleaved order
    views = views / np.linalg.norm(views, axis=1, keepdims=True)

    def sim(i, j):
        return float(views[i] @ views[j])

    total = 0.0
    for i in range(2 * n):
        positive = i + 1 if i % 2 == 0 else i - 1
        denominator = sum(np.exp(sim(i, k) / temperature) for k in range(2 * n) if k != i)
        total += -np.log(np.exp(sim(i, positive) / temperature) / denominator)
    return total / (2 * n)
