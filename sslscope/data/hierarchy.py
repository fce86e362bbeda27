"""Superclasses: a coarser labelling of a data set's classes, where the data set has one.

``SUPERCLASSES[dataset]`` maps each class index to its superclass and names the superclasses.
:func:`superclass_labels` applies it. The label-level measures of
:mod:`sslscope.evaluate.collapse` use it for the paper's third level (Ben-Shaul et al. 2023
compare the 100 CIFAR-100 classes with its 20 superclasses).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Hierarchy:
    """A fine → coarse map.

    Attributes:
        coarse_of: superclass index of each class, in class order (length K).
        names: one name per superclass.
        source: where the grouping comes from.
    """

    coarse_of: tuple[int, ...]
    names: tuple[str, ...]
    source: str


SUPERCLASSES: dict[str, Hierarchy] = {
    # The `coarse_labels` of the CIFAR-100 pickle, fine label → coarse label (verified identical
    # in many repositories; methods.md §3). The names are the meta file's coarse_label_names.
    "cifar100": Hierarchy(
        (4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
         6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
         5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
         10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
         16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13),
        ("aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
         "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
         "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
         "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
         "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"),
        "CIFAR-100's own 20 superclasses (Krizhevsky 2009)",
    ),
    # Digits have no published hierarchy. Ours groups them by the strokes of their usual
    # handwritten form, a grouping made by eye and not from the data, as CIFAR-100's is
    # semantic: a closed loop (0, 6, 8, 9), mainly straight strokes (1, 4, 7), open curves
    # (2, 3, 5). Any data-derived grouping (e.g. clustering the class means of pixels) would
    # favour the layers nearest the pixels, which is what the level is meant to test.
    "digits": Hierarchy(
        (0, 1, 2, 2, 1, 2, 0, 1, 0, 0),
        ("closed loop", "straight strokes", "open curves"),
        "sslscope's grouping by stroke shape (no published digits hierarchy exists)",
    ),
}


def superclass_labels(dataset: str, labels: Tensor) -> Tensor | None:
    """The superclass of each label, or None when the data set has no hierarchy.

    Args:
        dataset: registry name (``ImageData.name``).
        labels: (N,) int64 class labels.

    Returns:
        (N,) int64 superclass labels on the labels' device, or None.
    """
    hierarchy = SUPERCLASSES.get(dataset)
    if hierarchy is None:
        return None
    return torch.tensor(hierarchy.coarse_of, dtype=torch.int64, device=labels.device)[labels]
