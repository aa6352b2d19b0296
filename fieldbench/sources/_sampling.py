"""Seeded samplers of source configurations and evaluation points.

Everything here is driven by a NumPy :class:`numpy.random.Generator` passed in by the caller
(``np.random.default_rng(seed)``); nothing reads global random state. The same spec and the same
generator state always give the same output, because every function consumes the generator in a
fixed, documented order (see :func:`sample_sources` and :func:`sample_points`).

Conventions shared by every function:

- **domain**: either a half-width ``h > 0``, meaning the square/cube ``[-h, h]^d`` centred at the
  origin, or a pair ``(lo, hi)`` with ``lo < hi``, meaning ``[lo, hi]^d``. The domain bounds the
  source CENTRES (and evaluation points); a source near the edge may stick out of it.
- **size**: for discs and spheres the RADIUS range ``(lo, hi)``; for prisms and cuboids the FULL
  side-length range ``(lo, hi)`` (not half-widths). ``lo == hi`` fixes the size. The resulting
  :class:`Sources` store full extents as always (diameters for round families).
- **overlap** means the INTERIORS intersect: two sources that only touch do not overlap.
"""

from __future__ import annotations

import numpy as np

from ..families import overlap_table, per_family
from ._configuration import ConfigurationSpec
from ._input_checks import as_domain, domain_text, is_int
from ._sources import Sources

__all__ = [
    "sample_sources",
    "sample_configurations",
    "sample_points",
]

_POINT_METHODS = ("uniform", "grid")
# Candidates drawn per block during rejection sampling. Part of the generator-consumption order:
# changing it changes which configurations a given seed produces.
_CHUNK = 32


# -- argument checks -------------------------------------------------------------------------------
def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)); "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_dim(dim) -> int:
    if not is_int(dim) or int(dim) not in (2, 3):
        raise ValueError(f"dim must be 2 (discs, prisms) or 3 (cuboids, spheres); got {dim!r}")
    return int(dim)


# -- sampling sources ------------------------------------------------------------------------------
def _draw_candidates(spec: ConfigurationSpec, rng: np.random.Generator, count: int):
    """Families, full sizes and unit-cube variates for `count` candidate sources.

    Consumption order: family indices (only when several families), size variates (count, d),
    position variates (count, d) in [0, 1).
    """
    dim = spec.dim
    codes = np.array([int(f) for f in spec.families], dtype=np.int8)
    if len(codes) > 1:
        family = codes[rng.integers(0, len(codes), size=count)]
    else:
        family = np.full(count, codes[0], dtype=np.int8)
    lo, hi = spec.size
    draws = rng.uniform(lo, hi, size=(count, dim)) if hi > lo else np.full((count, dim), lo)
    if hi > lo:
        draws = np.minimum(draws, hi)  # guard against rounding above hi
    sizes = per_family(family[:, None], lambda f: f.sizes_from_draws(draws, spec.aspect), draws)
    unit = rng.random(size=(count, dim))
    return family, sizes, unit


def _place_uniform(spec: ConfigurationSpec, unit: np.ndarray) -> np.ndarray:
    """Centres from unit-cube variates: uniform in the domain, or normal (``centres="normal"``)."""
    lo, hi = spec.domain
    if spec.centres == "normal":
        from scipy.special import ndtri  # a dependency of jax

        return (lo + hi) / 2 + (hi - lo) / 6 * ndtri(np.clip(unit, 1e-300, None))
    return np.clip(lo + unit * (hi - lo), lo, hi)


def _not_placed_error(spec: ConfigurationSpec, count: int, best: int) -> ValueError:
    if spec.overlap == "none":
        advice = ("the request is impossible or too unlikely by rejection sampling: reduce sources, reduce "
                  "size, enlarge domain, or use overlap='allowed'")
        what = f"{count} non-overlapping sources"
    else:
        advice = "this should not happen for valid specs; enlarge max_attempts or use overlap='allowed'"
        what = f"{count} sources that each overlap another"
    return ValueError(
        f"could not place {what} ({'/'.join(f.name.lower() for f in spec.families)}, size {spec.size}) with "
        f"centres in {domain_text(spec.domain, spec.dim)} after {spec.max_restarts} restart(s) of up to "
        f"{spec.max_attempts} attempts per source (at most {best} placed); {advice}"
    )


def _sample_none(spec, rng, count):
    best = 0
    for _ in range(spec.max_restarts):
        family = np.zeros(0, dtype=np.int8)
        centers = np.zeros((0, spec.dim))
        sizes = np.zeros((0, spec.dim))
        for _k in range(count):
            placed = False
            tried = 0
            while tried < spec.max_attempts and not placed:
                block = min(_CHUNK, spec.max_attempts - tried)
                tried += block
                cand_family, cand_sizes, unit = _draw_candidates(spec, rng, block)
                cand_centers = _place_uniform(spec, unit)
                clash = overlap_table(cand_family, cand_centers, cand_sizes, family, centers, sizes).any(axis=1)
                free = np.flatnonzero(~clash)
                if free.size:
                    i = free[0]
                    family = np.append(family, cand_family[i])
                    centers = np.vstack([centers, cand_centers[i]])
                    sizes = np.vstack([sizes, cand_sizes[i]])
                    placed = True
            if not placed:
                break
        best = max(best, len(family))
        if len(family) == count:
            return family, centers, sizes
    raise _not_placed_error(spec, count, best)


def _sample_forced(spec, rng, count):
    lo_dom, hi_dom = spec.domain
    family, sizes, unit = _draw_candidates(spec, rng, 1)
    centers = _place_uniform(spec, unit)
    for _k in range(1, count):
        anchor = int(rng.integers(0, len(family)))
        placed = False
        tried = 0
        while tried < spec.max_attempts and not placed:
            block = min(_CHUNK, spec.max_attempts - tried)
            tried += block
            cand_family, cand_sizes, unit = _draw_candidates(spec, rng, block)
            # Any overlap needs |dc| < half_anchor + half_new on every axis: draw the centre uniformly
            # in that box, then test exactly. Uniform centres keep to the domain (which holds the
            # anchor, so the box meets it); normal ones are unbounded, and their anchor may lie outside.
            reach = sizes[anchor] / 2 + cand_sizes / 2
            low, high = centers[anchor] - reach, centers[anchor] + reach
            if spec.centres == "uniform":
                low, high = np.maximum(lo_dom, low), np.minimum(hi_dom, high)
                cand_centers = np.clip(low + unit * (high - low), lo_dom, hi_dom)
            else:
                cand_centers = low + unit * (high - low)
            hits = overlap_table(cand_family, cand_centers, cand_sizes,
                                  family[anchor:anchor + 1], centers[anchor:anchor + 1], sizes[anchor:anchor + 1])[:, 0]
            good = np.flatnonzero(hits)
            if good.size:
                i = good[0]
                family = np.append(family, cand_family[i])
                centers = np.vstack([centers, cand_centers[i]])
                sizes = np.vstack([sizes, cand_sizes[i]])
                placed = True
        if not placed:
            raise _not_placed_error(spec, count, len(family))
    return family, centers, sizes


def sample_sources(spec: ConfigurationSpec, rng: np.random.Generator) -> Sources:
    """Draw the sources of one sample according to ``spec``.

    Args:
      spec: a :class:`ConfigurationSpec`.
      rng: a ``numpy.random.Generator``; it is advanced.

    Returns:
      a :class:`Sources` of K sources (K within ``spec.sources``), dimension ``spec.dim``; sizes are
      full extents (diameters for discs/spheres), magnetisations in A/m.

    The generator is consumed in a fixed order, so the same spec and generator state give the same
    sample: (1) K, one ``integers`` draw, only when ``k_min < k_max``; (2) the geometry, in blocks
    of candidates, each block drawing family indices (only with several families), size variates (n,
    d) and position variates (n, d): ``"allowed"`` (and ``"none"`` when K = 1) draws one block of K;
    ``"none"`` draws blocks of up to 32 per source until one fits (restarting the sample if a source
    does not fit within ``max_attempts``); ``"forced"`` draws one candidate for the first source,
    then per source one anchor index and blocks of up to 32 until one overlaps the anchor; (3) the
    magnetisations, one ``normal`` draw of shape (K, d).

    Raises:
      ValueError: when ``overlap="none"`` cannot place the sources within the attempt budget (the
        message says what to change).
    """
    if not isinstance(spec, ConfigurationSpec):
        raise TypeError(f"spec must be a ConfigurationSpec; got {type(spec).__name__}")
    rng = _check_rng(rng)
    k_min, k_max = spec.sources
    count = int(rng.integers(k_min, k_max + 1)) if k_max > k_min else k_min
    if spec.overlap == "allowed" or (spec.overlap == "none" and count == 1):
        # A lone source cannot overlap anything: no rejection step, one block of K candidates.
        family, sizes, unit = _draw_candidates(spec, rng, count)
        centers = _place_uniform(spec, unit)
    elif spec.overlap == "none":
        family, centers, sizes = _sample_none(spec, rng, count)
    else:
        family, centers, sizes = _sample_forced(spec, rng, count)
    magnetisations = rng.normal(0.0, spec.magnetisation, size=(count, spec.dim))
    return Sources(
        family=np.asarray(family, dtype=np.int8),
        centers=np.asarray(centers, dtype=np.float64).reshape(count, spec.dim),
        magnetisations=magnetisations,
        sizes=np.asarray(sizes, dtype=np.float64).reshape(count, spec.dim),
    )


def sample_configurations(spec: ConfigurationSpec, count: int, rng: np.random.Generator) -> list[Sources]:
    """``count`` independent samples, drawn one after another from ``rng`` with :func:`sample_sources`.

    Sample i depends on the generator state left by samples 0..i-1, so the list as a whole is
    reproducible from the seed; for samples reproducible on their own, give each its own generator
    (e.g. ``rng.spawn(count)``).
    """
    if not is_int(count) or count < 0:
        raise ValueError(f"count must be a non-negative int (the number of samples); got {count!r}")
    if not isinstance(spec, ConfigurationSpec):
        raise TypeError(f"spec must be a ConfigurationSpec; got {type(spec).__name__}")
    rng = _check_rng(rng)
    return [sample_sources(spec, rng) for _ in range(int(count))]


# -- evaluation points -----------------------------------------------------------------------------
def _grid_side(count: int, dim: int) -> int:
    side = int(round(count ** (1.0 / dim)))
    while side**dim > count:
        side -= 1
    while (side + 1) ** dim <= count:
        side += 1
    if side**dim == count:
        return side
    raise ValueError(
        f"method='grid' needs count = n^{dim} points (a regular n x ... x n grid); {count} is not a perfect "
        f"{'square' if dim == 2 else 'cube'}: use e.g. {side**dim} (n={side}) or {(side + 1) ** dim} (n={side + 1})"
    )


def sample_points(
    rng: np.random.Generator | None,
    count: int,
    *,
    dim: int,
    domain: float | tuple[float, float],
    method: str = "uniform",
    exclude: Sources | None = None,
) -> np.ndarray:
    """Evaluation points in the domain, (count, dim) float64.

    Args:
      rng: a ``numpy.random.Generator`` (advanced by ``"uniform"``; unused by ``"grid"``, where it may
        be None).
      count: N, the number of points.
      dim: 2 or 3.
      domain: half-width h for ``[-h, h]^dim``, or a pair ``(lo, hi)`` for ``[lo, hi]^dim``.
      method: ``"uniform"`` (independent uniform points) or ``"grid"`` (a regular cell-centred grid:
        count must be n^dim; with spacing s = (hi - lo) / n the coordinates are lo + (i + 1/2) s,
        i = 0..n-1, so no point lies on the domain boundary; points are in C order of an
        ``indexing="ij"`` mesh, i.e. ``points.reshape(n, ..., n, dim)[i, j, ...]`` has coordinate
        index i along x, j along y, ...).
      exclude: optional :class:`Sources`; no returned point lies inside or on the boundary of any of
        them (so every point is strictly outside, away from surface and corner singularities).
        ``"uniform"`` redraws until N points qualify; ``"grid"`` raises if any grid point would be
        excluded (the count would change): pass ``exclude=None`` and drop the points yourself with
        ``~sources.contains(points, strict=False).any(axis=1)``, or use ``"uniform"``.

    Generator consumption (``"uniform"``): one ``uniform`` draw of (N, dim); with ``exclude``, further
    draws of ``(2 * missing + 16, dim)`` until N points are outside, the first qualifying ones kept
    in draw order.
    """
    dim = _check_dim(dim)
    if not is_int(count) or count < 0:
        raise ValueError(f"count must be a non-negative int (the number of points); got {count!r}")
    count = int(count)
    lo, hi = as_domain("domain", domain)
    if method not in _POINT_METHODS:
        raise ValueError(f"method must be 'uniform' or 'grid'; got {method!r}")
    if exclude is not None:
        if not isinstance(exclude, Sources):
            raise TypeError(f"exclude must be a fieldbench.Sources or None; got {type(exclude).__name__}")
        if len(exclude) and exclude.dim != dim:
            raise ValueError(f"exclude holds {exclude.dim}D sources but dim={dim}; pass sources of the same dimension")
        if len(exclude) == 0:
            exclude = None

    if method == "grid":
        side = _grid_side(count, dim)
        axis = lo + (np.arange(side) + 0.5) * ((hi - lo) / side)
        mesh = np.meshgrid(*([axis] * dim), indexing="ij")
        points = np.stack([m.reshape(-1) for m in mesh], axis=-1).reshape(count, dim)
        if exclude is not None and count:
            inside = exclude.contains(points, strict=False).any(axis=1)
            if np.any(inside):
                first = int(np.flatnonzero(inside)[0])
                raise ValueError(
                    f"{int(inside.sum())} of the {count} grid points lie inside (or on) the excluded sources "
                    f"(first: index {first}, {points[first].tolist()}), so excluding them would change the count; "
                    "use method='uniform' with exclude, or pass exclude=None and drop them with "
                    "~sources.contains(points, strict=False).any(axis=1)"
                )
        return points

    rng = _check_rng(rng)
    points = rng.uniform(lo, hi, size=(count, dim))
    if exclude is None or count == 0:
        return points
    keep = points[~exclude.contains(points, strict=False).any(axis=1)]
    drawn = count
    budget = 1000 * count + 10_000
    while keep.shape[0] < count:
        if drawn >= budget:
            raise ValueError(
                f"could only find {keep.shape[0]} of {count} points outside the excluded sources after {drawn} draws "
                f"in {domain_text((lo, hi), dim)}: the sources cover (almost) all of the domain; enlarge the domain "
                "or exclude fewer/smaller sources"
            )
        missing = count - keep.shape[0]
        extra = rng.uniform(lo, hi, size=(2 * missing + 16, dim))
        drawn += extra.shape[0]
        extra = extra[~exclude.contains(extra, strict=False).any(axis=1)]
        keep = np.concatenate([keep, extra])
    return keep[:count]
