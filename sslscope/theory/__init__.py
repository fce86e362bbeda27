"""Theory drawn over the measurement: closed-form predictions of what training should do.

:mod:`sslscope.theory.stepwise`: linear Barlow Twins from small initialisation — Γ and its
eigenpairs, step times, trajectories of the embedding eigenvalues, the loss staircase and the
final embedding (Simon et al., ICML 2023). :mod:`sslscope.theory.kernel`: the same for a model
on fixed features, from kernel matrices alone (K_Γ = K^{1/2} Z K^{1/2}), the empirical NTK of a
network, and CKA / principal angles to compare a prediction with a learned embedding.
:mod:`sslscope.theory.ntk_experiment`: that comparison run on a wide two-layer MLP trained on
digit pairs (methods.md §1.7 item 2). :mod:`sslscope.theory.capacity`: MMCR's pretraining
percent error of random unit centroids, Monte-Carlo and its Marchenko–Pastur limit (1 − 8/(3π)
≈ 0.151 at P = D; Schaeffer et al. 2024).
"""

from sslscope.theory.capacity import (
    SQUARE_RANDOM_PPE,
    asymptotic_ppe,
    ppe_surface,
    random_centroid_ppe,
)
from sslscope.theory.kernel import (
    contrastive_kernel,
    empirical_ntk,
    kernel_embedding,
    linear_cka,
    principal_angles,
)
from sslscope.theory.ntk_experiment import NTKComparison, digits_pairs, ntk_prediction
from sslscope.theory.stepwise import (
    embedding_eigenvalues,
    final_weights,
    gradient_descent,
    loss_curve,
    pair_cross_correlation,
    rotation_residual,
    step_times,
    time_to_reach,
)

__all__ = [
    "SQUARE_RANDOM_PPE",
    "asymptotic_ppe",
    "ppe_surface",
    "random_centroid_ppe",
    "contrastive_kernel",
    "empirical_ntk",
    "kernel_embedding",
    "linear_cka",
    "principal_angles",
    "NTKComparison",
    "digits_pairs",
    "ntk_prediction",
    "embedding_eigenvalues",
    "final_weights",
    "gradient_descent",
    "loss_curve",
    "pair_cross_correlation",
    "rotation_residual",
    "step_times",
    "time_to_reach",
]
