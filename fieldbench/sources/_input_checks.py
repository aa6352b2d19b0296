"""The one place that validates user input: evaluation points, per-source vectors, sizes, numbers
and domains.

Every layer that takes points from a user (the solvers in ``physics``, the references, the
samplers here) calls :func:`as_points`, and the configuration spec and the point sampler read a
domain through :func:`as_domain`, so the same mistake gets the same message everywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["as_points", "as_float_array", "check_vectors", "check_positive", "is_number", "is_int", "as_domain",
           "domain_text"]


def as_float_array(name: str, value, shape_hint: str) -> np.ndarray:
    """``value`` as float64 with finite entries; ``shape_hint`` completes the error message."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers {shape_hint}; got {type(value).__name__}") from error
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} contains a non-finite value (NaN or inf) at index {tuple(int(i) for i in bad)}; "
            "every entry must be a finite number"
        )
    return array


def as_points(points, dim: int, *, batched: bool = False) -> np.ndarray:
    """Validate evaluation points: a float64 copy of shape (N, dim) (or, ``batched``, (B, N, dim)
    too) with finite coordinates. ``dim`` must be 2 or 3."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) not in (2, 3):
        raise ValueError(f"dim must be 2 (discs, prisms) or 3 (cuboids, spheres); got {dim!r}")
    dim = int(dim)
    expected = "(B, N, d) or (N, d)" if batched else "(N, d)"
    try:
        array = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"points must be an array of numbers of shape {expected} with d = {dim}; "
                        f"got {type(points).__name__}") from error
    if array.ndim == 1 and array.shape[0] == dim:
        raise ValueError(f"points has shape {array.shape}, a single point; pass shape (1, {dim}) (e.g. points=[[...]])")
    if array.ndim not in ((2, 3) if batched else (2,)) or array.shape[-1] != dim:
        shapes = f"(B, N, {dim}) or (N, {dim})" if batched else f"(N, {dim})"
        raise ValueError(f"points must have shape {expected} with d = {dim}, i.e. shape {shapes}; got {array.shape}")
    if not np.all(np.isfinite(array)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"points contains a non-finite value (NaN or inf) at index {index}; "
                         "every coordinate must be finite")
    return array


def check_vectors(name: str, value, dim: int | None) -> np.ndarray:
    """Per-source vectors (K, dim) (dim None: 2 or 3), as float64."""
    hint = "of shape (K, 2) for 2D or (K, 3) for 3D" if dim is None else f"of shape (K, {dim})"
    array = as_float_array(name, value, hint)
    if array.ndim == 1 and dim is not None and array.shape[0] == dim:
        raise ValueError(
            f"{name} has shape {array.shape}, a single vector; pass shape (1, {dim}) for one source "
            f"(e.g. {name}=[[...]])"
        )
    if array.ndim != 2 or array.shape[1] not in (2, 3) or (dim is not None and array.shape[1] != dim):
        raise ValueError(f"{name} must have shape {hint[9:]}; got {array.shape}")
    return array


def check_positive(name: str, array: np.ndarray) -> None:
    """Raise unless every entry is strictly positive."""
    if np.any(array <= 0):
        bad = np.argwhere(array <= 0)[0]
        raise ValueError(
            f"{name} must be strictly positive; entry {tuple(int(i) for i in bad)} is {array[tuple(bad)]!r}. "
            "Sizes are lengths: give each source a positive extent"
        )


def is_number(value) -> bool:
    """A real number, not a bool (``True`` is an int to Python, never a size or a half-width here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value) -> bool:
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_domain(name: str, domain) -> tuple[float, float]:
    """The domain as floats ``(lo, hi)``, from a half-width h (meaning ``[-h, h]^d``) or a pair
    ``(lo, hi)`` with ``lo < hi``; ``name`` is the argument that error messages name."""
    if is_number(domain):
        half = float(domain)
        if not math.isfinite(half) or half <= 0:
            raise ValueError(
                f"{name} must be a positive half-width h (the domain is [-h, h]^d) or a pair (lo, hi) "
                f"with lo < hi; got {domain!r}"
            )
        return (-half, half)
    if isinstance(domain, (str, bytes)) or not isinstance(domain, (Sequence, np.ndarray)) or len(domain) != 2:
        raise ValueError(
            f"{name} must be a positive half-width h (the domain is [-h, h]^d) or a pair (lo, hi); got {domain!r}"
        )
    lo, hi = domain
    if not (is_number(lo) and is_number(hi)) or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}=(lo, hi) must hold two finite numbers; got {domain!r}")
    if not lo < hi:
        raise ValueError(f"{name}=(lo, hi) needs lo < hi (the domain is [lo, hi]^d); got {domain!r}")
    return (float(lo), float(hi))


def domain_text(domain: tuple[float, float], dim: int) -> str:
    """``[lo, hi]^dim``, as error messages name a domain."""
    return f"[{domain[0]:g}, {domain[1]:g}]^{dim}"
