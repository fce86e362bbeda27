"""Frozen-feature evaluation: linear probe, weighted kNN, nearest class centre, k-means.

All are pure functions of ``(features, labels)`` tensors that run on the tensors' device and
return accuracies as Python floats in [0, 1]. Say in the log key which representation was
evaluated: backbone output ``h`` or projector output ``z`` (e.g. ``h/knn_acc``).
"""

from sslscope.evaluate.clustering import hungarian_accuracy, kmeans_clustering
from sslscope.evaluate.neighbours import (
    class_means,
    knn_accuracy,
    knn_classify,
    ncc_accuracy,
    ncc_predict,
)
from sslscope.evaluate.probes import LinearProbeResult, linear_probe

__all__ = [
    "LinearProbeResult",
    "class_means",
    "hungarian_accuracy",
    "kmeans_clustering",
    "knn_accuracy",
    "knn_classify",
    "linear_probe",
    "ncc_accuracy",
    "ncc_predict",
]
