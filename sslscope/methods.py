"""How each method is wired; numbers stay in the loss signatures.

``METHODS[name]`` says which loss a method uses, which pieces of model it needs (a predictor,
an EMA target, one encoder per modality) and which model outputs the loss takes, in order. The
training loop reads only these fields, so a new method is one entry here plus its loss in
:data:`sslscope.losses.LOSSES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Outputs:
    """What the networks produced for one batch.

    Attributes:
        z: online projector outputs, one (N, D) tensor per view (or per modality).
        p: predictor outputs p = q(z), one per view, or None.
        t: target-network projector outputs (no gradient), one per view, or None.
    """

    z: list[Tensor]
    p: list[Tensor] | None = None
    t: list[Tensor] | None = None


def all_views(out: Outputs) -> tuple[Tensor, ...]:
    """(z_1, …, z_V): the two-view losses and multi-positive NT-Xent."""
    return tuple(out.z)


def stacked_views(out: Outputs) -> tuple[Tensor, ...]:
    """(z,) with z of shape (N, V, D): MMCR's view matrices."""
    return (torch.stack(out.z, dim=1),)


def stacked_online_and_target(out: Outputs) -> tuple[Tensor, ...]:
    """(z_online, z_target), each (N, V, D): momentum MMCR."""
    assert out.t is not None
    return torch.stack(out.z, dim=1), torch.stack(out.t, dim=1)


def predictions_and_targets(out: Outputs) -> tuple[Tensor, ...]:
    """(p_a, p_b, t_a, t_b): BYOL regresses each view's prediction on the other's target."""
    assert out.p is not None and out.t is not None
    return out.p[0], out.p[1], out.t[0], out.t[1]


def predictions_and_embeddings(out: Outputs) -> tuple[Tensor, ...]:
    """(p_a, p_b, z_a, z_b): SimSiam, whose target is the online network itself."""
    assert out.p is not None
    return out.p[0], out.p[1], out.z[0], out.z[1]


@dataclass(frozen=True)
class MethodSpec:
    """How the loop wires a method.

    Attributes:
        loss: key into :data:`sslscope.losses.LOSSES`.
        description: one line for ``--help``.
        inputs: picks the loss's positional inputs from the :class:`Outputs`.
        views: the number of views the method takes; None for any number ≥ 2.
        predictor: an MLP q maps z to p (BYOL, SimSiam).
        target: "ema" adds a target network, an exponential moving average of the online one.
        ema_schedule: "cosine" raises the EMA decay from its base to 1 (BYOL); "constant"
            keeps it (the official momentum-MMCR code).
        cross_modal: one encoder per modality (CLIP, multimodal MMCR); each image gives one
            augmented view, split into two modalities (:func:`sslscope.models.split_modalities`).
        projector_last_bn: the projector ends in BatchNorm1d(affine=False) with no bias before
            it (SimSiam: facebookresearch/simsiam, simsiam/builder.py, "output layer").
    """

    loss: str
    description: str
    inputs: Callable[[Outputs], tuple[Tensor, ...]] = all_views
    views: int | None = 2
    predictor: bool = False
    target: str = "none"
    ema_schedule: str = "cosine"
    cross_modal: bool = False
    projector_last_bn: bool = False


METHODS: dict[str, MethodSpec] = {
    "vicreg": MethodSpec("vicreg", "VICReg: variance, invariance, covariance (Bardes et al. 2022)"),
    "nt_xent": MethodSpec(
        "nt_xent", "SimCLR's NT-Xent; multi-positive for V > 2 (Chen et al. 2020)", views=None),
    "barlow_twins": MethodSpec("barlow_twins", "Barlow Twins, official form (Zbontar et al. 2021)"),
    "barlow_twins_linear": MethodSpec(
        "barlow_twins_linear", "Barlow Twins as in the stepwise theory: λ=1, no BN (Simon 2023)"),
    "tico": MethodSpec("tico", "TiCo: invariance + EMA covariance contrast (Zhu et al. 2022)"),
    "vicreg_tico": MethodSpec("vicreg_tico", "VICReg with TiCo's EMA covariance term (seed 003)"),
    "mmcr": MethodSpec("mmcr", "MMCR: centroid nuclear norm over K views (Yerxa et al. 2023)",
                       inputs=stacked_views, views=None),
    "mmcr_momentum": MethodSpec(
        "mmcr_momentum", "MMCR with a momentum target network (Yerxa et al. 2023, ImageNet)",
        inputs=stacked_online_and_target, views=None, target="ema", ema_schedule="constant"),
    "byol": MethodSpec("byol", "BYOL: predictor + EMA target (Grill et al. 2020)",
                       inputs=predictions_and_targets, predictor=True, target="ema"),
    "simsiam": MethodSpec("simsiam", "SimSiam: predictor + stop-gradient (Chen & He 2021)",
                          inputs=predictions_and_embeddings, predictor=True,
                          projector_last_bn=True),
    "clip": MethodSpec("clip", "CLIP's symmetric InfoNCE across two modalities (Radford 2021)",
                       cross_modal=True),
    "mmcr_multimodal": MethodSpec(
        "mmcr_multimodal", "MMCR on the centroid of two modalities (Schaeffer et al. 2024)",
        cross_modal=True),
}
