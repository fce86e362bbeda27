"""I-Con kernels and divergences: distributions, identities, equivalences, references, gradients."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sslscope.icon import (
    augmentation_pairs,
    class_prototypes,
    cluster_kernel,
    cross_modal_gaussian_cosine,
    cross_modal_pairs,
    debias,
    debias_log,
    gaussian_affinities,
    gaussian_cosine,
    gaussian_distance,
    icon_cross_entropy,
    icon_kl,
    icon_loss,
    icon_reverse_kl,
    knn_graph,
    knn_walks,
    one_hot_labels,
    row_entropy,
    same_label,
    student_t,
)
from sslscope.icon.table import equivalence_rows, format_table, supcon_out_loss
from tests.reference import icon_official as official

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def not_self(b):
    return ~torch.eye(b, dtype=torch.bool)


# Odd B throughout; index/labels give 2 or 3 members per group.
INDEX = torch.tensor([0, 0, 1, 1, 1, 2, 2])
LABELS = torch.tensor([0, 1, 0, 2, 1, 2, 2])
MODALITY = torch.tensor([0, 1, 0, 1, 2, 0, 1])

SUPERVISORY = {  # name -> (builder, diagonal excluded)
    "augmentation_pairs": (lambda: augmentation_pairs(INDEX, dtype=F64), True),
    "same_label": (lambda: same_label(LABELS, dtype=F64), True),
    "one_hot_labels": (lambda: one_hot_labels(LABELS, 3, dtype=F64), False),
    "gaussian_affinities": (lambda: gaussian_affinities(randn(7, 4), perplexity=3.0), True),
    "knn_graph_cosine": (lambda: knn_graph(randn(7, 4), k=3), True),
    "knn_graph_euclidean": (lambda: knn_graph(randn(7, 4), k=2, metric="euclidean"), True),
    "knn_walks": (lambda: knn_walks(knn_graph(randn(7, 4), k=2), length=3), True),
    "knn_walks_uniform": (
        lambda: knn_walks(knn_graph(randn(7, 4), k=2), length=2, weighting="uniform"),
        True,
    ),
    "cross_modal_pairs": (lambda: cross_modal_pairs(INDEX, MODALITY, dtype=F64), True),
    "debias_without_self": (
        lambda: debias(same_label(LABELS, dtype=F64), alpha=0.3, allowed=not_self(7)),
        True,
    ),
}

LEARNED = {  # name -> (builder, diagonal excluded)
    "gaussian_distance": (lambda: gaussian_distance(randn(7, 3), sigma=0.8), True),
    "gaussian_cosine": (lambda: gaussian_cosine(randn(7, 3), sigma=0.3), True),
    "student_t_1": (lambda: student_t(randn(7, 3)), True),
    "student_t_2.5": (lambda: student_t(randn(7, 3), dof=2.5), True),
    "cluster_kernel": (lambda: cluster_kernel(F.softmax(randn(7, 4), dim=1)), False),
    "cluster_kernel_no_self": (
        lambda: cluster_kernel(F.softmax(randn(7, 4), dim=1), include_self=False),
        True,
    ),
    "class_prototypes": (lambda: class_prototypes(randn(7, 3), randn(4, 3, seed=1)), False),
    "cross_modal_gaussian_cosine": (
        lambda: cross_modal_gaussian_cosine(randn(3, 5), randn(4, 5, seed=1), sigma=0.5),
        True,
    ),
    "debias_log": (lambda: debias_log(gaussian_cosine(randn(7, 3), sigma=0.3), alpha=0.3), True),
}


# ---------------------------------------------------------------- distributions


@pytest.mark.parametrize("name", SUPERVISORY)
def test_supervisory_kernels_are_row_stochastic(name):
    build, no_self = SUPERVISORY[name]
    p = build()
    assert (p >= 0).all()
    assert torch.allclose(p.sum(dim=1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-12)
    if no_self:
        assert (p.diagonal() == 0).all()


@pytest.mark.parametrize("name", LEARNED)
def test_learned_kernels_are_row_stochastic_in_log_space(name):
    build, no_self = LEARNED[name]
    log_q = build()
    assert not torch.isnan(log_q).any() and (log_q < math.inf).all()
    assert torch.allclose(
        torch.logsumexp(log_q, dim=1), torch.zeros(log_q.shape[0], dtype=F64), atol=1e-12
    )
    if no_self:
        assert (log_q.diagonal() == -math.inf).all()
    if name != "cross_modal_gaussian_cosine":
        assert torch.isfinite(log_q[not_self(7)] if no_self else log_q).all()


def test_cross_modal_kernel_candidates_are_the_other_modality():
    log_q = cross_modal_gaussian_cosine(randn(3, 5), randn(4, 5, seed=1), sigma=0.5)
    finite = torch.isfinite(log_q)
    assert not finite[:3, :3].any() and not finite[3:, 3:].any()
    assert finite[:3, 3:].all() and finite[3:, :3].all()
    p = cross_modal_pairs(INDEX, MODALITY, dtype=F64)
    assert (p[MODALITY[:, None] == MODALITY[None, :]] == 0).all()


@pytest.mark.parametrize("b,perplexity", [(7, 2.5), (20, 5.0), (41, 30.0), (64, 12.3)])
def test_perplexity_calibration_hits_the_target(b, perplexity):
    p = gaussian_affinities(randn(b, 6, seed=b) * 3.0, perplexity=perplexity)
    entropy_bits = -(p * torch.log2(p.masked_fill(p == 0, 1))).sum(dim=1)
    assert torch.allclose(2**entropy_bits, torch.full((b,), perplexity, dtype=F64), atol=1e-3)


def test_perplexity_calibration_matches_scikit_learn():
    from sklearn.manifold._utils import _binary_search_perplexity

    x = randn(30, 5, seed=3)
    ours = gaussian_affinities(x, perplexity=8.0)
    sq = ((x[:, None] - x[None]) ** 2).sum(-1).numpy().astype(np.float32)
    theirs = _binary_search_perplexity(sq, 8.0, 0)  # excludes j = i in its exact mode
    assert np.allclose(ours.numpy(), theirs, atol=1e-4)


def test_knn_walks_on_a_four_node_path():
    # 0 – 1 – 2 – 3, p uniform over graph neighbours
    p = torch.tensor([[0, 1, 0, 0], [0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5], [0, 0, 1, 0]], dtype=F64)
    # P + P² with the self-returns dropped, then rows normalised (worked by hand)
    walks = torch.tensor(
        [[0, 2 / 3, 1 / 3, 0], [0.4, 0, 0.4, 0.2], [0.2, 0.4, 0, 0.4], [0, 1 / 3, 2 / 3, 0]],
        dtype=F64,
    )
    third = 1 / 3
    uniform = torch.tensor(
        [[0, 0.5, 0.5, 0], [third, 0, third, third], [third, third, 0, third], [0, 0.5, 0.5, 0]],
        dtype=F64,
    )
    assert torch.allclose(knn_walks(p, length=1), p, atol=1e-15)
    assert torch.allclose(knn_walks(p, length=2), walks, atol=1e-15)
    assert torch.allclose(knn_walks(p, length=2, weighting="uniform"), uniform, atol=1e-15)
    assert (knn_walks(p, length=3, weighting="uniform") > 0).sum() == 12  # all off-diagonal


def test_debias_hand_case():
    p = torch.tensor([[0, 1, 0], [0.5, 0, 0.5], [1, 0, 0]], dtype=F64)
    without_self = torch.tensor([[0, 0.85, 0.15], [0.5, 0, 0.5], [0.85, 0.15, 0]], dtype=F64)
    everywhere = torch.tensor([[0.1, 0.8, 0.1], [0.45, 0.1, 0.45], [0.8, 0.1, 0.1]], dtype=F64)
    assert torch.allclose(debias(p, alpha=0.3, allowed=not_self(3)), without_self, atol=1e-15)
    assert torch.allclose(debias(p, alpha=0.3), everywhere, atol=1e-15)
    assert torch.allclose(debias(p, alpha=0.3), official.leak(p, 0.3), atol=1e-15)  # N = B
    assert debias(p, alpha=0.0) is p


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.7, 1.0])
def test_debias_log_is_debias_in_log_space(alpha):
    log_q = gaussian_cosine(randn(6, 3), sigma=0.4)
    expected = debias(log_q.exp(), alpha=alpha, allowed=not_self(6))
    ours = debias_log(log_q, alpha=alpha)
    assert torch.allclose(ours.exp(), expected, atol=1e-14)
    assert (ours.diagonal() == -math.inf).all()


# ---------------------------------------------------------------- divergence identities

P_CASES = {
    "augmentation": lambda: augmentation_pairs(INDEX, dtype=F64),
    "labels": lambda: same_label(LABELS, dtype=F64),
    "gaussian": lambda: gaussian_affinities(randn(7, 4), perplexity=3.0),
    "walks": lambda: knn_walks(knn_graph(randn(7, 4), k=2), length=2),
}


@pytest.mark.parametrize("name", P_CASES)
def test_kl_of_a_kernel_with_itself_is_zero(name):
    p = P_CASES[name]()
    assert icon_kl(p, p.log()).abs() < 1e-15
    assert icon_reverse_kl(p, p.log()).abs() < 1e-15


@pytest.mark.parametrize("name", P_CASES)
def test_cross_entropy_is_kl_plus_entropy(name):
    p = P_CASES[name]()
    log_q = student_t(randn(7, 3, seed=5))
    ce, kl = icon_cross_entropy(p, log_q), icon_kl(p, log_q)
    assert torch.allclose(ce, kl + row_entropy(p).mean(), atol=1e-14)
    assert kl > 0


def test_reverse_kl_hand_case():
    p = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]], dtype=F64)
    log_q = torch.tensor([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]], dtype=F64).log()
    # row 0: .25 log(.25/.5) + .25 log 1 + .5 log(.5/.25) = ¼ log 2; row 1: q = p, and the
    # entry with q = 0 = p contributes 0
    assert torch.allclose(icon_reverse_kl(p, log_q), torch.tensor(math.log(2) / 8, dtype=F64))
    # q > 0 where p = 0: the true value is +inf, not a clamped number
    p_zero = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    log_q_half = torch.tensor([[0.5, 0.5, 0.0]], dtype=F64).log()
    assert icon_reverse_kl(p_zero, log_q_half) == math.inf
    assert torch.isfinite(official.reverse_kl_divergence(p_zero, log_q_half))


def test_cross_entropy_is_infinite_when_p_has_mass_outside_the_candidates():
    p = torch.tensor([[0.5, 0.5]], dtype=F64)
    log_q = torch.tensor([[0.0, -math.inf]], dtype=F64)
    assert icon_cross_entropy(p, log_q) == math.inf
    assert icon_kl(p, log_q) == math.inf


def test_uniform_q_gives_log_of_the_candidate_count():
    # all embeddings equal: q(·|i) uniform over B − 1 others, so H(p, q) = log(B − 1)
    log_q = gaussian_cosine(torch.ones(7, 3, dtype=F64), sigma=0.3)
    p = same_label(LABELS, dtype=F64)
    assert torch.allclose(icon_cross_entropy(p, log_q), torch.tensor(math.log(6), dtype=F64))


def test_icon_loss_options():
    p, log_q = same_label(LABELS, dtype=F64), gaussian_cosine(randn(7, 3), sigma=0.5)
    assert icon_loss(p, log_q) == icon_kl(p, log_q)
    assert icon_loss(p, log_q, divergence="cross_entropy") == icon_cross_entropy(p, log_q)
    both = icon_loss(p, log_q, divergence="reverse_kl", alpha_p=0.2, alpha_q=0.4)
    expected = icon_reverse_kl(
        debias(p, alpha=0.2, allowed=not_self(7)), debias_log(log_q, alpha=0.4)
    )
    assert torch.allclose(both, expected, atol=1e-15)
    assert icon_loss(p, log_q, divergence="reverse_kl") == math.inf  # p = 0 where q > 0
    with pytest.raises(ValueError, match="divergence"):
        icon_loss(p, log_q, divergence="js")


# ---------------------------------------------------------------- equivalences


@pytest.mark.parametrize("n,sigma", [(4, 0.5), (5, 0.3), (7, 0.7), (16, 0.5), (33, 1.0)])
def test_equivalence_table(n, sigma):
    rows = equivalence_rows(n=n, dim=3 + n % 4, seed=n, sigma=sigma, alpha=0.15)
    assert [r["method"] for r in rows][:2] == ["SimCLR (NT-Xent)", "SupCon (L_out)"]
    assert len(rows) == 7
    for row in rows:
        assert row["abs_diff"] < 1e-10, row
        assert math.isfinite(row["icon"])
    text = format_table(rows)
    assert all(r["method"] in text for r in rows)


def test_supcon_reference_matches_the_paper_loop():
    z, labels = randn(9, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    zn = F.normalize(z, dim=1).numpy()
    tau, total = 0.3, 0.0
    for i in range(9):
        others = [a for a in range(9) if a != i]
        denominator = sum(np.exp(zn[i] @ zn[a] / tau) for a in others)
        positives = [q for q in others if labels[q] == labels[i]]
        total += -sum(np.log(np.exp(zn[i] @ zn[q] / tau) / denominator) for q in positives) / len(
            positives
        )
    assert abs(supcon_out_loss(z, labels, temperature=tau).item() - total / 9) < 1e-12


def test_conditional_tsne_differs_from_the_joint_tsne_of_van_der_maaten():
    row = equivalence_rows(n=9)[-1]
    joint = float(row["note"].rsplit(" ", 1)[-1])
    assert abs(row["icon"] - joint) > 1e-3


# ---------------------------------------------------------------- authors' code


def test_gaussian_and_kl_match_the_official_code():
    z = randn(9, 4)
    for metric, ours in [
        ("euclidean", gaussian_distance(z, sigma=0.8)),
        ("cosine", gaussian_cosine(z, sigma=0.8)),
    ]:
        theirs = official.gaussian(z, 0.8, metric=metric)
        assert torch.allclose(ours, theirs, atol=1e-12)
    p = gaussian_affinities(randn(9, 4, seed=1), perplexity=5.0)
    assert p[not_self(9)].min() > 1e-10  # ICon's kl drops p ≤ 1e-10
    log_q = gaussian_distance(z, sigma=0.8)
    # ICon's `kl` is the cross-entropy divided by B, not the KL divergence:
    official_kl = official.kl_divergence(p, log_q)
    assert torch.allclose(official_kl, icon_cross_entropy(p, log_q), atol=1e-12)
    assert torch.allclose(official_kl, icon_kl(p, log_q) + row_entropy(p).mean(), atol=1e-12)
    assert official_kl - icon_kl(p, log_q) > 0.5


def test_reverse_kl_matches_the_official_code_when_p_is_positive():
    p = debias(
        gaussian_affinities(randn(9, 4, seed=1), perplexity=5.0), alpha=0.1, allowed=not_self(9)
    )
    log_q = gaussian_cosine(randn(9, 4), sigma=0.5)
    theirs = official.reverse_kl_divergence(p, log_q)
    assert torch.allclose(icon_reverse_kl(p, log_q), theirs, atol=1e-12)


def test_student_t_matches_the_official_code_at_one_degree_of_freedom_only():
    z = randn(8, 3)
    theirs = official.student_t(z, gamma=1.0, df=1.0).log()
    assert torch.allclose(student_t(z, dof=1.0), theirs, atol=1e-12)
    theirs_log_path = official.student_t(z, df=1.0, return_log=True)  # +1e-8 inside a log
    assert torch.allclose(
        student_t(z, dof=1.0)[not_self(8)], theirs_log_path[not_self(8)], atol=1e-6
    )
    # at df = 2 ICon computes 1 / (1 + ‖·‖⁴), not the Student-t (1 + ‖·‖²/2)^(−3/2)
    d4 = official.euclidean_distance(z, z) ** 2
    quirk = (1 / (1 + d4)).masked_fill(~not_self(8), 0)
    assert torch.allclose(official.student_t(z, df=2.0), quirk / quirk.sum(1, keepdim=True))
    assert not torch.allclose(student_t(z, dof=2.0).exp(), official.student_t(z, df=2.0))


def test_cluster_kernel_matches_the_official_code():
    probs = F.softmax(randn(10, 4) * 2, dim=1)
    assert torch.allclose(cluster_kernel(probs), official.uniform_cluster(probs), atol=1e-12)
    masked = official.uniform_cluster(probs, mask_diagonal=True, return_log=False)
    assert (masked.sum(1) < 1).all()  # ICon's masked version is not a distribution; ours is
    ours = cluster_kernel(probs, include_self=False).exp()
    assert torch.allclose(ours, masked / masked.sum(1, keepdim=True), atol=1e-14)


def test_graph_kernels_match_the_official_code():
    x = randn(9, 4)
    assert torch.allclose(knn_graph(x, k=3, metric="euclidean"), official.uniform_knn(x, 3))
    assert torch.allclose(same_label(LABELS, dtype=F64), official.label(LABELS).double())
    assert torch.allclose(
        one_hot_labels(LABELS, 3, dtype=F64),
        official.label(LABELS, pairwise=False, num_classes=3).double(),
    )


# ---------------------------------------------------------------- gradients and purity


@pytest.mark.parametrize(
    "divergence,alpha_p,alpha_q",
    [("kl", 0.0, 0.0), ("cross_entropy", 0.0, 0.3), ("kl", 0.2, 0.4), ("reverse_kl", 0.3, 0.0)],
)
def test_gradcheck_icon_loss_through_gaussian_cosine(divergence, alpha_p, alpha_q):
    p = augmentation_pairs(torch.tensor([0, 1, 2, 0, 1, 2]), dtype=F64)
    z = randn(6, 3).requires_grad_()

    def loss(z):
        log_q = gaussian_cosine(z, sigma=0.6)
        return icon_loss(p, log_q, divergence=divergence, alpha_p=alpha_p, alpha_q=alpha_q)

    assert torch.autograd.gradcheck(loss, (z,))


@pytest.mark.parametrize("kernel", ["student_t", "gaussian_distance", "cluster_kernel"])
def test_gradcheck_other_learned_kernels(kernel):
    p = gaussian_affinities(randn(5, 4, seed=2), perplexity=2.0)
    z = randn(5, 3).requires_grad_()
    build = {
        "student_t": lambda z: student_t(z, dof=1.5),
        "gaussian_distance": lambda z: gaussian_distance(z, sigma=0.9),
        "cluster_kernel": lambda z: cluster_kernel(F.softmax(z, dim=1), include_self=False),
    }[kernel]
    assert torch.autograd.gradcheck(lambda z: icon_kl(p, build(z)), (z,))


def test_no_input_is_modified_in_place():
    z, z_b, x = randn(7, 3), randn(4, 3, seed=1), randn(7, 4, seed=2)
    probs, protos = F.softmax(randn(7, 4, seed=3), dim=1), randn(4, 3, seed=4)
    p = same_label(LABELS, dtype=F64)
    log_q = gaussian_cosine(z, sigma=0.5)
    inputs = [z, z_b, x, probs, protos, p, log_q, LABELS, INDEX, MODALITY]
    clones = [t.clone() for t in inputs]
    augmentation_pairs(INDEX)
    cross_modal_pairs(INDEX, MODALITY)
    one_hot_labels(LABELS, 3)
    gaussian_affinities(x, perplexity=3.0)
    knn_walks(knn_graph(x, k=2), length=2)
    knn_walks(p, length=3, weighting="uniform")
    for fn in (gaussian_distance, student_t):
        fn(z)
    cluster_kernel(probs, include_self=False)
    class_prototypes(z, protos)
    cross_modal_gaussian_cosine(z, z_b, sigma=0.5)
    debias(p, alpha=0.3, allowed=not_self(7))
    debias_log(log_q, alpha=0.3)
    for divergence in ("kl", "reverse_kl", "cross_entropy"):
        icon_loss(p, log_q, divergence=divergence, alpha_p=0.2, alpha_q=0.2)
    for before, after in zip(clones, inputs, strict=True):
        assert torch.equal(before, after)


# ---------------------------------------------------------------- errors


def test_errors_are_clear():
    with pytest.raises(ValueError, match="no positive"):
        same_label(torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="no positive"):
        augmentation_pairs(torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="perplexity"):
        gaussian_affinities(randn(5, 2), perplexity=4.0)
    with pytest.raises(ValueError, match="k must be"):
        knn_graph(randn(5, 2), k=5)
    with pytest.raises(ValueError, match="same shape"):
        icon_kl(torch.ones(3, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="alpha"):
        debias(torch.ones(2, 2) / 2, alpha=1.5)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_cosine(randn(3, 2), sigma=0.0)
