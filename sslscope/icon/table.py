r"""The I-Con equivalences, computed: each named method as an I-Con loss and as its own formula.

Every row builds p and q from :mod:`sslscope.icon`, evaluates the divergence, and compares it
with the method's loss written independently (sslscope's own NT-Xent, torch's cross-entropy, or
the formula from the original paper written out here). Inputs are seeded random float64
tensors; the differences are rounding only (≈1e-15).

Run ``python -m sslscope.icon.table`` to print the table.

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929, Table 1, Thm 1, 3, 6, 8, 9,
    Cor. 1, §3.3.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.icon.divergence import icon_cross_entropy, icon_kl, icon_loss
from sslscope.icon.learned import (
    class_prototypes,
    cross_modal_gaussian_cosine,
    gaussian_cosine,
    gaussian_distance,
    pairwise_squared_distances,
    student_t,
)
from sslscope.icon.supervisory import (
    augmentation_pairs,
    cross_modal_pairs,
    gaussian_affinities,
    one_hot_labels,
    same_label,
)
from sslscope.losses.contrastive import nt_xent_loss


def supcon_out_loss(z: Tensor, labels: Tensor, *, temperature: float) -> Tensor:
    r"""SupCon L^sup_out of Khosla et al. 2020, Eq. 2, averaged over anchors.

        L = (1/B) Σ_i  −1/|P(i)| Σ_{p∈P(i)} log [ exp(z_i·z_p/τ) / Σ_{a∈A(i)} exp(z_i·z_a/τ) ]

    with z L2-normalised, A(i) = all samples but i, P(i) = those of A(i) with i's label. Written
    from the paper's definition as the reference for the I-Con SupCon row (it shares no code
    with :mod:`sslscope.icon`).

    Args:
        z: embeddings of all views, shape (B, D); L2-normalised here.
        labels: shape (B,); every label must occur at least twice.
        temperature: τ.

    Returns:
        Scalar tensor.

    References:
        Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, arXiv:2004.11362, Eq. 2.
    """
    z = F.normalize(z, dim=1)
    sim = z @ z.T / temperature  # (B, B)
    others = ~torch.eye(z.shape[0], dtype=torch.bool)
    log_prob = sim - torch.logsumexp(sim.masked_fill(~others, -math.inf), dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & others
    per_anchor = -(log_prob * positives).sum(dim=1) / positives.sum(dim=1)
    return per_anchor.mean()


def _sne_cost(p: Tensor, y: Tensor, *, student: bool) -> Tensor:
    """Σ_i KL(P_i ‖ Q_i) with q(j|i) written out (Hinton & Roweis 2002; I-Con Cor. 1 if t)."""
    d2 = pairwise_squared_distances(y)
    total = y.new_zeros(())
    for i in range(y.shape[0]):
        others = [k for k in range(y.shape[0]) if k != i]
        kernel = 1 / (1 + d2[i, others]) if student else torch.exp(-d2[i, others])
        q_row = kernel / kernel.sum()
        total = total + (p[i, others] * torch.log(p[i, others] / q_row)).sum()
    return total


def _joint_tsne_cost(p: Tensor, y: Tensor) -> Tensor:
    """Symmetric-P t-SNE cost KL(P‖Q) over all pairs (van der Maaten & Hinton 2008, §3)."""
    n = y.shape[0]
    joint_p = (p + p.T) / (2 * n)
    kernel = 1 / (1 + pairwise_squared_distances(y))
    kernel = kernel.masked_fill(torch.eye(n, dtype=torch.bool), 0)
    joint_q = kernel / kernel.sum()
    off = ~torch.eye(n, dtype=torch.bool)
    return (joint_p[off] * torch.log(joint_p[off] / joint_q[off])).sum()


def _row(method: str, p_sup: str, log_q: str, icon: Tensor, ref: Tensor, note: str) -> dict:
    return {
        "method": method,
        "p_sup": p_sup,
        "log_q": log_q,
        "icon": icon.item(),
        "reference": ref.item(),
        "abs_diff": (icon - ref).abs().item(),
        "note": note,
    }


def equivalence_rows(
    *, n: int = 8, dim: int = 5, seed: int = 0, sigma: float = 0.5, alpha: float = 0.1
) -> list[dict[str, Any]]:
    r"""Each named method computed as I-Con and as its own loss, in float64.

    Args:
        n: samples per batch (≥ 4): SimCLR/SupCon/CLIP use n pairs (B = 2n anchors); cross-
            entropy, label smoothing, SNE and t-SNE use B = n.
        dim: embedding dimension.
        seed: seed of the random inputs.
        sigma: bandwidth of the cosine kernels, τ = 2σ² (0.5 gives τ = 0.5).
        alpha: label-smoothing / debiasing weight.

    Returns:
        One dict per method with keys ``method``, ``p_sup``, ``log_q`` (the kernels used),
        ``icon`` and ``reference`` (the two values), ``abs_diff`` and ``note``.
    """
    if n < 4:
        raise ValueError(f"n must be at least 4, got {n}")
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    tau = 2 * sigma**2
    num_classes = min(4, n // 2)
    labels = torch.randperm(n, generator=g) % num_classes  # every class ≥ 2 times
    pair_index = torch.cat([torch.arange(n), torch.arange(n)])
    rows = []

    z_a, z_b = randn(n, dim), randn(n, dim)
    rows.append(
        _row(
            "SimCLR (NT-Xent)",
            "augmentation_pairs",
            f"gaussian_cosine σ={sigma}",
            icon_cross_entropy(
                augmentation_pairs(pair_index, dtype=torch.float64),
                gaussian_cosine(torch.cat([z_a, z_b]), sigma=sigma),
            ),
            nt_xent_loss(z_a, z_b, temperature=tau),
            f"reference: sslscope nt_xent_loss at τ = 2σ² = {tau:g}; B = 2n anchors",
        )
    )

    z = torch.cat([z_a, z_b])
    views_labels = torch.cat([labels, labels])
    rows.append(
        _row(
            "SupCon (L_out)",
            "same_label",
            f"gaussian_cosine σ={sigma}",
            icon_cross_entropy(
                same_label(views_labels, dtype=torch.float64), gaussian_cosine(z, sigma=sigma)
            ),
            supcon_out_loss(z, views_labels, temperature=tau),
            "reference: Khosla et al. 2020 Eq. 2 (supcon_out_loss), two views per sample",
        )
    )

    z_img, z_txt = randn(n, dim), randn(n, dim)
    modality = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    clip_logits = F.normalize(z_img, dim=1) @ F.normalize(z_txt, dim=1).T / tau
    target = torch.arange(n)
    rows.append(
        _row(
            "CLIP (symmetric)",
            "cross_modal_pairs",
            f"cross_modal_gaussian_cosine σ={sigma}",
            icon_cross_entropy(
                cross_modal_pairs(pair_index, modality, dtype=torch.float64),
                cross_modal_gaussian_cosine(z_img, z_txt, sigma=sigma),
            ),
            (F.cross_entropy(clip_logits, target) + F.cross_entropy(clip_logits.T, target)) / 2,
            "reference: mean of image→text and text→image cross-entropy",
        )
    )

    z, prototypes = randn(n, dim), randn(num_classes, dim)
    p_labels = one_hot_labels(labels, num_classes, dtype=torch.float64)
    log_q = class_prototypes(z, prototypes)
    rows.append(
        _row(
            "cross-entropy",
            "one_hot_labels",
            "class_prototypes",
            icon_cross_entropy(p_labels, log_q),
            F.cross_entropy(z @ prototypes.T, labels),
            "reference: F.cross_entropy(z @ prototypes.T, y)",
        )
    )
    rows.append(
        _row(
            f"label smoothing α={alpha}",
            f"one_hot_labels, alpha_p={alpha}",
            "class_prototypes",
            icon_loss(p_labels, log_q, divergence="cross_entropy", alpha_p=alpha),
            F.cross_entropy(z @ prototypes.T, labels, label_smoothing=alpha),
            "torch spreads α/C over all C classes; debias uses N = C allowed columns: same p",
        )
    )

    x, y = randn(n, dim), randn(n, 2)
    perplexity = min(30.0, (n - 1) / 2)
    p_sne = gaussian_affinities(x, perplexity=perplexity)
    rows.append(
        _row(
            "SNE",
            f"gaussian_affinities perp={perplexity:g}",
            "gaussian_distance σ=1/√2",
            n * icon_kl(p_sne, gaussian_distance(y, sigma=1 / math.sqrt(2))),
            _sne_cost(p_sne, y, student=False),
            "classic cost Σ_i KL(P_i‖Q_i) is a sum: I-Con column is B · icon_kl",
        )
    )
    rows.append(
        _row(
            "t-SNE (conditional)",
            f"gaussian_affinities perp={perplexity:g}",
            "student_t ν=1",
            n * icon_kl(p_sne, student_t(y, dof=1.0)),
            _sne_cost(p_sne, y, student=True),
            "I-Con Cor. 1 (conditional rows), not van der Maaten 2008's joint P, Q: "
            f"the joint cost on these inputs is {_joint_tsne_cost(p_sne, y).item():.6f}",
        )
    )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`equivalence_rows`, notes numbered below it."""
    header = ["method", "p_sup", "log_q", "I-Con", "reference", "|diff|"]
    body = [
        [
            f"{r['method']} [{k}]",
            r["p_sup"],
            r["log_q"],
            f"{r['icon']:.12f}",
            f"{r['reference']:.12f}",
            f"{r['abs_diff']:.1e}",
        ]
        for k, r in enumerate(rows, start=1)
    ]
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    numeric = {3, 4, 5}

    def fmt(line: list[str]) -> str:
        cells = [
            cell.rjust(w) if c in numeric else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    notes = [f"[{k}] {r['note']}" for k, r in enumerate(rows, start=1)]
    return "\n".join([fmt(header), rule, *map(fmt, body), "", *notes])


if __name__ == "__main__":
    print(format_table(equivalence_rows()))
