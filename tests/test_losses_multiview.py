"""MMCR (plain, momentum, two-modality), PPE, BYOL, SimSiam, CLIP and the EMA target.

References, analytic values, properties, gradients. Conventions under test: MMCR inputs are
(N, K, D) with the view matrix Z_n = z[n]ᵀ (D×K) and every embedding L2-normalised inside;
targets (BYOL t, SimSiam z, momentum-MMCR z_target) are detached inside the loss.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sslscope.ema import cosine_ema_decay, ema_target, ema_update_
from sslscope.losses.byol import byol_loss, byol_terms, simsiam_loss, simsiam_terms
from sslscope.losses.clip import LogitScale, clip_loss, clip_terms
from sslscope.losses.mmcr import (
    mmcr_centroids,
    mmcr_loss,
    mmcr_momentum_loss,
    mmcr_momentum_terms,
    mmcr_multimodal_loss,
    mmcr_terms,
    pretraining_percent_error,
)
from tests.reference.byol_deepmind import byol_deepmind, target_ema
from tests.reference.clip_paper import clip_open_clip, clip_paper
from tests.reference.mmcr_lightly import mmcr_lightly
from tests.reference.mmcr_official import mmcr_momentum_official, mmcr_official
from tests.reference.simsiam_paper import simsiam_paper

F64 = torch.float64
# (N, K, D): odd sizes, N < D and N > D, K = 1, K > D
VIEW_SHAPES = [(2, 2, 3), (5, 3, 7), (7, 4, 5), (3, 5, 11), (9, 2, 4), (4, 1, 6), (6, 5, 3)]
PAIR_SHAPES = [(2, 3), (7, 5), (16, 16), (33, 9), (9, 40)]
LAMBDAS = [0.0, 5e-3, 0.7]


def randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def orthonormal_rows(n, d, seed=0):
    q, _ = torch.linalg.qr(randn(d, n, seed=seed))  # (D, N), orthonormal columns; needs N ≤ D
    return q.T.contiguous()


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("n,k,d", VIEW_SHAPES)
@pytest.mark.parametrize("lam", LAMBDAS)
def test_mmcr_matches_official_cifar_stl_code(n, k, d, lam):
    z = randn(n, k, d, seed=n * k + d) * 3
    expected = mmcr_official(z.reshape(n * k, d), lam, k)  # views of one image contiguous
    assert torch.allclose(mmcr_loss(z, local_weight=lam), expected, atol=1e-10)


@pytest.mark.parametrize("n,k,d", VIEW_SHAPES)
@pytest.mark.parametrize("lam", LAMBDAS)
def test_mmcr_momentum_matches_official_imagenet_code(n, k, d, lam):
    z, z_m = randn(n, k, d, seed=1), randn(n, k, d, seed=2) + 0.5
    expected = mmcr_momentum_official(z.reshape(n * k, d), z_m.reshape(n * k, d), lam, k)
    assert torch.allclose(mmcr_momentum_loss(z, z_m, local_weight=lam), expected, atol=1e-10)


@pytest.mark.parametrize("n,k,d", VIEW_SHAPES)
@pytest.mark.parametrize("lam", LAMBDAS)
def test_lightly_mmcr_on_normalised_inputs_equals_ours(n, k, d, lam):
    online, momentum = unit(randn(n, k, d, seed=3)), unit(randn(n, k, d, seed=4))
    ref = mmcr_lightly(online, momentum, lam)
    # lightly's local term runs over all 2K views: our plain loss on the concatenation
    assert torch.allclose(mmcr_loss(torch.cat([online, momentum], 1), local_weight=lam), ref)
    if lam == 0.0:  # ... and without it, the official momentum loss
        assert torch.allclose(mmcr_momentum_loss(online, momentum), ref, atol=1e-10)


def test_lightly_mmcr_is_unbounded_without_normalisation_ours_is_not():
    online, momentum = randn(6, 2, 4, seed=5), randn(6, 2, 4, seed=6)
    ref = mmcr_lightly(online, momentum, 0.0)
    assert torch.allclose(mmcr_lightly(10 * online, 10 * momentum, 0.0), 10 * ref)
    ours = mmcr_momentum_loss(online, momentum)
    assert torch.allclose(mmcr_momentum_loss(10 * online, 10 * momentum), ours)


@pytest.mark.parametrize("n,d", PAIR_SHAPES)
def test_byol_matches_deepmind_code(n, d):
    p_a, p_b, t_a, t_b = (randn(n, d, seed=s) for s in range(4))
    expected = byol_deepmind(p_a.numpy(), p_b.numpy(), t_a.numpy(), t_b.numpy())
    assert byol_loss(p_a, p_b, t_a, t_b).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n,d", PAIR_SHAPES)
def test_simsiam_matches_paper_pseudocode(n, d):
    p_a, p_b, z_a, z_b = (randn(n, d, seed=s + 10) for s in range(4))
    expected = simsiam_paper(p_a.numpy(), p_b.numpy(), z_a.numpy(), z_b.numpy())
    assert simsiam_loss(p_a, p_b, z_a, z_b).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n,d", PAIR_SHAPES)
@pytest.mark.parametrize("s", [0.0, math.log(1 / 0.07), math.log(100)])
def test_clip_matches_paper_pseudocode_and_open_clip(n, d, s):
    z_a, z_b = randn(n, d, seed=20), randn(n, d, seed=21)
    ours = clip_loss(z_a, z_b, torch.tensor(s, dtype=F64))
    assert ours.item() == pytest.approx(clip_paper(z_a.numpy(), z_b.numpy(), s), rel=1e-10)
    assert torch.allclose(ours, clip_open_clip(unit(z_a), unit(z_b), math.exp(s)), atol=1e-12)


@pytest.mark.parametrize("base,steps", [(0.996, 1000), (0.99, 7), (0.5, 2)])
def test_cosine_ema_decay_matches_deepmind_with_k_equal_steps_minus_1(base, steps):
    expected = target_ema(np.arange(steps), base, steps - 1)
    assert np.allclose(cosine_ema_decay(base, steps), expected, rtol=0, atol=1e-15)


# ---------------------------------------------------------------- analytic values


@pytest.mark.parametrize("n,k,d", [(3, 4, 5), (5, 2, 5), (1, 7, 3), (8, 40, 16)])
@pytest.mark.parametrize("lam", LAMBDAS)
def test_mmcr_identical_views_orthonormal_centroids(n, k, d, lam):
    # K copies of one unit vector (with random positive scales: normalised inside); the
    # D×K view matrix is rank 1 with σ = √K; orthonormal centroids give ‖C‖_* = N.
    u = orthonormal_rows(n, d, seed=n + k)
    z = u[:, None, :] * (torch.rand(n, k, 1, dtype=F64) * 5 + 0.1)  # (N, K, D)
    terms = mmcr_terms(z, local_weight=lam)
    assert terms["centroid_nuclear"].item() == pytest.approx(-n, rel=1e-12)
    assert terms["local_nuclear"].item() == pytest.approx(lam * math.sqrt(k), rel=1e-12)
    expected = lam * math.sqrt(k) - n
    assert mmcr_loss(z, local_weight=lam).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert pretraining_percent_error(mmcr_centroids(z)).item() == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("p,d", [(4, 8), (8, 8), (16, 5)])
def test_ppe_of_orthonormal_and_collinear_centroids(p, d):
    if p <= d:
        assert pretraining_percent_error(orthonormal_rows(p, d)).item() == pytest.approx(
            0, abs=1e-12
        )
    rank_one = unit(randn(1, d)).expand(p, d)  # ‖M‖_* = √P
    expected = 1 - math.sqrt(p) / math.sqrt(p * min(p, d))  # = 1 − 1/√min(P, D)
    assert pretraining_percent_error(rank_one).item() == pytest.approx(expected, rel=1e-12)


def test_ppe_of_uniform_random_centroids_at_p_equal_d_is_1_minus_8_over_3pi():
    draws = [pretraining_percent_error(unit(randn(256, 256, seed=s))).item() for s in range(5)]
    assert np.mean(draws) == pytest.approx(1 - 8 / (3 * math.pi), abs=0.01)  # ≈ 0.151
    off_diagonal = pretraining_percent_error(unit(randn(64, 256, seed=9))).item()
    assert off_diagonal < np.mean(draws) / 2  # the P = D peak


def test_ppe_is_the_normalised_lambda_0_loss():
    z = randn(6, 3, 4, seed=7)
    bound = math.sqrt(6 * min(6, 4))
    ppe = pretraining_percent_error(mmcr_centroids(z))
    assert torch.allclose(ppe, 1 + mmcr_loss(z) / bound)
    assert 0 < ppe.item() < 1


def test_byol_and_simsiam_identical_orthogonal_opposite():
    p = randn(5, 4)
    r = randn(5, 4, seed=1)
    q = r - (r * unit(p)).sum(1, keepdim=True) * unit(p)  # each row orthogonal to p's row
    for target, byol, simsiam in [(p * 3, 0.0, -1.0), (q, 4.0, 0.0), (-p, 8.0, 1.0)]:
        assert byol_loss(p, p, target, target).item() == pytest.approx(byol, abs=1e-12)
        assert simsiam_loss(p, p, target, target).item() == pytest.approx(simsiam, abs=1e-12)
    # same cosines, different scale: BYOL's summed 2 − 2cos is 4 + 4 × SimSiam's ½(−cos) pair
    p_a, p_b, t_a, t_b = (randn(6, 4, seed=s) for s in range(4))
    assert torch.allclose(byol_loss(p_a, p_b, t_a, t_b), 4 + 4 * simsiam_loss(p_a, p_b, t_a, t_b))


@pytest.mark.parametrize("n,d", [(2, 2), (5, 8), (16, 16)])
@pytest.mark.parametrize("scale", [1.0, 1 / 0.07, 100.0])
def test_clip_orthonormal_identical_closed_form(n, d, scale):
    u = orthonormal_rows(n, d)
    loss = clip_loss(u * 2, u, torch.tensor(math.log(scale), dtype=F64))
    assert loss.item() == pytest.approx(math.log1p((n - 1) * math.exp(-scale)), rel=1e-12)


def test_clip_collinear_embeddings_give_log_n():
    z = unit(randn(1, 4)).expand(7, 4) * torch.arange(1.0, 8.0, dtype=F64)[:, None]
    assert clip_loss(z, z, 3.0).item() == pytest.approx(math.log(7), rel=1e-12)


def test_multimodal_mmcr_is_mmcr_with_two_views_and_no_local_term():
    z_a, z_b = randn(9, 5, seed=1), randn(9, 5, seed=2)
    expected = mmcr_loss(torch.stack([z_a, z_b], dim=1), local_weight=0.0)
    assert torch.allclose(mmcr_multimodal_loss(z_a, z_b), expected, atol=1e-12)
    u = orthonormal_rows(4, 6)
    assert mmcr_multimodal_loss(u, 3 * u).item() == pytest.approx(-4, rel=1e-12)


# ---------------------------------------------------------------- properties

A, B = randn(7, 5, seed=31), randn(7, 5, seed=32)
Z3 = randn(6, 3, 4, seed=33)


def cases():
    """(name, function, inputs) for every loss, float64, distinct singular values."""
    p_a, p_b, t_a, t_b = (randn(4, 3, seed=40 + s) for s in range(4))
    return [
        ("mmcr", lambda z: mmcr_loss(z), [randn(4, 3, 5, seed=50)]),
        ("mmcr_lambda", lambda z: mmcr_loss(z, local_weight=0.3), [randn(5, 2, 3, seed=51)]),
        ("mmcr_momentum", lambda z, t: mmcr_momentum_loss(z, t, local_weight=0.3),
         [randn(4, 3, 5, seed=52), randn(4, 3, 5, seed=53)]),
        ("multimodal", mmcr_multimodal_loss, [randn(4, 3, seed=54), randn(4, 3, seed=55)]),
        ("ppe", pretraining_percent_error, [randn(4, 3, seed=56) * 0.3]),
        ("byol", byol_loss, [p_a, p_b, t_a, t_b]),
        ("simsiam", simsiam_loss, [p_a, p_b, t_a, t_b]),
        ("clip", clip_loss, [randn(4, 3, seed=57), randn(4, 3, seed=58),
                             torch.tensor(1.2, dtype=F64)]),
    ]


TARGET_ARGS = {"mmcr_momentum": [1], "byol": [2, 3], "simsiam": [2, 3]}  # detached inside


@pytest.mark.parametrize("name,fn,inputs", cases(), ids=[c[0] for c in cases()])
def test_gradcheck_and_no_gradient_to_targets(name, fn, inputs):
    stopped = TARGET_ARGS.get(name, [])
    inputs = [x.clone().requires_grad_(i not in stopped) for i, x in enumerate(inputs)]
    assert torch.autograd.gradcheck(fn, inputs)
    if stopped:
        for i in stopped:
            inputs[i].requires_grad_(True)
        fn(*inputs).backward()
        for i, x in enumerate(inputs):
            if i in stopped:
                assert x.grad is None
            else:
                assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name,fn,inputs", cases(), ids=[c[0] for c in cases()])
def test_no_input_is_modified_in_place(name, fn, inputs):
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    before = [x.detach().clone() for x in inputs]
    fn(*inputs).backward()
    assert all(torch.equal(x.detach(), b) for x, b in zip(inputs, before, strict=True))


@pytest.mark.parametrize("name,fn,inputs", cases(), ids=[c[0] for c in cases()])
def test_invariant_to_positive_rescaling_of_each_embedding(name, fn, inputs):
    if name == "ppe":  # PPE uses the centroids as given: their norm is the signal
        return
    g = torch.Generator().manual_seed(1)
    scaled = [x if x.ndim == 0 else x * (torch.rand(*x.shape[:-1], 1, generator=g, dtype=F64)
                                         * 10 + 0.01) for x in inputs]
    assert torch.allclose(fn(*scaled), fn(*inputs), atol=1e-10)


def test_symmetries():
    p_a, p_b, t_a, t_b = (randn(6, 4, seed=s) for s in range(4))
    assert torch.allclose(byol_loss(p_a, p_b, t_a, t_b), byol_loss(p_b, p_a, t_b, t_a))
    assert torch.allclose(simsiam_loss(p_a, p_b, t_a, t_b), simsiam_loss(p_b, p_a, t_b, t_a))
    assert torch.allclose(clip_loss(A, B, 2.0), clip_loss(B, A, 2.0))
    assert torch.allclose(mmcr_multimodal_loss(A, B), mmcr_multimodal_loss(B, A))
    # MMCR: invariant to the order of the views and of the images; momentum with the target
    # equal to the online views is the plain loss (any λ)
    perm_k, perm_n = torch.tensor([2, 0, 1]), torch.randperm(6)
    for lam in (0.0, 0.4):
        loss = mmcr_loss(Z3, local_weight=lam)
        assert torch.allclose(mmcr_loss(Z3[:, perm_k], local_weight=lam), loss)
        assert torch.allclose(mmcr_loss(Z3[perm_n], local_weight=lam), loss)
        assert torch.allclose(mmcr_momentum_loss(Z3, Z3.clone(), local_weight=lam), loss)


@pytest.mark.parametrize(
    "terms_fn,loss_fn,args,kwargs",
    [
        (mmcr_terms, mmcr_loss, (Z3,), {"local_weight": 0.2}),
        (mmcr_momentum_terms, mmcr_momentum_loss, (Z3, Z3.flip(1) + 1), {"local_weight": 0.2}),
        (byol_terms, byol_loss, (A, B, B + 1, A - 1), {}),
        (simsiam_terms, simsiam_loss, (A, B, B + 1, A - 1), {}),
        (clip_terms, clip_loss, (A, B, 2.5), {}),
    ],
)
def test_terms_sum_to_the_loss(terms_fn, loss_fn, args, kwargs):
    terms = terms_fn(*args, **kwargs)
    assert len(terms) == 2 and all(t.ndim == 0 for t in terms.values())
    assert torch.allclose(sum(terms.values()), loss_fn(*args, **kwargs), atol=1e-12)


def test_mmcr_local_term_is_an_exact_zero_at_lambda_0():
    assert mmcr_terms(Z3, local_weight=0.0)["local_nuclear"].item() == 0.0


def test_float32_runs_and_shape_errors():
    z = randn(4, 2, 3, dtype=torch.float32)
    assert mmcr_loss(z).dtype == torch.float32 and torch.isfinite(mmcr_loss(z))
    with pytest.raises(ValueError, match=r"\(N, K, D\)"):
        mmcr_loss(z[:, 0])
    with pytest.raises(ValueError, match="same shape"):
        mmcr_momentum_loss(z, z[:, :1])
    with pytest.raises(ValueError, match="same shape"):
        mmcr_multimodal_loss(A, B[:, :3])
    with pytest.raises(ValueError, match="same shape"):
        byol_loss(A, B, A, B[:5])
    with pytest.raises(ValueError, match="same shape"):
        simsiam_loss(A, B[:, :2], A, B)
    with pytest.raises(ValueError, match="at least 2"):
        clip_loss(A[:1], B[:1], 1.0)
    with pytest.raises(ValueError, match="scalar"):
        clip_loss(A, B, torch.ones(2))
    with pytest.raises(ValueError, match=r"\(P, D\)"):
        pretraining_percent_error(Z3)


def test_mmcr_momentum_does_not_filter_non_finite_rows():
    # Deviation from the official code, which drops non-finite centroid rows silently.
    z_t = Z3.clone()
    z_t[0, 0, 0] = float("nan")
    try:
        loss = mmcr_momentum_loss(Z3, z_t)
    except RuntimeError as err:  # CPU LAPACK refuses non-finite input
        assert "non-finite" in str(err)
    else:  # GPU solvers return non-finite values instead
        assert not torch.isfinite(loss)


# ---------------------------------------------------------------- logit scale


def test_logit_scale_init_clamp_and_gradient():
    scale = LogitScale().double()
    assert scale().item() == pytest.approx(math.log(1 / 0.07), rel=1e-7)
    clip_loss(A, B, scale()).backward()
    assert scale.logit_scale.grad is not None and scale.logit_scale.grad.ndim == 0
    with torch.no_grad():
        scale.logit_scale.fill_(7.0)
    assert scale.clamp_()().item() == pytest.approx(math.log(100))
    with torch.no_grad():
        scale.logit_scale.fill_(-1.0)
    assert scale.clamp_()().item() == 0.0
    restored = LogitScale(temperature=0.5)
    restored.load_state_dict(scale.state_dict())
    assert restored().item() == 0.0 and list(scale.state_dict()) == ["logit_scale"]


# ---------------------------------------------------------------- EMA


def test_cosine_ema_decay_endpoints_and_shape():
    tau = cosine_ema_decay(0.996, 500)
    assert tau.shape == (500,) and tau.dtype == np.float64
    assert tau[0] == 0.996 and tau[-1] == 1.0
    assert np.all(np.diff(tau) >= 0)
    assert tau[249] == pytest.approx(0.996 + 0.004 * (1 - math.cos(math.pi * 249 / 499)) / 2)
    assert cosine_ema_decay(0.9, 1).tolist() == [0.9]
    with pytest.raises(ValueError, match="base"):
        cosine_ema_decay(1.5, 10)


def small_net():
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_ema_update_hand_case_params_and_buffers():
    online = small_net()
    target = ema_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    online(torch.randn(8, 3))  # train-mode forward: online running stats and counter move
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    online_state = {k: v.clone() for k, v in online.state_dict().items()}

    ema_update_(target, online, 0.5)
    for key, value in target.state_dict().items():
        if value.is_floating_point():  # weights, biases, running mean and var: averaged
            assert torch.allclose(value, (before[key] + online_state[key]) / 2, atol=1e-7)
        else:  # num_batches_tracked: copied
            assert torch.equal(value, online_state[key]) and value.item() == 1
    assert all(torch.equal(v, online_state[k]) for k, v in online.state_dict().items())
    assert all(p.grad_fn is None for p in target.parameters())

    kept = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update_(target, online, 1.0)  # τ = 1: unchanged
    assert all(torch.equal(v, kept[k]) for k, v in target.state_dict().items())
    ema_update_(target, online, 0.0)  # τ = 0: a copy
    assert all(torch.equal(v, online_state[k]) for k, v in target.state_dict().items())


def test_ema_update_checks_arguments():
    with pytest.raises(ValueError, match="different parameters"):
        ema_update_(small_net(), nn.Linear(3, 2), 0.9)
    with pytest.raises(ValueError, match="decay"):
        ema_update_(small_net(), small_net(), 1.1)
