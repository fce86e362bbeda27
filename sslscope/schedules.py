"""Per-step schedules as arrays indexed by the global step (DINO's style), and evaluation steps."""

from __future__ import annotations

import numpy as np


def warmup_cosine(
    peak: float, steps: int, *, warmup_steps: int = 0, final_fraction: float = 0.0
) -> np.ndarray:
    r"""Linear warm-up to ``peak`` then cosine decay to ``peak · final_fraction``.

        v[t] = peak · (t + 1) / W                                            for t < W
        v[t] = f·peak + (1 − f)·peak · ½ (1 + cos(π (t − W) / (T − W − 1)))  for W ≤ t < T

    Args:
        peak: the value at the end of the warm-up.
        steps: T, the length of the array.
        warmup_steps: W; the first step already has peak / W, so no step has value 0.
        final_fraction: f; the last step has exactly f · peak.

    Returns:
        float64 array of shape (T,).
    """
    values = np.empty(steps, dtype=np.float64)
    warm = min(warmup_steps, steps)
    values[:warm] = peak * (np.arange(warm) + 1) / max(warm, 1)
    decay = steps - warm
    if decay == 1:
        values[warm:] = peak
    elif decay > 1:
        progress = np.arange(decay) / (decay - 1)
        final = peak * final_fraction
        values[warm:] = final + (peak - final) * 0.5 * (1 + np.cos(np.pi * progress))
    return values


def log_spaced_steps(total: int, points: int) -> list[int]:
    """About ``points`` distinct steps in [0, total], log-spaced, always including 0 and total.

    Learning dynamics change fastest early, so evenly spaced evaluations would miss the start.
    """
    if points <= 0:
        return [total]
    steps = np.unique(np.geomspace(1, total + 1, num=max(points, 2)).round().astype(int) - 1)
    return sorted({0, total, *steps.tolist()})
