"""Instruments: pure functions that measure embeddings, and their recorder during training.

    from sslscope.instruments import eigenvalues, effective_rank, rankme
    eigvals = eigenvalues(z)                 # (D,) float64, descending
    effective_rank(eigvals), rankme(z)       # floats in [1, D]

:data:`INSTRUMENTS` (``sslscope.instruments.measures``) maps each name of ``--instruments`` to
a function of the fixed instrument batch's two views (``capacity``: of all K views, MMCR's
centroid nuclear norm and PPE, :mod:`sslscope.instruments.capacity`);
:mod:`sslscope.instruments.recorder` runs them during training. Say in every log key or
caption which representation went in: h or z.
"""

from sslscope.instruments.capacity import capacity_bound, centroid_capacity
from sslscope.instruments.geometry import alignment, normalized_std, uniformity
from sslscope.instruments.measures import INSTRUMENTS, Measurement, ViewPair
from sslscope.instruments.spectrum import (
    cross_correlation_eigenvalues,
    effective_rank,
    eigenvalues,
    rankme,
)
from sslscope.instruments.steps import emergence_steps, ordered_emergences, staircase_steps

__all__ = [
    "INSTRUMENTS",
    "Measurement",
    "ViewPair",
    "alignment",
    "capacity_bound",
    "centroid_capacity",
    "cross_correlation_eigenvalues",
    "effective_rank",
    "eigenvalues",
    "emergence_steps",
    "ordered_emergences",
    "normalized_std",
    "rankme",
    "staircase_steps",
    "uniformity",
]
