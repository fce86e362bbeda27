"""Non-parametric read-outs of frozen features: weighted kNN and nearest class centre (NCC).

Both are pure functions of ``(features, labels)`` tensors that run on the tensors' device. They
read from the device only for the input checks, to infer ``num_classes`` when it is not given,
and to return the final accuracy; kNN bounds its memory by working in chunks of test rows.

Accuracies are fractions in [0, 1]. Ties between classes go to the lowest class index, because
``torch.argmax`` returns the first maximal entry.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def check_labelled(x: Tensor, y: Tensor | None, name: str, train_x: Tensor | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite (N, D) float tensor with (N,) integer labels.

    ``y`` may be None (features only). ``train_x``, when given, is the train split that ``x``
    must match in feature dimension and device. The finiteness check reads one boolean back
    from the device; the public functions run it once per call, never inside their loops.
    """
    if x.ndim != 2 or not x.is_floating_point() or x.shape[0] == 0:
        raise ValueError(
            f"{name}_x must be a non-empty float tensor of shape (N, D), got "
            f"{x.dtype} of shape {tuple(x.shape)}"
        )
    if train_x is not None and (x.shape[1] != train_x.shape[1] or x.device != train_x.device):
        raise ValueError(
            f"{name}_x has {x.shape[1]} features on {x.device} but train_x has "
            f"{train_x.shape[1]} on {train_x.device}"
        )
    if y is not None:
        _check_labels(x, y, name)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}_x contains NaN or infinite values")


def _check_labels(x: Tensor, y: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless ``y`` holds integer labels for the rows of ``x``."""
    if (
        y.shape != x.shape[:1]
        or y.is_floating_point()
        or y.dtype == torch.bool
        or y.device != x.device
    ):
        raise ValueError(
            f"{name}_y must be integer labels of shape ({x.shape[0]},) on "
            f"{x.device}, got {y.dtype} of shape {tuple(y.shape)} on {y.device}"
        )


def infer_num_classes(*labels: Tensor) -> int:
    """``1 + max label`` over all given label tensors; raises ``ValueError`` on negative labels.

    This reads two integers back from the device: pass ``num_classes`` explicitly to avoid it.
    """
    lo = min(int(y.min()) for y in labels)
    if lo < 0:
        raise ValueError(f"labels must be in [0, num_classes), got a label {lo}")
    return 1 + max(int(y.max()) for y in labels)


def class_means(x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    r"""Per-class mean of the features.

        μ_c = (1 / |S_c|) Σ_{i : y_i = c} x_i

    Args:
        x: features, shape (N, D), used as given (no normalisation).
        y: integer labels, shape (N,), values in [0, num_classes).
        num_classes: C, the number of rows of the result.

    Returns:
        Shape (C, D), dtype of ``x``. A class with no sample gets a row of NaN (0 / 0), so that
        it cannot be mistaken for a class centred at the origin; :func:`ncc_predict` never
        predicts such a class.
    """
    y = y.long()
    sums = x.new_zeros(num_classes, x.shape[1]).index_add_(0, y, x)  # (C, D)
    counts = torch.bincount(y, minlength=num_classes).to(x.dtype)  # (C,)
    return sums / counts[:, None]


def ncc_predict(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, *, num_classes: int | None = None
) -> Tensor:
    r"""Nearest-class-centre labels: argmin_c ‖x − μ_c‖₂ with μ_c the train class means.

    Since ‖x − μ_c‖² = ‖x‖² − 2 xᵀμ_c + ‖μ_c‖² and ‖x‖² does not depend on c, the rule is
    argmax_c (2 xᵀμ_c − ‖μ_c‖²): one (M, D) × (D, C) product, no (M, C, D) difference tensor.

    Args:
        train_x: features that define the class means, shape (N, D), used as given.
        train_y: integer labels, shape (N,), values in [0, C).
        test_x: features to classify, shape (M, D), used as given.
        num_classes: C; 1 + max(train_y) when None (one read from the device).

    Returns:
        Predicted labels, shape (M,), int64. Ties go to the lowest class index; classes absent
        from the train split are never predicted.
    """
    check_labelled(train_x, train_y, "train")
    check_labelled(test_x, None, "test", train_x)
    if num_classes is None:
        num_classes = infer_num_classes(train_y)
    means = class_means(train_x, train_y, num_classes)  # (C, D)
    present = ~means[:, 0].isnan()  # (C,)
    means = torch.where(present[:, None], means, 0.0)
    scores = 2 * test_x @ means.T - means.square().sum(1)  # (M, C)
    return scores.masked_fill(~present, -torch.inf).argmax(1)


def ncc_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> float:
    r"""Accuracy of the nearest-class-centre (NCC) classifier, with class means from train.

        h(x) = argmin_c ‖x − μ_c‖₂,    μ_c = mean of the train features of class c

    NCC is the classifier that neural collapse makes optimal: when each class collapses to its
    mean, NCC and the best linear classifier agree (NCC is itself linear). Euclidean distance on
    the features as given: nothing is normalised or standardised, so the result depends on how
    the features are scaled per dimension (unlike the linear probe, which standardises).

    Args:
        train_x: features of the split that defines the class means, shape (N, D).
        train_y: its integer labels, shape (N,), values in [0, C).
        test_x: features to classify, shape (M, D). Pass ``train_x`` again for the NCC *train*
            accuracy of Ben-Shaul et al. (a measure of clustering / collapse).
        test_y: labels of ``test_x``, shape (M,).

    Returns:
        Fraction of ``test_x`` whose nearest class mean has its label. Ties go to the lowest
        class index.

    References:
        Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
        learning training", PNAS 2020, arXiv:2008.08186 (NC4: convergence to NCC).
        Ben-Shaul et al., "Reverse Engineering Self-Supervised Learning", NeurIPS 2023,
        arXiv:2305.15614 (NCC train / test accuracy as SSL clustering measures).
    """
    _check_labels(test_x, test_y, "test")
    pred = ncc_predict(train_x, train_y, test_x)
    return float((pred == test_y).double().mean())


def knn_classify(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    r"""Weighted k-nearest-neighbour labels on cosine similarity (the InstDisc kNN monitor).

    Rows are L2-normalised inside, so s_ij = cos(x_i, x_j). For a test point, let N_k be its k
    most similar train points; each votes for its class with weight exp(s / temperature):

        score_c = Σ_{j ∈ N_k, y_j = c} exp(s_j / temperature),    ŷ = argmax_c score_c

    The weights are computed as exp((s_j − s_max) / temperature), which rescales a row's scores
    by a positive constant: the same argmax, but no overflow for small temperatures.

    Test rows are processed ``chunk_size`` at a time, so peak memory is one
    (chunk_size, N_train) similarity matrix: 1024 × 50,000 float32 is 200 MB.

    Args:
        train_x: train features, shape (N, D); L2-normalised inside (a zero row stays zero).
        train_y: integer labels, shape (N,), values in [0, C).
        test_x: features to classify, shape (M, D); L2-normalised inside.
        k: number of neighbours, clipped to N. 20 follows solo-learn and DINO; lightly and the
            InstDisc paper use 200, which is meant for ImageNet-sized banks. With a few hundred
            to a few thousand train points (a few dozen per class), k = 200 would reach deep
            into other classes, so the small k is the sensible default here.
        temperature: T in exp(s / T). 0.1 is lightly's value (from the MoCo CIFAR demo);
            solo-learn and DINO use 0.07, the InstDisc paper's value, and the official MMCR
            monitor 0.5.
        num_classes: C; inferred as 1 + max(train_y) when None (one read from the device).
        chunk_size: test rows per similarity matrix.

    Returns:
        Predicted labels, shape (M,), int64, on the device of ``test_x``. Ties between classes
        go to the lowest class index. Which of several equally similar train points fill the
        last neighbour slots is up to ``torch.topk``.

    References:
        Wu, Xiong, Yu & Lin, "Unsupervised Feature Learning via Non-Parametric Instance
        Discrimination", CVPR 2018, arXiv:1805.01978 (weighted kNN, k = 200, T = 0.07).
        Reference code: lightly-ai/lightly@32c2b47, lightly/utils/benchmarking/knn.py,
        knn_predict (k = 200, T = 0.1); vturrisi/solo-learn@09f5f89, solo/utils/knn.py,
        WeightedKNNClassifier (k = 20, T = 0.07).
    """
    check_labelled(train_x, train_y, "train")
    check_labelled(test_x, None, "test", train_x)
    if k < 1 or temperature <= 0 or chunk_size < 1:
        raise ValueError(
            f"need k ≥ 1, temperature > 0 and chunk_size ≥ 1, got k={k}, "
            f"temperature={temperature}, chunk_size={chunk_size}"
        )
    if num_classes is None:
        num_classes = infer_num_classes(train_y)
    k = min(k, train_x.shape[0])
    train_y = train_y.long()  # scatter_add_ wants int64 indices
    train_n = F.normalize(train_x, dim=1)
    test_n = F.normalize(test_x, dim=1)
    preds = []
    for start in range(0, test_n.shape[0], chunk_size):
        sim = test_n[start : start + chunk_size] @ train_n.T  # (m, N)
        top_sim, top_idx = sim.topk(k, dim=1)  # (m, k), sorted, so column 0 is the max
        weights = ((top_sim - top_sim[:, :1]) / temperature).exp()  # (m, k)
        scores = top_sim.new_zeros(top_sim.shape[0], num_classes)  # (m, C)
        scores.scatter_add_(1, train_y[top_idx], weights)
        preds.append(scores.argmax(1))
    return torch.cat(preds)


def knn_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, **options: Any
) -> float:
    """Accuracy of :func:`knn_classify` on ``(test_x, test_y)``, a fraction in [0, 1].

    The options are forwarded as they are, with no defaults restated here, so that
    :func:`knn_classify`'s signature stays the one place the defaults are written.

    Args:
        train_x: train features, shape (N, D).
        train_y: integer labels, shape (N,).
        test_x: features to classify, shape (M, D).
        test_y: labels of ``test_x``, shape (M,).
        **options: keyword arguments of :func:`knn_classify` (``k``, ``temperature``,
            ``num_classes``, ``chunk_size``); its defaults apply to any not given.

    Returns:
        Fraction of ``test_x`` whose kNN label is its ``test_y``.
    """
    _check_labels(test_x, test_y, "test")
    pred = knn_classify(train_x, train_y, test_x, **options)
    return float((pred == test_y).double().mean())
