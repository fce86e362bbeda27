"""LARS against a reference written from the authors' code, an analytic step, and the groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sslscope.optim import LARS, build_optimizer


def reference_lars(weights, grads_per_step, *, lr, weight_decay, momentum, eta, adapt):
    """NumPy LARS step by step, after the authors' ``class LARS`` in facebookresearch/vicreg
    main_vicreg.py (its ``exclude_bias_and_norm`` filters skip decay and adaptation for 1-D
    tensors): dp = g + wd·p; q = η‖p‖/‖dp‖ when both norms > 0, else 1 (unless excluded);
    μ = m·μ + q·dp; p = p − lr·μ."""
    weights = [w.copy() for w in weights]
    mus = [np.zeros_like(w) for w in weights]
    for grads in grads_per_step:
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            dp = g + weight_decay[i] * w
            if adapt[i]:
                pn, un = np.linalg.norm(w), np.linalg.norm(dp)
                dp = dp * (eta * pn / un if pn > 0 and un > 0 else 1.0)
            mus[i] = momentum * mus[i] + dp
            weights[i] = w - lr * mus[i]
    return weights


def test_lars_matches_the_reference_over_several_steps():
    rng = np.random.default_rng(0)
    shapes = [(5, 3), (4, 3, 2, 2), (3, 4), (5,)]
    weights = [rng.standard_normal(s) for s in shapes]
    weights[2][:] = 0.0  # ‖w‖ = 0: trust ratio 1
    steps = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    steps[1][0][:] = 0.0  # a zero gradient on one step
    params = [nn.Parameter(torch.tensor(w)) for w in weights]
    opt = LARS([{"params": params[:3], "weight_decay": 0.01},
                {"params": params[3:], "weight_decay": 0.0, "lars_adapt": False}],
               lr=0.3, momentum=0.9, eta=0.02)
    for grads in steps:
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
    expected = reference_lars(weights, steps, lr=0.3, weight_decay=[0.01, 0.01, 0.01, 0.0],
                              momentum=0.9, eta=0.02, adapt=[True, True, True, False])
    for p, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-14)


def test_first_step_moves_each_tensor_by_lr_eta_times_its_norm():
    # μ starts at 0, so the first update is lr · η‖w‖ · g/‖g‖, whatever the gradient's scale.
    w = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p = nn.Parameter(w.clone())
    p.grad = 1e4 * torch.randn(6, 4, dtype=torch.float64)
    LARS([p], lr=0.5, eta=0.001).step()
    moved = torch.linalg.vector_norm(p.detach() - w)
    assert moved.item() == pytest.approx(0.5 * 0.001 * torch.linalg.vector_norm(w).item(),
                                         rel=1e-12)


def test_build_optimizer_excludes_biases_and_norms():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    opt = build_optimizer("lars", model, lr=0.1, weight_decay=1e-4, momentum=0.9, lars_eta=0.02)
    decayed, plain = opt.param_groups
    assert {p.ndim for p in decayed["params"]} == {2} and len(decayed["params"]) == 2
    assert {p.ndim for p in plain["params"]} == {1} and len(plain["params"]) == 4
    assert decayed["lars_adapt"] and not plain["lars_adapt"]
    assert (decayed["weight_decay"], plain["weight_decay"], decayed["eta"]) == (1e-4, 0.0, 0.02)
    for name, kind in [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)]:
        assert isinstance(build_optimizer(name, model, lr=0.1, weight_decay=0.0, momentum=0.9),
                          kind)
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        build_optimizer("adam", model, lr=0.1, weight_decay=0.0, momentum=0.9)
    with pytest.raises(ValueError, match="bad LARS settings"):
        LARS(model.parameters(), lr=0.1, eta=0.0)
