"""SimSiam's loss written from the paper's Algorithm 1 pseudo-code, one sample at a time (NumPy).

Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021, arXiv:2011.10566,
Algorithm 1:

    def D(p, z):  # negative cosine similarity
        z = z.detach()  # stop gradient
        p = normalize(p, dim=1); z = normalize(z, dim=1)
        return -(p*z).sum(dim=1).mean()
    L = D(p1, z2)/2 + D(p2, z1)/2

Written from the pseudo-code, not from facebookresearch/simsiam (CC BY-NC 4.0); that code's
loss line, main_simsiam.py L295 @a7bc1772, is the same formula.
"""

import numpy as np


def simsiam_paper(p1: np.ndarray, p2: np.ndarray, z1: np.ndarray, z2: np.ndarray) -> float:
    def D(p, z):
        cosines = [
            float(p[n] @ z[n] / (np.linalg.norm(p[n]) * np.linalg.norm(z[n])))
            for n in range(p.shape[0])
        ]
        return -float(np.mean(cosines))

    return D(p1, z2) / 2 + D(p2, z1) / 2
