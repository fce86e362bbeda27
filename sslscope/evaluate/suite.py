"""The evaluation a run performs: features of train and test images, then every probe on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sslscope.data import ImageData
from sslscope.evaluate.clustering import kmeans_clustering
from sslscope.evaluate.neighbours import knn_accuracy, ncc_accuracy
from sslscope.evaluate.probes import linear_probe

# The probes every evaluation runs, in the order tables and figures show them, each with its name
# for people. Result keys are "<probe>/<metric>" ("knn/test_acc"); this is the one list of them.
PROBES: dict[str, str] = {
    "linear": "linear probe",
    "knn": "kNN",
    "ncc": "NCC",
    "cluster": "k-means",
}


@dataclass(frozen=True)
class ProbeSettings:
    """Probe options, taken from the run config (see :class:`sslscope.config.Config`)."""

    knn_k: int
    knn_temperature: float
    probe_batch_size: int  # 0: full-batch L-BFGS
    seed: int

    @classmethod
    def of(cls, cfg: Any) -> ProbeSettings:
        """The settings of a run config (any object with the four fields)."""
        return cls(cfg.knn_k, cfg.knn_temperature, cfg.probe_batch_size, cfg.seed)


@torch.no_grad()
def extract_features(
    encoder: nn.Module, images: Tensor, *, batch_size: int = 1024, device: torch.device | str,
    taps: Sequence[str] = (),
) -> dict[str, Tensor]:
    """Backbone and projector outputs of images, with the encoder in eval mode.

    Args:
        encoder: maps float images in [0, 1], (N, C, H, W), to (h, z); with ``taps``, an
            :class:`sslscope.models.Encoder` whose backbone has ``forward_features``.
        images: (N, C, H, W) on any device: uint8 (scaled to [0, 1] here) or float already in
            [0, 1] (augmented views, used as they are).
        taps: backbone taps to return as well (``Encoder.tap_names()``), from the same pass.

    Returns:
        {"h": (N, D_h), "z": (N, D_z), tap: (N, D_tap) …} float32 on ``device``. The
        encoder's train/eval mode is restored afterwards.
    """
    was_training = encoder.training
    encoder.eval()
    out: dict[str, list[Tensor]] = {name: [] for name in ("h", "z", *taps)}
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        x = x.float() if x.is_floating_point() else x.float().div_(255)
        if taps:
            h, z, tapped = encoder.forward_taps(x)
            for name in taps:
                out[name].append(tapped[name].float())
        else:
            h, z = encoder(x)
        out["h"].append(h.float())
        out["z"].append(z.float())
    encoder.train(was_training)
    return {name: torch.cat(chunks) for name, chunks in out.items()}


def probe_features(
    train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor, settings: ProbeSettings
) -> dict[str, float]:
    """Linear probe, weighted kNN, nearest class centre and k-means on one set of features.

    NCC uses class means of the train features; its train accuracy (train features against
    their own means) measures how tightly classes cluster (Ben-Shaul et al. 2023). k-means runs
    on the test features with k = number of classes, scored by Hungarian accuracy and NMI.

    Returns:
        {"linear/test_acc", "linear/train_acc", "linear/val_acc", "linear/weight_decay",
        "knn/test_acc", "ncc/test_acc", "ncc/train_acc", "cluster/test_acc", "cluster/nmi"}
        as Python floats.
    """
    batch = settings.probe_batch_size or None
    linear = linear_probe(train, train_y, test, test_y, batch_size=batch, seed=settings.seed)
    out = {f"linear/{k}": v for k, v in linear.as_dict().items()}
    out["knn/test_acc"] = knn_accuracy(
        train, train_y, test, test_y, k=settings.knn_k, temperature=settings.knn_temperature
    )
    out["ncc/test_acc"] = ncc_accuracy(train, train_y, test, test_y)
    out["ncc/train_acc"] = ncc_accuracy(train, train_y, train, train_y)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    clusters = kmeans_clustering(test, test_y, num_clusters=num_classes, seed=settings.seed)
    out.update({f"cluster/{k}": v for k, v in clusters.items()})
    return out


def evaluate_encoder(
    encoder: nn.Module, data: ImageData, settings: ProbeSettings, device: torch.device | str
) -> dict[str, float]:
    """Probe the backbone output h and the projector output z on the data set's fixed split.

    Returns:
        Flat dict keyed "<features>/<probe>/<metric>", e.g. "h/linear/test_acc".
    """
    train = extract_features(encoder, data.train_x, device=device)
    test = extract_features(encoder, data.test_x, device=device)
    return evaluate_features(train, data.train_y, test, data.test_y, settings)


def evaluate_features(
    train: dict[str, Tensor],
    train_y: Tensor,
    test: dict[str, Tensor],
    test_y: Tensor,
    settings: ProbeSettings,
) -> dict[str, float]:
    """Every probe on every representation of already extracted features.

    Args:
        train, test: {"h": (N, D_h), "z": (N, D_z)} as :func:`extract_features` returns them
            (any other keys are probed too, in order).
        train_y, test_y: int64 labels (N,); moved to the features' device.

    Returns:
        Flat dict keyed "<features>/<probe>/<metric>", e.g. "h/linear/test_acc".
    """
    results: dict[str, float] = {}
    for name, features in train.items():
        device = features.device
        probes = probe_features(features, train_y.to(device), test[name], test_y.to(device),
                                settings)
        results.update({f"{name}/{key}": value for key, value in probes.items()})
    return results


def evaluate_pixels(data: ImageData, settings: ProbeSettings, device: torch.device | str) -> dict:
    """The raw-pixel baseline: the same probes on flattened images scaled to [0, 1]."""
    train = data.train_x.to(device).flatten(1).float().div_(255)
    test = data.test_x.to(device).flatten(1).float().div_(255)
    return probe_features(
        train, data.train_y.to(device), test, data.test_y.to(device), settings
    )
