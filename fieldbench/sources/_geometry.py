"""Where points sit relative to sources: the signed, size-normalised distance to their boundaries.

The evaluator bins errors by it (paper Fig. 5b) and the two-stage recipe weights training points by
it; both read this one definition.
"""

from __future__ import annotations

import numpy as np

from ..families import per_family

__all__ = ["boundary_distance"]


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
