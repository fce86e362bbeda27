"""The collapse guard: a consumer that watches z for representation collapse during training.

At the probes' steps it reads the test split's z (extracted once for every consumer of the
step) and logs ``guard/z/spread``, the per-dimension std of the L2-normalised embeddings times
√D (:func:`sslscope.instruments.geometry.normalized_std`; about 1 when z spreads over the
sphere, 0 when every image maps to one point, SimSiam's collapse monitor). Below
``cfg.collapse_spread`` at ``cfg.collapse_points`` measured steps in a row, after it had been
above (:class:`CollapseWatch`), ``cfg.on_collapse`` decides: "warn" says so once on stderr
with the steps and the likely cause, "stop" ends the run as
:class:`sslscope.errors.TrainingCollapsed` (exit status 3, run.json "collapsed", the last
periodic checkpoint kept), "off" only logs.

Reference: Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021, §4.1.
"""

from __future__ import annotations

import math
import sys

from torch import Tensor

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.errors import TrainingCollapsed
from sslscope.instruments.geometry import normalized_std
from sslscope.observe import Consumer, Snapshot
from sslscope.runs import RunFiles
from sslscope.schedules import log_spaced_steps


def likely_cause(cfg: Config) -> str:
    """One clause on what usually collapses a run like ``cfg``."""
    return (f"usually a learning rate too high (now {cfg.lr:g}) or a regulariser too weak for "
            f"{cfg.method} (its variance, covariance or uniformity term, or the predictor and "
            "target network that stop a non-contrastive method from collapsing)")


class CollapseWatch:
    """The guard's rule: ``points`` measurements in a row below ``threshold`` after z spread out.

    A randomly initialised network's z is often bunched up (a spread of 0.002 at step 0 on the
    smoke config, 0.76 by step 12), so a low spread counts only once the spread has been at
    or above ``threshold`` at least once: collapse is z falling back, not a slow start.
    """

    def __init__(self, threshold: float, points: int) -> None:
        self.threshold, self.points = threshold, points
        self.spread_out = False
        self.low: list[int] = []  # the measured steps, in a row, below the threshold

    def update(self, step: int, spread: float) -> list[int] | None:
        """Record one measurement; the steps of the collapse when it is one, else None."""
        if spread >= self.threshold:
            self.spread_out, self.low = True, []
        elif self.spread_out:
            self.low.append(step)
        return list(self.low) if len(self.low) >= self.points else None


def spread_of(z: Tensor) -> float:
    """Normalised std of ``z`` (N, D) times √D: about 1 spread over the sphere, 0 collapsed."""
    return normalized_std(z) * math.sqrt(z.shape[1])


def collapse_guard(cfg: Config, data: ImageData, files: RunFiles) -> Consumer | None:
    """The guard's consumer (module docstring); None when the test split has under 2 images.

    With ``on_collapse="off"`` it still measures and logs the spread.
    """
    if data.test_x.shape[0] < 2:
        return None
    watch = CollapseWatch(cfg.collapse_spread, cfg.collapse_points)
    warned: list[bool] = []

    def consume(snapshot: Snapshot) -> dict[str, float]:
        spread = spread_of(snapshot.features("test")["z"])
        low = watch.update(snapshot.step, spread)
        if low and cfg.on_collapse != "off":
            kept = (f"the last checkpoint ({files.checkpoint}) is kept"
                    if files.checkpoint.is_file() else "no checkpoint was written yet")
            message = (f"the embeddings z collapsed: their spread (normalised std × √D) is "
                       f"{spread:.3g} < {cfg.collapse_spread:g} at the {len(low)} measured "
                       f"steps from {low[0]} to {snapshot.step}, after it had been higher; "
                       f"{likely_cause(cfg)}")
            if cfg.on_collapse == "stop":
                raise TrainingCollapsed(f"{message}; {kept}")
            if not warned:
                print(f"sslscope: warning: {message}", file=sys.stderr)
                warned.append(True)
        return {"guard/z/spread": spread}

    return Consumer("collapse", frozenset(log_spaced_steps(cfg.steps, cfg.eval_points)),
                    consume)
