"""The paper's error metric (Eq. 10): median relative error of potential and field, in percent.

Delta_phi = median over points of |phi_hat - phi| / |phi|, Delta_H = median of ||H_hat - H|| / ||H||.
The paper's public code scores a second reading, the global relative L2 error
||target - pred|| / ||target|| over all points of a set (:func:`relative_l2_error`); the suite
reports both. Zero or tiny denominators: a point whose true |phi| (or ||H||) is below ``TINY`` times the median
true magnitude of the same set is EXCLUDED from that median (its relative error is meaningless)
and counted in the result, never dropped silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TINY", "relative_errors", "median_relative_error", "relative_l2_error"]

TINY = 1e-9


def relative_errors(predicted, target, *, vector: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-point relative errors and a mask of points with a usable denominator (both flat)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if vector:
        error = np.linalg.norm(predicted - target, axis=-1).ravel()
        scale = np.linalg.norm(target, axis=-1).ravel()
    else:
        error = np.abs(predicted - target).ravel()
        scale = np.abs(target).ravel()
    usable = scale > TINY * np.median(scale) if scale.size else np.zeros(0, bool)
    return np.where(usable, error / np.where(usable, scale, 1.0), np.nan), usable


def median_relative_error(predicted, target, *, vector: bool) -> tuple[float, int]:
    """(median relative error in percent, number of points excluded for a tiny denominator)."""
    errors, usable = relative_errors(predicted, target, vector=vector)
    if not usable.any():
        return float("nan"), int(errors.size)
    return 100.0 * float(np.median(errors[usable])), int(np.count_nonzero(~usable))


def relative_l2_error(predicted, target) -> float:
    """Global relative L2 error in percent: 100 ||predicted - target|| / ||target|| over every value
    (scalars or vectors alike), the metric of the paper's public code. NaN for an all-zero target."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    norm = float(np.linalg.norm(target))
    return 100.0 * float(np.linalg.norm(predicted - target)) / norm if norm > 0 else float("nan")
