"""Frozen-feature evaluation: linear probe, weighted kNN, nearest class centre, k-means, CDNV.

All are pure functions of ``(features, labels)`` tensors that run on the tensors' device and
return Python floats. Say in the log key which representation was evaluated: backbone output
``h``, a tap, or projector output ``z`` (e.g. ``h/knn_acc``). :func:`cdnv` and
:func:`collapse_metrics` measure clustering at any label level; :func:`mine_estimate`
estimates mutual information.
"""

from sslscope.evaluate.clustering import hungarian_accuracy, kmeans_clustering
from sslscope.evaluate.collapse import CDNV, cdnv, collapse_metrics
from sslscope.evaluate.mine import MineResult, mine_estimate, pca_project
from sslscope.evaluate.neighbours import (
    class_means,
    knn_accuracy,
    knn_classify,
    ncc_accuracy,
    ncc_predict,
)
from sslscope.evaluate.probes import LinearProbeResult, linear_probe

__all__ = [
    "CDNV",
    "LinearProbeResult",
    "MineResult",
    "cdnv",
    "class_means",
    "collapse_metrics",
    "hungarian_accuracy",
    "kmeans_clustering",
    "knn_accuracy",
    "knn_classify",
    "linear_probe",
    "mine_estimate",
    "ncc_accuracy",
    "ncc_predict",
    "pca_project",
]
