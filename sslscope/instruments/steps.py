"""When things happen: eigenvalue emergence steps and the steps of a loss staircase.

Pure functions of logged curves (NumPy arrays), so they run on a finished run's files as well
as inside a study. From small initialisation, self-supervised objectives learn one eigen-
direction at a time (Simon et al., ICML 2023): each eigenvalue of the embedding's cross-
correlation rises from ~0 to its final value in a short burst, and the loss drops in a step.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks


def emergence_steps(steps: np.ndarray, eigvals: np.ndarray, *, fraction: float = 0.5) -> np.ndarray:
    r"""The first step at which each eigenvalue reaches ``fraction`` of its final value.

        t_j = min { t : λ_j(t) ≥ fraction · λ_j(T) }

    Args:
        steps: (T,) increasing steps at which the spectrum was measured.
        eigvals: (T, D) eigenvalues, each row in descending order (λ_j is the j-th largest
            at each step, as the instruments save them).
        fraction: the level, relative to the last row; ½ as in the stepwise paper's plots.

    Returns:
        (D,) float64: the step of each index, NaN where the final value is ≤ 0 (nothing
        emerged) or the level was already reached at the first measurement (there is no
        crossing to time: it was there from the start).
    """
    steps, eigvals = np.asarray(steps), np.asarray(eigvals, dtype=np.float64)
    if eigvals.ndim != 2 or eigvals.shape[0] != steps.shape[0] or steps.shape[0] < 2:
        raise ValueError(f"need steps (T,) and eigvals (T, D) with T ≥ 2, got {steps.shape} "
                         f"and {eigvals.shape}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    level = fraction * eigvals[-1]  # (D,)
    reached = eigvals >= level  # (T, D)
    first = reached.argmax(axis=0)  # first True per column (0 when none, excluded below)
    out = steps[first].astype(np.float64)
    out[(eigvals[-1] <= 0) | reached[0]] = np.nan
    return out


def staircase_steps(steps: np.ndarray, loss: np.ndarray, *, prominence: float = 0.05,
                    window: int = 3) -> np.ndarray:
    r"""The steps at which a loss curve drops fastest per unit of log-time: its staircase.

    The drop rate r(t) = −dL / d log t is computed between consecutive points (smoothed with a
    centred moving average of ``window`` points); each step of the staircase is a peak of r
    whose prominence is at least ``prominence`` of the largest rate.

    Args:
        steps: (T,) increasing positive steps (log-time needs t > 0; pass step + 1 for a run
            that starts at 0).
        loss: (T,) the loss at those steps.
        prominence: minimum peak prominence relative to the highest rate.
        window: points of the moving average (1: none).

    Returns:
        (S,) the steps (midpoints in log-time of the intervals) where the loss drops, in order.
    """
    steps, loss = np.asarray(steps, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != loss.shape or steps.size < 3 or (steps <= 0).any():
        raise ValueError("need positive steps (T,) and loss (T,) with T ≥ 3")
    log_t = np.log(steps)
    rate = -np.diff(loss) / np.diff(log_t)  # (T − 1,)
    if window > 1:
        rate = np.convolve(rate, np.ones(window) / window, mode="same")
    top = rate.max()
    if not np.isfinite(top) or top <= 0:
        return np.zeros(0)
    peaks, _ = find_peaks(np.concatenate([[0.0], rate, [0.0]]), prominence=prominence * top)
    mid = np.exp((log_t[:-1] + log_t[1:]) / 2)  # (T − 1,)
    return mid[peaks - 1]
