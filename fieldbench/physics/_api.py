"""The functional layer: exact potential and field of any :class:`~fieldbench.Sources`.

Thin wrappers over the raw core in ``_direct``: they validate, split a collection by family, call
the jitted direct sum per family and add the results (superposition).
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ..sources import Family, SourceBatch, Sources
from ._direct import FAR_RATIOS, any_far_from_boxes, direct_sum, direct_sum_batched

__all__ = ["potential", "field", "potential_and_field", "potential_and_field_batched", "prism_corner_hits"]


def _check_points(points, dim: int, batched: bool = False) -> np.ndarray:
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError("points must be an array of numbers of shape (N, d)") from error
    expected = "(B, N, d) or (N, d)" if batched else "(N, d)"
    if points.ndim == 1 and points.shape[0] == dim:
        raise ValueError(f"points has shape {points.shape}, a single point; pass shape (1, {dim})")
    if points.ndim not in ((2, 3) if batched else (2,)) or points.shape[-1] != dim:
        raise ValueError(f"points must have shape {expected} with d = {dim} for these sources; got {points.shape}")
    if not np.all(np.isfinite(points)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(points))[0])
        raise ValueError(f"points contains a non-finite value at index {index}; every coordinate must be finite")
    return points


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


def prism_corner_hits(sources: Sources, points) -> np.ndarray:
    """Indices of points that sit exactly on a corner of a prism or cuboid (where H diverges).

    Exact equality |point - centre| == size / 2 per axis; checked in blocks of points so that the
    memory stays bounded for any N x M."""
    boxes = np.isin(np.asarray(sources.family), [int(Family.PRISM), int(Family.CUBOID)])
    if not np.any(boxes):
        return np.zeros(0, dtype=int)
    points = np.asarray(points, dtype=np.float64)
    centers = np.asarray(sources.centers)[boxes]
    half = np.asarray(sources.sizes)[boxes] / 2
    block = max(1, 4_000_000 // len(centers))
    hits = []
    for start in range(0, len(points), block):
        offsets = np.abs(points[start:start + block, None, :] - centers[None])
        on_corner = np.all(offsets == half[None], axis=-1)
        hits.append(start + np.flatnonzero(np.any(on_corner, axis=1)))
    return np.concatenate(hits) if hits else np.zeros(0, dtype=int)


def potential_and_field(sources: Sources, points, *, corners: str = "raise"):
    """Exact potential and field of a collection at points, in one pass.

    Args:
      sources: any :class:`Sources` (families may mix; 2D or 3D).
      points: (N, d) evaluation points, d = sources.dim.
      corners: what to do with a point exactly on a prism/cuboid corner, where the field diverges:
        ``"raise"`` (default) raises ValueError; ``"finite-part"`` returns the documented finite
        part (the divergent log dropped; the potential there is exact either way).

    Returns:
      (phi, H): NumPy float64 arrays of shapes (N,) and (N, d). H = -grad(phi), in the units of M.
      On a boundary the field is the mean of its inside and outside limits.
    """
    _check_sources(sources)
    points = _check_points(points, sources.dim)
    if corners not in ("raise", "finite-part"):
        raise ValueError(f"corners must be 'raise' or 'finite-part'; got {corners!r}")
    if corners == "raise":
        hits = prism_corner_hits(sources, points)
        if hits.size:
            raise ValueError(
                f"{hits.size} point(s) lie exactly on a prism/cuboid corner (first: index {hits[0]}, "
                f"{points[hits[0]].tolist()}), where the field diverges logarithmically; move them, or pass "
                "corners='finite-part' to accept the documented finite part"
            )
    phi = np.zeros(points.shape[0])
    field_ = np.zeros(points.shape)
    if len(sources) == 0 or points.shape[0] == 0:
        return phi, field_
    for family in sources.families:
        part = sources.select(family)
        any_far = family not in FAR_RATIOS or any_far_from_boxes(points, part.centers, part.sizes, family)
        p, h = direct_sum(
            jnp.asarray(points), jnp.asarray(part.centers), jnp.asarray(part.magnetisations),
            jnp.asarray(part.sizes), jnp.ones(len(part), dtype=bool), family=family, any_far=any_far,
        )
        phi += np.asarray(p)
        field_ += np.asarray(h)
    return phi, field_


def potential(sources: Sources, points, **options) -> np.ndarray:
    """Exact magnetic scalar potential, (N,) float64 (see :func:`potential_and_field`). The
    potential is finite and exact at prism/cuboid corners too, so corners never raise here."""
    options.setdefault("corners", "finite-part")
    return potential_and_field(sources, points, **options)[0]


def field(sources: Sources, points, **options) -> np.ndarray:
    """Exact field H = -grad(phi), (N, d) float64 (see :func:`potential_and_field`)."""
    return potential_and_field(sources, points, **options)[1]


def potential_and_field_batched(batch: SourceBatch, points):
    """Exact potential and field of every sample of a padded batch.

    points: (B, N, d) per sample or (N, d) shared. Returns JAX arrays phi (B, N) and H (B, N, d).
    Corner points are not checked here (the batched path serves pipelines, whose samplers place
    points at random); they get the kernels' documented finite part.
    """
    if not isinstance(batch, SourceBatch):
        raise TypeError(f"batch must be a fieldbench SourceBatch (SourceBatch.pad(samples)); got {type(batch).__name__}")
    points = _check_points(points, batch.dim, batched=True)
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
