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
    r"""When each eigenvalue first reaches ``fraction`` of its final value.

        t_j = min { t : λ_j(t) ≥ fraction · λ_j(T) },   linearly interpolated between the
        measurement before and the first one at or above the level

    Args:
        steps: (T,) increasing steps at which the spectrum was measured.
        eigvals: (T, D) eigenvalues, each row in descending order (λ_j is the j-th largest
            at each step, as the instruments save them).
        fraction: the level, relative to the last row; ½ as in the stepwise paper's plots.

    Returns:
        (D,) float64: the (fractional) step of each index, NaN where the final value is ≤ 0 (nothing
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
    before = np.maximum(first - 1, 0)
    columns = np.arange(eigvals.shape[1])
    e0, e1 = eigvals[before, columns], eigvals[first, columns]
    t0, t1 = steps[before].astype(np.float64), steps[first].astype(np.float64)
    # The measurements are log-spaced, so late crossings fall between points far apart: the
    # interpolation keeps the step time from snapping to the next measurement.
    weight = np.divide(level - e0, e1 - e0, out=np.ones_like(e0), where=e1 > e0)
    out = t0 + np.clip(weight, 0, 1) * (t1 - t0)
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


def ordered_emergences(steps: np.ndarray, eigvals: np.ndarray, *, floor: float = 0.01,
                       separation: float = 1.05) -> np.ndarray:
    r"""The half-crossing steps of the leading eigenvalues that emerged one after another.

    Mode j counts while (i) its final value is at least ``floor`` × the largest final value
    (it emerged at all: a direction still at its small-init size is orders of magnitude below)
    and (ii) its half-crossing (:func:`emergence_steps`) comes at least ``separation`` times
    later than mode j − 1's (a separate step, on the log-time axis the staircase lives on). The
    count stops at the first mode that fails either, so the result is the staircase's steps.

    Args:
        steps: (T,) increasing instrument steps.
        eigvals: (T, D) eigenvalues, each row descending.
        floor: the emerged-at-all threshold, relative to the largest final eigenvalue.
        separation: the least ratio between consecutive step times (> 1).

    Returns:
        (k,) float64 strictly increasing steps, k ≥ 0 (mode 1 alone counts when it crossed; a
        mode already above half at the first measurement ends the staircase).
    """
    if separation <= 1:
        raise ValueError(f"separation must exceed 1, got {separation}")
    eigvals = np.asarray(eigvals, dtype=np.float64)
    crossed = emergence_steps(steps, eigvals)
    final = eigvals[-1]
    out: list[float] = []
    for j in range(final.size):
        if not (final[j] >= floor * final.max() and np.isfinite(crossed[j])):
            break
        if out and crossed[j] < separation * max(out[-1], 1.0):
            break
        out.append(float(crossed[j]))
    return np.asarray(out)
