"""Geometric relations to sources: the signed, size-normalised distance of points to the source
boundaries, and which sources of a collection overlap (interiors intersect).

The evaluator bins errors by the distance (paper Fig. 5b) and the two-stage recipe weights training
points by it; both read this one definition. Both relations ask each family
(:mod:`fieldbench.families`) for its geometry.
"""

from __future__ import annotations

import numpy as np

from ..families import overlap_table, per_family
from ._sources import Sources

__all__ = ["boundary_distance", "pairwise_overlaps"]


def boundary_distance(family, centers, sizes, mask, points) -> np.ndarray:
    """Signed, size-normalised distance of each point to the sources (paper Fig. 5b's axis).

    Per source k, s_k = (distance to its boundary) / (its size), negative inside it. The result is
    min_k s_k: outside every source, the distance to the nearest boundary; inside at least one
    source (overlaps included), minus the depth inside the source that holds it deepest. So the
    sign says exactly "inside at least one source". family, mask (S, K); centers, sizes (S, K, d);
    points (S, N, d) -> (S, N)."""
    d = points[:, :, None, :] - centers[:, None, :, :]
    sizes_b = sizes[:, None, :, :]
    distance = per_family(np.asarray(family)[:, None, :], lambda f: f.signed_distance(d, sizes_b),
                          np.zeros(d.shape[:-1]))
    signed = distance / np.max(sizes, axis=-1)[:, None, :]
    signed = np.where(mask[:, None, :], signed, np.inf)
    return np.min(signed, axis=-1)


def pairwise_overlaps(sources: Sources) -> np.ndarray:
    """Symmetric (K, K) bool: whether the interiors of sources i and j intersect (diagonal False).

    Exact for every family pair (each family's ``overlaps``, ``fieldbench.families``: disc/sphere:
    distance of centres < r1 + r2; prism/cuboid: the axis-aligned open intervals overlap on every
    axis; round with box: distance from the round centre to the box < r). Touching sources do not
    overlap.
    """
    if not isinstance(sources, Sources):
        raise TypeError(f"sources must be a fieldbench.Sources; got {type(sources).__name__}")
    family = np.asarray(sources.family)
    centers = np.asarray(sources.centers, dtype=np.float64)
    sizes = np.asarray(sources.sizes, dtype=np.float64)
    table = overlap_table(family, centers, sizes, family, centers, sizes)
    np.fill_diagonal(table, False)
    return table
