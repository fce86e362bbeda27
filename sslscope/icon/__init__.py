"""I-Con: representation learning as matching neighbour distributions.

A method is a pair of row-stochastic kernels over a batch, ``p_sup[i, j] = p(j|i)`` (what the
supervision says i's neighbours are) and ``log_q[i, j] = log q(j|i)`` (what the embeddings say),
and a divergence between their rows. SimCLR, SupCon, CLIP, cross-entropy, label smoothing,
SNE and t-SNE are instances; :mod:`sslscope.icon.table` checks each one numerically
(``python -m sslscope.icon.table`` prints the table; it is not imported here, so that
``-m`` runs it cleanly).

    p_sup = augmentation_pairs(index)                 # supervisory.py
    log_q = gaussian_cosine(z, sigma=0.5)             # learned.py
    loss = icon_loss(p_sup, log_q, alpha_p=0.2, alpha_q=0.2)   # divergence.py, debiasing.py

References:
    Alshammari, Hershey, Feldmann, Freeman & Hamilton, "I-Con: A Unifying Framework for
    Representation Learning", ICLR 2025, arXiv:2504.16929. Reference code (read, not copied):
    ShadeAlsha/ICon@afbf34f3.
"""

from sslscope.icon.debiasing import debias, debias_log
from sslscope.icon.divergence import (
    DIVERGENCES,
    icon_cross_entropy,
    icon_kl,
    icon_loss,
    icon_reverse_kl,
    row_entropy,
)
from sslscope.icon.learned import (
    class_prototypes,
    cluster_kernel,
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
    knn_graph,
    knn_walks,
    one_hot_labels,
    same_label,
)

__all__ = [
    "DIVERGENCES",
    "augmentation_pairs",
    "class_prototypes",
    "cluster_kernel",
    "cross_modal_gaussian_cosine",
    "cross_modal_pairs",
    "debias",
    "debias_log",
    "gaussian_affinities",
    "gaussian_cosine",
    "gaussian_distance",
    "icon_cross_entropy",
    "icon_kl",
    "icon_loss",
    "icon_reverse_kl",
    "knn_graph",
    "knn_walks",
    "one_hot_labels",
    "pairwise_squared_distances",
    "row_entropy",
    "same_label",
    "student_t",
]
