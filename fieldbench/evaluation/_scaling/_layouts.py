"""The timing configurations: M non-overlapping sources on a jittered grid, and N points at
their centres or outside every source.

M sources on a jittered grid in the unit square [-0.5, 0.5]^2 (cell h = 1/ceil(sqrt(M)); discs of
radius 0.25-0.3 h, or squares of that half side, whose centres move by at most 0.1 h: neighbours
are >= 0.8 h apart, so no two overlap and nothing is ever rejected, even at M = 1e6);
magnetisations N(0, 1). Points either at the source centres (``inside``: point i in source i mod
M, the first M exactly at the centres: the case that costs the corrected FMM its interior
correction) or uniform in the square and outside every source (``outside``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...sources import Family, Sources
from ._checks import check_count, check_family

__all__ = ["Layout", "jittered_grid", "scaling_configuration", "timing_points"]

#: Jittered-grid layout, in units of the cell size h.
_RADIUS = (0.25, 0.3)
_JITTER = 0.1


@dataclasses.dataclass(frozen=True)
class Layout:
    """M sources on the jittered grid, with the grid kept to find the one source a point can lie in."""

    sources: Sources
    cell: float  # h
    side: int  # cells per side
    owner: np.ndarray  # (side * side,) source index per cell, -1 where empty
    half: np.ndarray  # (M,) radius (disc) or half side (square)
    family: Family


def jittered_grid(count: int, family: Family, seed: int) -> Layout:
    """``count`` discs (or squares) in distinct cells of a ceil(sqrt(count))^2 grid, a function of
    (seed, count, family)."""
    rng = np.random.default_rng([seed, count, int(family)])
    side = math.ceil(math.sqrt(count))
    cell = 1.0 / side
    cells = np.sort(rng.permutation(side * side)[:count]) if count < side * side else np.arange(count)
    ix, iy = cells % side, cells // side
    jitter = rng.uniform(-_JITTER, _JITTER, (count, 2)) * cell
    centers = np.stack([-0.5 + (ix + 0.5) * cell, -0.5 + (iy + 0.5) * cell], axis=1) + jitter
    magnetisations = rng.normal(size=(count, 2))
    half = rng.uniform(*_RADIUS, count) * cell
    # a disc of radius `half` or a square of half side `half`
    sources = Sources.of(family, centers, magnetisations,
                         half if family.is_round else np.repeat(2 * half[:, None], 2, axis=1))
    owner = np.full(side * side, -1, dtype=np.int64)
    owner[cells] = np.arange(count)
    return Layout(sources, cell, side, owner, half, family)


def _inside_own_cell(layout: Layout, points: np.ndarray) -> np.ndarray:
    """Whether each point lies in (or on) the source of its grid cell: sources never leave their
    cell (half size + jitter <= 0.4 h), so that is the only one that can contain it."""
    index = np.clip(np.floor((points + 0.5) / layout.cell).astype(np.int64), 0, layout.side - 1)
    owner = layout.owner[index[:, 1] * layout.side + index[:, 0]]
    hit = owner >= 0
    source = np.where(hit, owner, 0)
    offset = points - np.asarray(layout.sources.centers)[source]
    half = layout.half[source]
    if layout.family.is_round:
        inside = np.sum(offset * offset, axis=1) <= half * half
    else:
        inside = np.max(np.abs(offset), axis=1) <= half
    return hit & inside


def timing_points(layout: Layout, count: int, inside: bool, seed: int) -> np.ndarray:
    """(count, 2) points: at the centres (``inside``; beyond M, uniform within 0.8 of each source's radius
    or half side) or uniform in the square outside every source (rejection, a few vectorised rounds)."""
    rng = np.random.default_rng([seed, count, len(layout.sources), int(inside), 7])
    sources = len(layout.sources)
    centers = np.asarray(layout.sources.centers)
    if inside:
        owner = np.arange(count) % sources
        points = centers[owner].copy()
        extra = np.arange(count) >= sources  # beyond the centres: uniform inside the sources
        if np.any(extra):
            k = int(extra.sum())
            half = layout.half[owner[extra]] * 0.8
            if layout.family.is_round:
                radius = half * np.sqrt(rng.uniform(size=k))
                angle = rng.uniform(0, 2 * np.pi, k)
                points[extra] += np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
            else:
                points[extra] += rng.uniform(-1, 1, (k, 2)) * half[:, None]
        return points
    points = rng.uniform(-0.5, 0.5, (count, 2))
    redo = _inside_own_cell(layout, points)
    while np.any(redo):  # ~30% per round: a handful of vectorised rounds
        points[redo] = rng.uniform(-0.5, 0.5, (int(redo.sum()), 2))
        redo[redo] = _inside_own_cell(layout, points[redo])
    return points


def scaling_configuration(sources: int, points: int, *, family: str | Family = "disc", points_inside: bool = False,
                          seed: int = 0) -> tuple[Sources, np.ndarray]:
    """The timing configuration: ``sources`` non-overlapping discs (or squares) on a jittered grid in
    [-0.5, 0.5]^2 (radius ~0.3 / sqrt(M)), magnetisations N(0, 1), and ``points`` (N, 2) points at
    the source centres (``points_inside``; beyond M, inside the sources) or outside every source."""
    family = check_family(family)
    sources, points = check_count("sources", sources), check_count("points", points)
    grid = jittered_grid(sources, family, seed)
    return grid.sources, timing_points(grid, points, points_inside, seed)

