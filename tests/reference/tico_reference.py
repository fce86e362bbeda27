"""TiCo losses transcribed operation by operation from the two public implementations.

No official TiCo code exists (Zhu et al., arXiv:2206.10698).

``LightlyTiCoLoss``: lightly-ai/lightly@e8d317fc, lightly/loss/tico_loss.py, ``TiCoLoss``
(__init__ L46–L77, forward L79–L142), MIT licence. Differences: the ``gather_distributed``
branch and the ``dist`` availability check are dropped (single process); the assertions are
kept. The state ``self.C`` is a plain attribute, as in the original: it is not in
``state_dict()`` and does not follow ``.to()`` (the bug sslscope's ``TiCoLoss`` avoids).

``sayannag_tico``: sayannag/TiCo-pytorch@2259b836, TiCo/main.py, ``TiCo_Loss.forward``
(L72–L78), MIT licence. The module became a function of (C, x_1, x_2, beta, rho). Differences
from lightly, kept here: the invariance term is −mean cos (no "1 −"), and B is not detached, so
the gradient also flows through the current batch's part of C.
"""

import torch
from torch import Tensor


class LightlyTiCoLoss(torch.nn.Module):
    def __init__(self, beta: float = 0.9, rho: float = 8.0):
        super().__init__()
        self.beta = beta
        self.rho = rho
        self.C = None

    def forward(self, z_a: Tensor, z_b: Tensor, update_covariance_matrix: bool = True) -> Tensor:
        assert z_a.shape[0] > 1 and z_b.shape[0] > 1
        assert z_a.shape == z_b.shape

        # Normalize image
        z_a = torch.nn.functional.normalize(z_a, dim=1)
        z_b = torch.nn.functional.normalize(z_b, dim=1)

        # Compute auxiliary matrix B
        B = torch.mm(z_a.T, z_a).detach() / z_a.shape[0]

        # Initialize covariance matrix
        if self.C is None:
            self.C = B.new_zeros(B.shape).detach()

        # Compute loss
        C = self.beta * self.C + (1 - self.beta) * B

        transformative_invariance_loss = 1.0 - (z_a * z_b).sum(dim=1).mean()
        covariance_contrast_loss = self.rho * (torch.mm(z_a, C) * z_a).sum(dim=1).mean()

        loss: Tensor = transformative_invariance_loss + covariance_contrast_loss

        # Update covariance matrix
        if update_covariance_matrix:
            self.C = C.detach()

        return loss


def sayannag_tico(C, x_1, x_2, beta=0.9, rho=20.0):
    z_1 = torch.nn.functional.normalize(x_1, dim=-1)
    z_2 = torch.nn.functional.normalize(x_2, dim=-1)
    B = torch.mm(z_1.T, z_1) / z_1.shape[0]
    C = beta * C + (1 - beta) * B
    loss = -(z_1 * z_2).sum(dim=1).mean() + rho * (torch.mm(z_1, C) * z_1).sum(dim=1).mean()
    return loss, C
