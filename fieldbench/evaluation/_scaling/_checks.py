"""Argument checks of the scaling harness: each names the argument and the fix."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ...models import Predictor
from ...sources import Family

__all__ = ["check_count", "check_family", "check_scaling_arguments"]


def check_family(family) -> Family:
    try:
        parsed = Family.parse(family)
    except ValueError as error:
        raise ValueError(f"family must be 'disc' or 'prism'; {error}") from None
    if parsed not in (Family.DISC, Family.PRISM):
        raise ValueError(f"family must be 'disc' or 'prism' (the 2D families the FMM handles); got {family!r}")
    return parsed


def check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 1 or round(value) != value:
        raise ValueError(f"{name} must be a positive whole number (e.g. 1000 or 1e3); got {value!r}")
    return int(round(value))


def _check_sizes(sizes) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"sizes_m must be a sequence of counts, e.g. (1e2, 1e3, 1e4); got {sizes!r}")
    counts = [check_count("every entry of sizes_m", s) for s in sizes]
    if not counts:
        raise ValueError("sizes_m is empty: give at least one size")
    if any(b <= a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"sizes_m must be strictly increasing; got {counts}")
    return counts


def check_scaling_arguments(predictors, sizes_m, n_equals_m, n_fixed, m_fixed, family, points_inside, time_budget,
                            repeats, progress) -> tuple[list[int], int | None, int | None, Family]:
    """Check :func:`~fieldbench.evaluation.scaling`'s arguments (in that order: the first wrong one
    is reported); returns the sizes, ``n_fixed`` and ``m_fixed`` as counts and the parsed family."""
    if not isinstance(predictors, Mapping) or not predictors:
        raise ValueError("predictors must be a non-empty dict of name -> Predictor (e.g. scaling_predictors())")
    for name, predictor in predictors.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"predictor names must be non-empty strings; got {name!r}")
        if not isinstance(predictor, Predictor):
            raise TypeError(f"predictors[{name!r}] must be a fieldbench.models.Predictor (with encode/evaluate); "
                            f"got {type(predictor).__name__}")
    sizes = _check_sizes(sizes_m)
    if not isinstance(n_equals_m, bool):
        raise TypeError(f"n_equals_m must be True or False; got {n_equals_m!r}")
    if n_equals_m and n_fixed is not None:
        raise ValueError("n_fixed conflicts with n_equals_m=True: pass n_equals_m=False to fix N")
    if not n_equals_m and n_fixed is None:
        raise ValueError("n_equals_m=False needs n_fixed (the number of points at every M)")
    n_fixed = None if n_fixed is None else check_count("n_fixed", n_fixed)
    m_fixed = None if m_fixed is None else check_count("m_fixed", m_fixed)
    parsed_family = check_family(family)
    if not isinstance(points_inside, bool):
        raise TypeError(f"points_inside must be True or False; got {points_inside!r}")
    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float, np.integer, np.floating)) \
            or not time_budget > 0 or not math.isfinite(time_budget):
        raise ValueError(f"time_budget must be a positive number of seconds; got {time_budget!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable (or None)")
    return sizes, n_fixed, m_fixed, parsed_family
