"""The loop's one hook: at each evaluation step, a :class:`Snapshot` goes to every consumer.

A consumer is a function ``(Snapshot) -> dict[str, float]``; the scalars it returns are logged
to ``metrics.jsonl`` in the evaluation row of that step. Its keys carry a prefix of its own
(the probes use ``eval/``; instruments will use ``inst/``) and say which representation they
measured (``eval/h/knn/test_acc``).

``CONSUMERS[name](cfg, data)`` builds a consumer for a run, or returns None when the run has
nothing for it (the probes on unlabeled data). Adding a consumer is one function plus one entry
here; the loop does not change. The probes are the first consumer.

The snapshot extracts the features of the evaluation split once, on first request, and every
consumer reads the same tensors: the encoder in eval mode, float32 on the run's device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.evaluate.suite import ProbeSettings, evaluate_features, extract_features

if TYPE_CHECKING:
    from sslscope.parts import Parts


class Snapshot:
    """A run at one evaluation step, as consumers see it. Consumers must not change the parts.

    Attributes:
        step: optimizer steps taken so far (0: the initialisation).
        parts: the run's networks (:class:`sslscope.parts.Parts`); modules may be in train mode
            and a consumer that runs them puts them back as it found them.
        data: the run's data set.
        device: where the parts live.
    """

    def __init__(self, step: int, parts: Parts, data: ImageData, device: torch.device) -> None:
        self.step, self.parts, self.data, self.device = step, parts, data, device
        self._features: dict[str, dict[str, Tensor]] = {}

    def features(self, split: str) -> dict[str, Tensor]:
        """{"h": (N, D_h), "z": (N, D_z)} of the "train" or "test" images, extracted once."""
        if split not in self._features:
            images = {"train": self.data.train_x, "test": self.data.test_x}[split]
            self._features[split] = extract_features(self.parts.encoder, images,
                                                     device=self.device)
        return self._features[split]

    def labels(self, split: str) -> Tensor:
        """Class labels (N,) of the "train" or "test" split, int64 on the CPU."""
        return {"train": self.data.train_y, "test": self.data.test_y}[split]


Consumer = Callable[[Snapshot], dict[str, float]]


def probes(cfg: Config, data: ImageData) -> Consumer | None:
    """Linear probe, kNN, NCC and k-means on h and z of the fixed split: ``eval/...`` keys."""
    if not data.num_classes:  # unlabeled data (an image folder without classes): no probes
        return None
    settings = ProbeSettings.of(cfg)

    def consume(snapshot: Snapshot) -> dict[str, float]:
        results = evaluate_features(snapshot.features("train"), snapshot.labels("train"),
                                    snapshot.features("test"), snapshot.labels("test"), settings)
        return {f"eval/{key}": value for key, value in results.items()}

    return consume


CONSUMERS: dict[str, Callable[[Config, ImageData], Consumer | None]] = {
    "probes": probes,
}


def consumers_for(cfg: Config, data: ImageData) -> list[Consumer]:
    """The consumers this run feeds, in registry order."""
    built = (make(cfg, data) for make in CONSUMERS.values())
    return [consumer for consumer in built if consumer is not None]


def observe(snapshot: Snapshot, consumers: list[Consumer]) -> dict[str, float]:
    """Hand ``snapshot`` to every consumer; their scalars merged (a repeated key is an error)."""
    row: dict[str, float] = {}
    for consumer in consumers:
        values = consumer(snapshot)
        clash = row.keys() & values.keys()
        if clash:
            raise ValueError(f"two consumers log the same keys: {sorted(clash)[:3]}")
        row.update(values)
    return row
