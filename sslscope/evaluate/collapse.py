"""How tightly a representation clusters a labelling: CDNV, NCC and the NCC/linear ratio.

The measures of Ben-Shaul et al. (2023) for "Reverse engineering SSL", at any label level: the
labels can be the classes, superclasses, one class per image (the sample level) or a labelling
of graded randomness. Pure functions of ``(features, labels)``; NCC and the linear probe are the
single implementations in :mod:`sslscope.evaluate.neighbours` and :mod:`~.probes`.

References:
    Galanti, György & Hutter, "On the Role of Neural Collapse in Transfer Learning", ICLR 2022,
    arXiv:2112.15121 (class-distance normalised variance, CDNV).
    Ben-Shaul, Shwartz-Ziv, Galanti, Dekel & LeCun, "Reverse Engineering Self-Supervised
    Learning", NeurIPS 2023, arXiv:2305.15614.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from sslscope.evaluate.neighbours import check_labelled, ncc_accuracy
from sslscope.evaluate.probes import linear_probe

# The probe's one weight decay at every label level and evaluation point. A search on
# validation (the run's probes do one) would repeat 7 fits per level, tap and point; on
# standardised features 1e-3 is what the search picks on digits and within a point of it on
# the sample level (see linear_probe's notes), and one fixed value keeps the curves comparable
# over training.
LEVEL_WEIGHT_DECAY = 1e-3


@dataclass(frozen=True)
class CDNV:
    """Class-distance normalised variance of a labelling and its two parts (float64 sums).

    Attributes:
        cdnv: Avg_{i≠j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²); 0 when every class is collapsed to
            its mean, inf when two classes share a mean.
        within_variance: Avg_c Var_c, Var_c = (1/|S_c|) Σ_{x∈S_c} ‖f(x) − μ_c‖².
        between_distance: Avg_{i≠j} ‖μ_i − μ_j‖².
    """

    cdnv: float
    within_variance: float
    between_distance: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def cdnv(features: Tensor, labels: Tensor) -> CDNV:
    r"""CDNV of ``features`` under ``labels`` (Galanti et al. 2022, Eq. 2), averaged over pairs.

    .. math::
        V_f(S_i, S_j) = \frac{\mathrm{Var}_f(S_i) + \mathrm{Var}_f(S_j)}{2\,\|\mu_i - \mu_j\|^2},
        \qquad \mathrm{CDNV} = \operatorname{Avg}_{i \ne j} V_f(S_i, S_j)

    over the classes present in ``labels`` (absent label values are skipped). Computed in
    float64 on the features' device.

    Args:
        features: (N, D) float.
        labels: (N,) integer labels ≥ 0, at least two distinct values.

    Returns:
        A :class:`CDNV` of Python floats.
    """
    check_labelled(features, labels, "features")
    present, index = torch.unique(labels.to(features.device), return_inverse=True)
    k = present.numel()
    if k < 2:
        raise ValueError(f"CDNV needs at least two classes, got {k}")
    f = features.double()
    counts = torch.bincount(index, minlength=k).double()  # (K,)
    means = torch.zeros(k, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, index, f)
    means /= counts[:, None]
    variance = torch.zeros(k, dtype=f.dtype, device=f.device).index_add_(
        0, index, (f - means[index]).square().sum(1)) / counts  # (K,)
    distance = torch.cdist(means, means).square()  # (K, K)
    pairs = ~torch.eye(k, dtype=torch.bool, device=f.device)
    ratio = (variance[:, None] + variance[None, :]) / (2 * distance)  # diagonal: 0/0, masked
    values = torch.stack([ratio[pairs].mean(), variance.mean(), distance[pairs].mean()]).tolist()
    return CDNV(*values)


def collapse_metrics(
    train: Tensor,
    train_y: Tensor,
    test: Tensor,
    test_y: Tensor,
    *,
    linear: bool = True,
    variance: bool = True,
    weight_decay: float = LEVEL_WEIGHT_DECAY,
) -> dict[str, float]:
    """NCC train/test accuracy, linear test accuracy, their ratio and the CDNV of one labelling.

    NCC uses the class means of ``train``; its train accuracy (``train`` against its own means)
    measures clustering, its test accuracy generalisation (Ben-Shaul et al. 2023, §3). The
    linear probe is multinomial logistic regression on standardised features at one fixed
    ``weight_decay`` (no search: see :data:`LEVEL_WEIGHT_DECAY`). The NCC/linear ratio divides
    the two test accuracies: NCC is a linear classifier, so the ratio is ≤ 1 up to the probe's
    regularisation, and it is 1 when the classes are as clustered as they are separable. The
    CDNV and its parts are computed on ``train``.

    Args:
        train, test: (N, D) and (M, D) features.
        train_y, test_y: (N,) and (M,) integer labels (test labels absent from train count as
            NCC errors).
        linear: also fit the linear probe (``linear_test_acc``, ``ncc_linear_ratio``).
        variance: also compute the CDNV parts.
        weight_decay: of the linear probe.

    Returns:
        {"ncc_train_acc", "ncc_test_acc"} plus {"linear_test_acc", "ncc_linear_ratio"} and
        {"cdnv", "within_variance", "between_distance"} when asked for, as Python floats.
    """
    train_y, test_y = train_y.to(train.device), test_y.to(test.device)
    out = {
        "ncc_train_acc": ncc_accuracy(train, train_y, train, train_y),
        "ncc_test_acc": ncc_accuracy(train, train_y, test, test_y),
    }
    if linear:
        result = linear_probe(train, train_y, test, test_y, weight_decays=(weight_decay,),
                              val_fraction=0.0)
        out["linear_test_acc"] = result.test_acc
        out["ncc_linear_ratio"] = (out["ncc_test_acc"] / result.test_acc if result.test_acc
                                   else math.nan)
    if variance:
        out.update(cdnv(train, train_y).as_dict())
    return out
