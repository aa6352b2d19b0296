"""Neighbour search of the corrected FMM: which (point, source) pairs lie within a source's reach."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["near_pairs", "segment_min"]

#: Largest number of (point, source) candidate pairs handled at once by the neighbour search.
_PAIR_BATCH = 1 << 22


def near_pairs(points, centers, reach):
    """All pairs (point i, source k) with |points[i] - centers[k]| <= reach[k], sorted by point.

    A uniform grid (cell list) in NumPy: each source is entered in every cell its reach overlaps,
    each point looks up its own cell. Cost O(N + M + candidate pairs), i.e. O(N + M) when sources
    are spread uniformly and their reach is comparable to their spacing. Returns int64 arrays.
    """
    count, sources = len(points), len(centers)
    if count == 0 or sources == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Enter sources with a hair of margin so rounding never drops a pair on the boundary; the exact
    # distance filter below decides.
    margin = reach * (1.0 + 1e-9) + 1e-300
    lo = np.minimum(points.min(axis=0), (centers - margin[:, None]).min(axis=0))
    hi = np.maximum(points.max(axis=0), (centers + margin[:, None]).max(axis=0))
    extent = hi - lo
    budget = 2 * (count + sources) + 16
    positive = reach[reach > 0]
    cell = 2.0 * float(np.median(positive)) if positive.size else 0.0
    cell = max(cell, math.sqrt(extent[0] * extent[1] / budget), float(extent.max()) / budget)
    if not cell > 0:
        cell = 1.0
    nx, ny = (np.floor(extent / cell).astype(np.int64) + 1).tolist()

    def index(values, axis, size):
        return np.clip(np.floor((values - lo[axis]) / cell), 0, size - 1).astype(np.int64)

    ix0, ix1 = index(centers[:, 0] - margin, 0, nx), index(centers[:, 0] + margin, 0, nx)
    iy0, iy1 = index(centers[:, 1] - margin, 1, ny), index(centers[:, 1] + margin, 1, ny)
    wide = ix1 - ix0 + 1
    per_source = wide * (iy1 - iy0 + 1)
    owner = np.repeat(np.arange(sources), per_source)
    local = np.arange(owner.size) - np.repeat(np.cumsum(per_source) - per_source, per_source)
    cells = (ix0[owner] + local % wide[owner]) * ny + iy0[owner] + local // wide[owner]
    order = np.argsort(cells)
    listed = owner[order]
    # Source data in cell order, so that each point reads a contiguous run of it.
    listed_x, listed_y = centers[listed, 0], centers[listed, 1]
    listed_reach2 = reach[listed] ** 2
    starts = np.zeros(nx * ny + 1, np.int64)
    np.cumsum(np.bincount(cells, minlength=nx * ny), out=starts[1:])

    px, py = points[:, 0], points[:, 1]
    point_cells = index(px, 0, nx) * ny + index(py, 1, ny)
    first = starts[point_cells]
    candidates = starts[point_cells + 1] - first
    cumulative = np.cumsum(candidates)
    found_points, found_sources = [], []
    begin = 0
    while begin < count:
        base = cumulative[begin - 1] if begin else 0
        end = max(int(np.searchsorted(cumulative, base + _PAIR_BATCH, side="right")), begin + 1)
        counts = candidates[begin:end]
        pi = np.repeat(np.arange(begin, end), counts)
        slot = np.arange(base, base + pi.size) + np.repeat(first[begin:end] - (cumulative[begin:end] - counts), counts)
        dx = px[pi] - listed_x[slot]
        dy = py[pi] - listed_y[slot]
        keep = dx * dx + dy * dy <= listed_reach2[slot]
        found_points.append(pi[keep])
        found_sources.append(listed[slot[keep]])
        begin = end
    return np.concatenate(found_points), np.concatenate(found_sources)


def segment_min(index, values, size):
    """Minimum of values per (sorted) index, inf where an index has none."""
    out = np.full(size, np.inf)
    if index.size:
        present, start = np.unique(index, return_index=True)
        out[present] = np.minimum.reduceat(values, start)
    return out

