"""The loop's one hook: at its observation steps, a :class:`Snapshot` goes to the consumers.

A :class:`Consumer` names the steps it wants and a function ``(Snapshot) -> dict[str, float]``;
the scalars it returns are logged to ``metrics.jsonl`` in the row of that step. Its keys carry
a prefix of its own (the probes use ``eval/``; instruments will use ``inst/``) and say which
representation they measured (``eval/h/knn/test_acc``). A consumer that keeps arrays writes
them to ``files.array(name)`` itself; its first call after a resume sees the step the run
restarts from, so it can drop what it recorded after the checkpoint.

The consumers a run feeds are built by the registry in :mod:`sslscope.consumers`; the loop
does not change when one is added.

The snapshot extracts the features of the evaluation split once, on first request, and every
consumer of that step reads the same tensors: the encoder in eval mode, float32 on the device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sslscope.data import ImageData
from sslscope.evaluate.suite import extract_features

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
        self._features: dict[tuple[str, tuple[str, ...]], dict[str, Tensor]] = {}

    def features(self, split: str, taps: Sequence[str] = ()) -> dict[str, Tensor]:
        """{"h": (N, D_h), "z": (N, D_z), tap: …} of the "train" or "test" images.

        Extracted once per split and set of taps, and shared by every consumer of the step;
        a request without taps is served by an extraction that had them (the same pass).
        """
        taps = tuple(taps)
        for (cached_split, cached_taps), features in self._features.items():
            if cached_split == split and set(taps) <= set(cached_taps):
                return features
        images = {"train": self.data.train_x, "test": self.data.test_x}[split]
        self._features[(split, taps)] = extract_features(self.parts.encoder, images,
                                                         device=self.device, taps=taps)
        return self._features[(split, taps)]

    def labels(self, split: str) -> Tensor:
        """Class labels (N,) of the "train" or "test" split, int64 on the CPU."""
        return {"train": self.data.train_y, "test": self.data.test_y}[split]


@dataclass(frozen=True)
class Consumer:
    """What one consumer wants from the loop.

    Attributes:
        name: for messages; also the stem of any array file it writes.
        steps: the steps (0 … cfg.steps) at which it is called.
        consume: ``(Snapshot) -> dict[str, float]``, the scalars to log at that step.
    """

    name: str
    steps: frozenset[int]
    consume: Callable[[Snapshot], dict[str, float]]


def observe(snapshot: Snapshot, consumers: list[Consumer]) -> dict[str, float]:
    """Hand ``snapshot`` to the consumers that asked for its step; their scalars, merged.

    Raises:
        ValueError: two consumers returned the same key.
    """
    row: dict[str, float] = {}
    for consumer in consumers:
        if snapshot.step not in consumer.steps:
            continue
        values = consumer.consume(snapshot)
        clash = row.keys() & values.keys()
        if clash:
            raise ValueError(f"consumer '{consumer.name}' logs keys another consumer logs too: "
                             f"{sorted(clash)[:3]}")
        row.update(values)
    return row
