"""The consumers of the loop's hook (:mod:`sslscope.observe`), one registry entry each.

``CONSUMERS[name](cfg, data, files)`` builds the consumer a run feeds, or returns None when the
run has nothing for it (the probes on unlabeled data, the instruments when none is asked for).
Adding a consumer is one function plus one entry here; the loop does not change.
"""

from __future__ import annotations

from collections.abc import Callable

from sslscope.anatomy import clustering
from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.evaluate.retrieval import retrieval_top1
from sslscope.evaluate.suite import ProbeSettings, evaluate_features
from sslscope.guards import collapse_guard
from sslscope.instruments.recorder import instruments
from sslscope.losses import get_method
from sslscope.observe import Consumer, Snapshot
from sslscope.runs import RunFiles
from sslscope.schedules import log_spaced_steps

PROBE_PREFIX = "eval/"  # the probes' keys in metrics.jsonl: "eval/h/knn/test_acc"


def probes(cfg: Config, data: ImageData, files: RunFiles) -> Consumer | None:
    """Linear probe, kNN, NCC and k-means on h and z of the fixed split: ``eval/...`` keys.

    At ``cfg.eval_points`` log-spaced steps, step 0 and the last step included.
    """
    if not data.num_classes:  # unlabeled data (an image folder without classes): no probes
        return None
    settings = ProbeSettings.of(cfg)

    def consume(snapshot: Snapshot) -> dict[str, float]:
        results = evaluate_features(snapshot.features("train"), snapshot.labels("train"),
                                    snapshot.features("test"), snapshot.labels("test"), settings)
        return {f"{PROBE_PREFIX}{key}": value for key, value in results.items()}

    return Consumer("probes", frozenset(log_spaced_steps(cfg.steps, cfg.eval_points)), consume)


def retrieval(cfg: Config, data: ImageData, files: RunFiles) -> Consumer | None:
    """Cross-modal methods: top-1 retrieval between the two modalities' z on the test split.

    Keys ``retrieval/z/a_to_b`` and ``retrieval/z/b_to_a`` at the probes' steps. It reads the
    test features the probes extract (z = [z_a, z_b], one half per modality): no extra pass.
    """
    if not get_method(cfg.method).cross_modal or data.test_x.shape[0] < 2:
        return None

    def consume(snapshot: Snapshot) -> dict[str, float]:
        z = snapshot.features("test")["z"]
        d = snapshot.parts.dim  # each modality's z width
        found = retrieval_top1(z[:, :d], z[:, d:])
        return {f"retrieval/z/{direction}": value for direction, value in found.items()}

    return Consumer("retrieval", frozenset(log_spaced_steps(cfg.steps, cfg.eval_points)),
                    consume)


def probe_results(row: dict[str, float]) -> dict[str, float] | None:
    """The probes' results in a logged row, or None when the probes did not run at its step.

    Keyed as :func:`sslscope.evaluate.suite.evaluate_encoder` keys them ("h/linear/test_acc").
    """
    found = {k[len(PROBE_PREFIX):]: v for k, v in row.items() if k.startswith(PROBE_PREFIX)}
    return found or None


CONSUMERS: dict[str, Callable[[Config, ImageData, RunFiles], Consumer | None]] = {
    "probes": probes,
    "instruments": instruments,
    "clustering": clustering,
    "retrieval": retrieval,
    "collapse": collapse_guard,
}


def consumers_for(cfg: Config, data: ImageData, files: RunFiles) -> list[Consumer]:
    """The consumers this run feeds, in registry order."""
    built = (make(cfg, data, files) for make in CONSUMERS.values())
    return [consumer for consumer in built if consumer is not None]
