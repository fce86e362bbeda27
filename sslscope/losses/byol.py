"""BYOL and SimSiam: predict one view's (stop-gradient) embedding from the other view.

Both losses take the predictor outputs ``p_a, p_b`` of views a and b and the embeddings they
must predict: the target network's projections ``t_a, t_b`` (BYOL, an EMA of the online
network; see :mod:`sslscope.ema`) or the online projections ``z_a, z_b`` (SimSiam). The
stop-gradient is part of both methods' definitions, so it is applied **here**: the targets are
detached inside the loss, and no gradient ever reaches them, whether or not the caller
detached them already.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from sslscope.losses._terms import check_pair
from sslscope.methods import Method, predictions_and_embeddings, predictions_and_targets


def _check_quad(p_a: Tensor, p_b: Tensor, t_a: Tensor, t_b: Tensor) -> None:
    check_pair(p_a, p_b, min_batch=1)
    check_pair(p_a, t_b, min_batch=1)
    check_pair(p_b, t_a, min_batch=1)


def _cosine_to_target(p: Tensor, t: Tensor) -> Tensor:
    """Row-wise cos(p, sg(t)): (N, D), (N, D) -> (N,)."""
    return (F.normalize(p, dim=1) * F.normalize(t.detach(), dim=1)).sum(dim=1)


def byol_terms(p_a: Tensor, p_b: Tensor, t_a: Tensor, t_b: Tensor) -> dict[str, Tensor]:
    """The two halves of :func:`byol_loss`; they sum to it.

    Returns:
        ``{"view_a": mean_n (2 − 2 cos(p_a, sg t_b)), "view_b": mean_n (2 − 2 cos(p_b,
        sg t_a))}``, named for the view the prediction is made from.
    """
    _check_quad(p_a, p_b, t_a, t_b)
    return {
        "view_a": (2 - 2 * _cosine_to_target(p_a, t_b)).mean(),
        "view_b": (2 - 2 * _cosine_to_target(p_b, t_a)).mean(),
    }


def byol_loss(p_a: Tensor, p_b: Tensor, t_a: Tensor, t_b: Tensor) -> Tensor:
    r"""BYOL's symmetrised regression loss between normalised predictions and targets.

    Eq. (2) of the paper, for a prediction q and a target projection z′:

        ℒ(q, z′) = ‖q/‖q‖ − z′/‖z′‖‖² = 2 − 2 cos(q, z′)

    symmetrised by **summing** the two directions (paper: ℒ^BYOL = ℒ + ℒ̃; DeepMind code:
    ``repr_loss = regression_loss(v1→v2) + regression_loss(v2→v1)``, then the batch mean):

        L = mean_n [ 2 − 2 cos(p_a,n, sg t_b,n) ]  +  mean_n [ 2 − 2 cos(p_b,n, sg t_a,n) ]

    so L ∈ [0, 8]: 0 when every prediction matches its target's direction, 8 when every one
    points the opposite way. (lightly's BYOL example, examples/pytorch/byol.py, uses the
    SimSiam form ½[D(p_a, t_b) + D(p_b, t_a)] with D = −mean cos instead: L_lightly =
    L/4 − 1, so learning rates tuned for one are 4× off for the other.)

    Args:
        p_a: online predictor output for view a, shape (N, D); normalised here.
        p_b: online predictor output for view b, shape (N, D); normalised here.
        t_a: target-network projection of view a, shape (N, D); normalised and **detached
            here** (stop-gradient, the method's definition).
        t_b: target-network projection of view b, shape (N, D); normalised and detached here.

    Returns:
        Scalar tensor; gradients reach ``p_a`` and ``p_b`` only.

    Deviation: normalisation is ``F.normalize`` (‖x‖ floored at 1e-12) where the DeepMind
    code floors ‖x‖² at 1e-12; the two differ only for near-zero vectors.

    References:
        Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
        Learning", NeurIPS 2020, arXiv:2006.07733, Eq. (2) and the symmetrised ℒ^BYOL.
        google-deepmind/deepmind-research@f5de0ede, byol/byol_experiment.py,
        ByolExperiment.loss_fn; byol/utils/helpers.py, regression_loss.
    """
    return sum(byol_terms(p_a, p_b, t_a, t_b).values())


def simsiam_terms(p_a: Tensor, p_b: Tensor, z_a: Tensor, z_b: Tensor) -> dict[str, Tensor]:
    """The two halves of :func:`simsiam_loss`; they sum to it.

    Returns:
        ``{"view_a": ½ D(p_a, sg z_b), "view_b": ½ D(p_b, sg z_a)}`` with D = −mean cos.
    """
    _check_quad(p_a, p_b, z_a, z_b)
    return {
        "view_a": -0.5 * _cosine_to_target(p_a, z_b).mean(),
        "view_b": -0.5 * _cosine_to_target(p_b, z_a).mean(),
    }


def simsiam_loss(p_a: Tensor, p_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    r"""SimSiam's symmetrised negative cosine similarity with stop-gradient.

        D(p, z) = −mean_n cos(p_n, z_n)
        L = ½ D(p_a, sg z_b) + ½ D(p_b, sg z_a)   ∈ [−1, 1]

    −1 when every prediction is aligned with the other view's projection.

    Args:
        p_a: predictor output for view a, shape (N, D); normalised here.
        p_b: predictor output for view b, shape (N, D); normalised here.
        z_a: projector output for view a (same network, no EMA), shape (N, D); normalised
            and **detached here** (the stop-gradient sg is the method's definition).
        z_b: projector output for view b, shape (N, D); normalised and detached here.

    Returns:
        Scalar tensor; gradients reach ``p_a`` and ``p_b`` only (they reach the encoder
        through the predictor, as in the paper).

    References:
        Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021,
        arXiv:2011.10566, Algorithm 1 and Eq. (1)–(2).
        facebookresearch/simsiam@a7bc1772, main_simsiam.py, train (the loss line) and
        simsiam/builder.py, SimSiam.forward (returns z detached).
        lightly-ai/lightly@e8d317fc, lightly/loss/negative_cosine_similarity.py (D).
    """
    return sum(simsiam_terms(p_a, p_b, z_a, z_b).values())


METHODS = [
    Method("byol", "BYOL: predictor + EMA target (Grill et al. 2020)", byol_loss, byol_terms,
           args={"p_a": "N D", "p_b": "N D", "t_a": "N D", "t_b": "N D"},
           inputs=predictions_and_targets, predictor=True, target="ema"),
    Method("simsiam", "SimSiam: predictor + stop-gradient (Chen & He 2021)",
           simsiam_loss, simsiam_terms,
           args={"p_a": "N D", "p_b": "N D", "z_a": "N D", "z_b": "N D"},
           inputs=predictions_and_embeddings, predictor=True, projector_last_bn=True),
]
