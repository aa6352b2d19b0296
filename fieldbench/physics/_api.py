"""The functional layer: exact potential and field of any :class:`~fieldbench.Sources`.

Thin wrappers over the raw core in ``_direct``: they validate, split a collection by family, call
the jitted direct sum per family and add the results (superposition).

Every check costs O(N + K) or O((N + K) log N) in NumPy, a small fraction of the direct sum: the
test for points on prism corners and cuboid edges sorts points and face planes instead of
comparing every (point, box) pair (:func:`edge_and_corner_hits`; tests/test_api_singular.py holds
it to the every-pair rule). ``fieldbench bench solvers`` measures this layer against the raw core.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..families import BoxShape
from ..sources import Family, SourceBatch, Sources, as_points
from ._direct import FAR_RATIOS, any_far_from_boxes, direct_sum, direct_sum_batched

__all__ = ["potential", "field", "potential_and_field", "potential_and_field_batched", "edge_and_corner_hits",
           "on_edge_or_corner", "MAX_REACH", "MIN_SIZE"]

#: Smallest size accepted: sizes are divided by a power of two near them (``_direct``), which
#: must be a normal float64 number with a finite reciprocal.
MIN_SIZE = 1e-300
#: Largest distance of a point from a source, in units of that source's size: in the kernels'
#: units |d|^2 must not overflow (1e308). Beyond, phi is below 1e-150 of |M| x size and H below
#: 1e-300 (3D) of |M|; such pairs are refused rather than computed as garbage.
MAX_REACH = 1e150


def _check_sources(sources) -> None:
    """The functional layer validates what it is given: a raw ``Sources(...)`` skips the
    constructors' checks, and NaN or a negative size must not reach the kernels."""
    if not isinstance(sources, Sources):
        raise TypeError(f"sources must be a fieldbench.Sources (e.g. Sources.discs(...)); got {type(sources).__name__}")
    for name in ("centers", "magnetisations", "sizes"):
        values = np.asarray(getattr(sources, name), dtype=np.float64)
        if values.ndim != 2 or values.shape != (len(sources), sources.dim):
            raise ValueError(f"sources.{name} must have shape (K, d) = ({len(sources)}, {sources.dim}); got "
                             f"{values.shape}; build sources with Sources.discs/prisms/cuboids/spheres")
        if not np.all(np.isfinite(values)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            raise ValueError(f"sources.{name} holds a non-finite value at index {index}; every value must be finite")
    sizes = np.asarray(sources.sizes, dtype=np.float64)
    if np.any(sizes <= 0):
        index = tuple(int(i) for i in np.argwhere(sizes <= 0)[0])
        raise ValueError(f"sources.sizes must be positive; got {sizes[index]} at index {index}")
    if np.any(sizes < MIN_SIZE):
        index = tuple(int(i) for i in np.argwhere(sizes < MIN_SIZE)[0])
        raise ValueError(f"sources.sizes must be at least {MIN_SIZE:g}; got {sizes[index]} at index {index}; "
                         "express lengths in a smaller unit (the results scale: phi like length, H not at all)")


#: Where a point on a box family's edge or corner lies (exact equality per axis, as the kernels
#: see it): the box families' singular set, the rule the fast test below must reproduce.
on_edge_or_corner = BoxShape.on_singular_set


def _singular_boxes(sources: Sources) -> np.ndarray:
    """(K,) bool: sources of a box family whose edges or corners are singular (its definition's
    ``singular_set``); the fast test relies on their axis-aligned face planes."""
    codes = [int(f) for f in Family if isinstance(f.definition, BoxShape) and f.definition.singular_set]
    return np.isin(np.asarray(sources.family), codes)


def _blocks(points: np.ndarray, count: int):
    """Slices of points such that a block times ``count`` sources stays about 4e6 pairs."""
    block = max(1, 4_000_000 // max(count, 1))
    return (slice(start, start + block) for start in range(0, len(points), block))


def _column_extremes(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column minimum and maximum of an (N, d) array. One column at a time: NumPy reduces an
    (N, 2) array along axis 0 about 25x slower than its two columns one after the other."""
    columns = [array[:, axis] for axis in range(array.shape[1])]
    return np.array([column.min() for column in columns]), np.array([column.max() for column in columns])


def _near_face_planes(points: np.ndarray, centers: np.ndarray, half_sizes: np.ndarray) -> np.ndarray:
    """(d, N) bool: whether each coordinate of each point lies within a rounding error of a face
    plane of some box on that axis; True wherever :func:`on_edge_or_corner` could hold on that axis.

    O((N + K) log N): per axis the points are sorted, each of the 2K face planes q finds the run of
    points in [fl(q - T), fl(q + T)] by bisection, and the runs are marked with one cumulative sum.
    Why T = 2^-48 S, S = max_k(|c_k| + h_k) on that axis, misses nothing: fl(|x - c|) == h means
    |x - (c +- h)| <= 2^-53 h (one rounding of x - c); the stored plane q = fl(c +- h) is within
    2^-53 (|c| + h) of c +- h, so |x - q| <= 2^-52 S; and rounding q -+ T moves the window's ends
    by at most 2^-53 (|q| + T) < T - 2^-52 S. Non-finite inputs skip the test (all True)."""
    count, dim = points.shape
    near = np.ones((dim, count), dtype=bool)  # axis first: rows are contiguous, summed elementwise
    if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(half_sizes)) and np.all(np.isfinite(points))):
        return near
    with np.errstate(over="ignore", invalid="ignore"):  # a plane or T overflowing to inf widens its window
        planes = np.concatenate([centers - half_sizes, centers + half_sizes])  # (2K, d)
        tolerance = np.ldexp(_column_extremes(np.abs(centers) + half_sizes)[1], -48)
        # Sorted window ends make the bisections ~2x faster; each end only adds or removes one
        # from the count of windows at a position, so the ends need not stay paired.
        low, high = np.sort(planes - tolerance, axis=0), np.sort(planes + tolerance, axis=0)
    for axis in range(dim):
        order = np.argsort(points[:, axis])
        ordered = points[order, axis]
        starts = np.searchsorted(ordered, low[:, axis], "left")
        ends = np.searchsorted(ordered, high[:, axis], "right")
        runs = np.cumsum(np.bincount(starts, minlength=count + 1) - np.bincount(ends, minlength=count + 1))
        near[axis, order] = runs[:count] > 0
    return near


def edge_and_corner_hits(sources: Sources, points) -> np.ndarray:
    """Indices of points exactly on an edge or corner of a prism or cuboid (:func:`on_edge_or_corner`).

    Exact equality |point - centre| == size / 2 per axis, as the kernels see it. Only points near
    face planes on at least two axes can be on an edge (:func:`_near_face_planes`, O((N + K) log N));
    those few are checked against every box, in blocks of points so that the memory stays bounded
    (O(candidates x K): zero for points drawn at random, at most N on a grid aligned with the boxes)."""
    boxes = _singular_boxes(sources)
    if not np.any(boxes):
        return np.zeros(0, dtype=int)
    points = np.asarray(points, dtype=np.float64)
    # float64 throughout, as the comparisons promote to anyway (the bound on the planes assumes it)
    centers = np.asarray(sources.centers, dtype=np.float64)[boxes]
    half = np.asarray(sources.sizes, dtype=np.float64)[boxes] / 2
    candidates = np.flatnonzero(np.sum(_near_face_planes(points, centers, half), axis=0) >= 2)
    near = points[candidates]
    hits = [candidates[block][np.any(on_edge_or_corner(near[block, None, :] - centers[None], half[None]), axis=1)]
            for block in _blocks(near, len(centers))]
    return np.concatenate(hits) if hits else np.zeros(0, dtype=int)


def _raise_on_edges_and_corners(sources: Sources, points: np.ndarray) -> None:
    hits = edge_and_corner_hits(sources, points)
    if not hits.size:
        return
    first = points[hits[0]]
    boxes = _singular_boxes(sources)
    offsets = first - np.asarray(sources.centers)[boxes]
    half = np.asarray(sources.sizes)[boxes] / 2
    on = int(np.sum(np.abs(offsets) == half, axis=-1)[on_edge_or_corner(offsets, half)].max())
    where = "prism corner" if sources.dim == 2 else ("cuboid corner" if on == 3 else "cuboid edge")
    raise ValueError(
        f"{hits.size} point(s) lie exactly on an edge or corner of a prism/cuboid (first: index {hits[0]}, "
        f"{first.tolist()}, on a {where}), where the field diverges logarithmically; move them, or pass "
        "corners='finite-part' to accept the documented finite part"
    )


def _check_reach(sources: Sources, points: np.ndarray) -> None:
    """Refuse a point more than MAX_REACH source sizes from a source. A cheap bound first (the
    farthest a point can be from any centre, against the smallest source); pairs only if it fails."""
    if len(sources) == 0 or points.shape[0] == 0:
        return
    centers = np.asarray(sources.centers, dtype=np.float64)
    largest = np.max(np.asarray(sources.sizes, dtype=np.float64), axis=-1)  # (K,)
    with np.errstate(over="ignore"):
        # max over points of |x - c| per axis, from the points' extremes only: x - c rounds
        # monotonically in x, so this is exactly the maximum over every point, without (N, d) temporaries
        reach = max(float(np.max(np.abs(x - c))) for x in _column_extremes(points) for c in _column_extremes(centers))
        if reach <= MAX_REACH * np.min(largest):
            return
        for block in _blocks(points, len(centers)):
            ratio = np.max(np.abs(points[block, None, :] - centers[None]), axis=-1) / largest[None]
            if np.any(ratio > MAX_REACH):
                i, k = (int(v) for v in np.argwhere(ratio > MAX_REACH)[0])
                raise ValueError(
                    f"point {block.start + i} ({points[block.start + i].tolist()}) is {ratio[i, k]:.3g} sizes of "
                    f"source "
                    f"{k} away from it, beyond the {MAX_REACH:g} that float64 can scale (there H < 1e-300 |M| and "
                    f"phi < 1e-150 |M| x size); evaluate far-apart sources and points separately, or drop that source")


def _check_finite_results(phi: np.ndarray, field_: np.ndarray) -> None:
    """The kernels never return NaN on valid inputs; inf comes from |M| x size beyond float64."""
    if np.isfinite(phi).all() and np.isfinite(field_).all():  # the usual case, without (N,) temporaries
        return
    bad = ~(np.isfinite(phi) & np.all(np.isfinite(field_), axis=-1))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"the potential or field overflows float64 at {int(np.sum(bad))} point(s) (first: index {i}): "
                         "|M| x size is too large; use larger units for M or for lengths "
                         "(phi scales like M x length, H like M)")


def potential_and_field(sources: Sources, points, *, corners: str = "raise"):
    """Exact potential and field of a collection at points, in one pass.

    Args:
      sources: any :class:`Sources` (families may mix; 2D or 3D).
      points: (N, d) evaluation points, d = sources.dim.
      corners: what to do with a point exactly on a prism corner or on a cuboid edge or corner,
        where the field diverges logarithmically: ``"raise"`` (default) raises ValueError;
        ``"finite-part"`` returns the finite part of the kernels (``fieldbench.families.prism``/``.cuboid``
        docstrings): each divergent ln(distance) evaluated as if the distance were the source's
        largest half-side, bounded direction-dependent terms at their mean; it does not depend on
        the unit of length. The potential there is finite and exact either way.

    Returns:
      (phi, H): NumPy float64 arrays of shapes (N,) and (N, d). H = -grad(phi), in the units of M.
      On a boundary the field is the mean of its inside and outside limits.

    Every pair is computed in the source's own length unit (``_direct``), so the results do not
    depend on the unit of length, and stay exact, sign included, down to |H| ~ 1e-300 |M| (below,
    near float64's smallest normal number 2.2e-308, they lose digits and XLA flushes them to 0).
    Points more than 1e150 source sizes from a source, sizes below 1e-300, and results beyond
    float64 (|M| x size ~ 1e308) raise.
    """
    _check_sources(sources)
    points = as_points(points, sources.dim)
    if corners not in ("raise", "finite-part"):
        raise ValueError(f"corners must be 'raise' or 'finite-part'; got {corners!r}")
    if corners == "raise":
        _raise_on_edges_and_corners(sources, points)
    _check_reach(sources, points)
    phi = np.zeros(points.shape[0])
    field_ = np.zeros(points.shape)
    if len(sources) == 0 or points.shape[0] == 0:
        return phi, field_
    device_points = jnp.asarray(points)  # one transfer for every family
    for family in sources.families:
        part = sources.select(family)
        any_far = family not in FAR_RATIOS or any_far_from_boxes(points, part.centers, part.sizes, family)
        # NumPy inputs, the mask included: jnp.ones would be one more dispatched operation per call.
        p, h = direct_sum(
            device_points, part.centers, part.magnetisations, part.sizes, np.ones(len(part), dtype=bool),
            family=family, any_far=any_far,
        )
        phi += np.asarray(p)
        field_ += np.asarray(h)
    _check_finite_results(phi, field_)
    return phi, field_


def potential(sources: Sources, points, **options) -> np.ndarray:
    """Exact magnetic scalar potential, (N,) float64 (see :func:`potential_and_field`). The
    potential is finite and exact on prism corners and cuboid edges too, so they never raise here."""
    options.setdefault("corners", "finite-part")
    return potential_and_field(sources, points, **options)[0]


def field(sources: Sources, points, **options) -> np.ndarray:
    """Exact field H = -grad(phi), (N, d) float64 (see :func:`potential_and_field`)."""
    return potential_and_field(sources, points, **options)[1]


def potential_and_field_batched(batch: SourceBatch, points):
    """Exact potential and field of every sample of a padded batch.

    points: (B, N, d) per sample or (N, d) shared. Returns JAX arrays phi (B, N) and H (B, N, d).
    Points on edges and corners are not checked here (the batched path serves pipelines, whose
    samplers place points at random); they get the kernels' documented finite part. Nor are the
    reach and the sizes (:func:`potential_and_field` refuses what float64 cannot scale).
    """
    if not isinstance(batch, SourceBatch):
        raise TypeError("batch must be a fieldbench SourceBatch (SourceBatch.pad(samples)); "
                        f"got {type(batch).__name__}")
    points = as_points(points, batch.dim, batched=True)
    size = len(batch)
    if points.ndim == 3 and points.shape[0] != size:
        raise ValueError(f"points has {points.shape[0]} samples but the batch has {size}")
    count = points.shape[-2]
    phi = jnp.zeros((size, count))
    field_ = jnp.zeros((size, count, batch.dim))
    family_codes = np.asarray(batch.family)
    mask = np.asarray(batch.mask)
    for family in batch.families:
        family_mask = mask & (family_codes == int(family))
        any_far = family not in FAR_RATIOS or any_far_from_boxes(
            points, np.asarray(batch.centers)[family_mask], np.asarray(batch.sizes)[family_mask], family)
        p, h = direct_sum_batched(
            jnp.asarray(points), jnp.asarray(batch.centers), jnp.asarray(batch.magnetisations),
            jnp.asarray(batch.sizes), jnp.asarray(family_mask), family=family, any_far=any_far,
        )
        phi = phi + p
        field_ = field_ + h
    return phi, field_
