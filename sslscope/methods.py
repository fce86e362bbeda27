"""Structural facts about each training method; numbers stay in the loss signatures.

``METHODS[name]`` says which loss the method uses and how the training loop wires the model
for it. The loop reads only these fields, so a new two-view method is one line here plus its
loss in :data:`sslscope.losses.LOSSES`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    """How the loop wires a method.

    Attributes:
        loss: key into :data:`sslscope.losses.LOSSES`.
        description: one line for ``--help``.
    """

    loss: str
    description: str


METHODS: dict[str, MethodSpec] = {
    "vicreg": MethodSpec("vicreg", "VICReg: variance, invariance, covariance (Bardes et al. 2022)"),
    "nt_xent": MethodSpec("nt_xent", "SimCLR's NT-Xent contrastive loss (Chen et al. 2020)"),
}
