"""Exponential-moving-average target networks (BYOL, momentum MMCR): schedule and update."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def cosine_ema_decay(base: float, steps: int) -> np.ndarray:
    r"""BYOL's per-step target decay, rising from ``base`` to 1 along a half cosine.

        τ_k = 1 − (1 − τ_base) · (cos(π k / K) + 1) / 2,   k = 0 … K,   K = steps − 1

    Index it with the global step, like the other arrays in :mod:`sslscope.schedules`:
    τ_0 = τ_base and the last step has τ_K = 1 exactly.

    Args:
        base: τ_base in [0, 1]. BYOL uses 0.996 on ImageNet; solo-learn's CIFAR configs use
            0.99; the official momentum MMCR keeps a constant 0.99 (use ``np.full`` then).
        steps: number of training steps, the array's length.

    Returns:
        float64 array of shape (steps,).

    Deviation: DeepMind's ``target_ema`` divides by ``max_steps`` (the number of steps), so
    its last step is a hair below 1; dividing by steps − 1 instead
    makes the endpoints exact, as in :func:`sslscope.schedules.warmup_cosine`:
    ``cosine_ema_decay(b, T)[k] == target_ema(k, b, T − 1)``.

    References:
        Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, arXiv:2006.07733, §3.2.
        google-deepmind/deepmind-research@f5de0ede, byol/utils/schedules.py, target_ema.
    """
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"base must be in [0, 1], got {base}")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    progress = np.arange(steps, dtype=np.float64) / max(steps - 1, 1)
    return 1.0 - (1.0 - base) * (np.cos(np.pi * progress) + 1.0) / 2.0


def ema_target(online: nn.Module) -> nn.Module:
    """A frozen deep copy of ``online`` to start the target network from (``requires_grad`` off).

    The official momentum MMCR copies the online weights, as here; DeepMind's BYOL draws the
    target's initial weights with a separate seed and notes no difference.
    """
    target = copy.deepcopy(online)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, decay: float) -> None:
    r"""Move ``target`` towards ``online`` in place: ξ ← τ ξ + (1 − τ) θ.

    Applied to every parameter **and every floating-point buffer** (BatchNorm running mean
    and variance) with the same τ; integer buffers (``num_batches_tracked``) are copied from
    ``online``. Runs under ``torch.no_grad()``; call it after ``optimizer.step()``.

    Why buffers are averaged: the references average parameters only and let the target's
    BatchNorm keep its own running statistics from its own train-mode forward passes
    (DeepMind BYOL keeps a separate ``target_state``; official MMCR's ``MomentumUpdate``
    loops over ``parameters()``). In train mode the running statistics never enter the
    forward pass, so the loss is the same either way. Averaging them too keeps the target
    usable in eval mode (probing the target encoder) even if its own forward runs under
    ``eval()`` or not at all, at the cost of mixing in the online network's statistics.

    Args:
        target: the EMA network, updated in place (e.g. from :func:`ema_target`).
        online: the trained network; same architecture (parameter and buffer names).
        decay: τ in [0, 1]: 1 leaves the target unchanged, 0 copies the online network.
            Per step, from :func:`cosine_ema_decay` (BYOL) or constant 0.99 (momentum MMCR).

    References:
        google-deepmind/deepmind-research@f5de0ede, byol/byol_experiment.py,
        ByolExperiment._update_fn (``x + (1 − τ)(y − x)``, the lerp used here).
        ThomasYerxa/mmcr@fafd3a98, mmcr/imagenet/misc.py, MomentumUpdate.batch_end.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    weight = 1.0 - float(decay)
    for kind, t_items, o_items in (
        ("parameters", target.named_parameters(), online.named_parameters()),
        ("buffers", target.named_buffers(), online.named_buffers()),
    ):
        t_dict, o_dict = dict(t_items), dict(o_items)
        if t_dict.keys() != o_dict.keys():
            raise ValueError(f"target and online networks have different {kind}")
        for name, t in t_dict.items():
            o = o_dict[name]
            if t.is_floating_point():
                t.lerp_(o.to(t.dtype), weight)
            else:
                t.copy_(o)
