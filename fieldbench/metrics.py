"""The paper's error metric (Eq. 10): median relative error of potential and field, in percent.

Delta_phi = median over points of |phi_hat - phi| / |phi|, Delta_H = median of ||H_hat - H|| / ||H||.
Zero or tiny denominators: a point whose true |phi| (or ||H||) is below ``TINY`` times the median
true magnitude of the same set is EXCLUDED from that median (its relative error is meaningless)
and counted in the result, never dropped silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TINY", "relative_errors", "median_relative_error"]

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
