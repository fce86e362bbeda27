"""The project's one stratified split, used wherever sslscope itself holds data out.

The linear probe's validation split (:func:`sslscope.evaluate.linear_probe`) and the image
folder's train/test split (:func:`sslscope.data.load_image_folder`) both call
:func:`stratified_split`. The bundled digits data set is the exception: its fixed 1,347/450
split is scikit-learn's (see :mod:`sslscope.data.digits`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded stratified split of row indices into (kept, held out), both int64.

    Each class with n members sends ⌊fraction · n + 0.5⌋ of them (round half up) to the held-out
    part, but always keeps at least one, so a class with a single member is never held out.
    fraction · n is taken in float32, so a product that is a half only up to double rounding
    (0.29 · 50) also rounds up.
    Within each class the members are shuffled by one ``torch.randperm`` drawn from a CPU
    generator seeded with ``seed``, so a seed gives the same split on every device. Both parts
    are grouped by class in ascending label order and shuffled within each class; sort them if
    the order matters. Nothing held out (e.g. ``fraction=0``) is not an error: the second part
    is then empty, and a caller that needs it non-empty checks.

    Args:
        labels: integer labels, shape (N,), values ≥ 0, on any device.
        fraction: share of each class to hold out, in [0, 1].
        seed: seed of the permutation; the same seed and labels give the same split.

    Returns:
        (kept indices, held-out indices), int64 on the device of ``labels``; together they are
        a permutation of 0..N-1.

    Raises:
        ValueError: ``labels`` not a 1-D integer tensor, or ``fraction`` outside [0, 1].
    """
    if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer tensor, got {labels.dtype} of shape "
            f"{tuple(labels.shape)}"
        )
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    y = labels.cpu()
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(y.numel(), generator=gen)
    order = perm[torch.sort(y[perm], stable=True).indices]  # grouped by class, shuffled within
    counts = torch.bincount(y)
    starts = torch.cumsum(counts, 0) - counts
    sorted_labels = y[order]
    rank = torch.arange(order.numel()) - starts[sorted_labels]  # position within its class
    # floor(x + 0.5), not torch.round (half to even): the probe's validation splits, and so its
    # published accuracies, were drawn with this rounding.
    n_held = torch.minimum(torch.floor(fraction * counts + 0.5).long(), counts - 1)
    is_held = rank < n_held[sorted_labels]
    return order[~is_held].to(labels.device), order[is_held].to(labels.device)
