"""The raw core: a direct sum of pair kernels over sources, per family, jitted and batched.

Everything here is a pure function of arrays (float64, jittable). A family is a pair of functions:
``prepare(magnetisations, half_sizes) -> params`` turns per-source data (K, ...) into what the
pair kernel needs (for prisms: also the multipole coefficients, computed once per source), and
``pair(*offsets, *params)`` evaluates one (point, source) pair elementwise.

Speed comes from the shape of the computation, not from clever kernels: points are processed in
chunks of ``CHUNK`` with ``lax.map``, and potential and field are stacked into ONE reduction over
sources, so XLA fuses kernel and sum into a loop whose working set stays in cache (a naive
(N, K, 2) broadcast is ~20x slower on CPU; see ``fieldbench bench solvers``).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..sources import Family
from . import _kernels2d, _kernels3d

__all__ = ["FamilyKernel", "KERNELS", "direct_sum", "direct_sum_batched", "CHUNK"]

#: Points per chunk of the direct sum: measured best on 2-core AVX2 CPUs (64 to 512 tried).
CHUNK = 128


class FamilyKernel(NamedTuple):
    prepare: Callable
    pair: Callable


def _prepare_disc(magnetisations, half_sizes):
    return magnetisations[..., 0], magnetisations[..., 1], half_sizes[..., 0]


def _prepare_prism(magnetisations, half_sizes):
    mx, my = magnetisations[..., 0], magnetisations[..., 1]
    a, b = half_sizes[..., 0], half_sizes[..., 1]
    return mx, my, a, b, _kernels2d.prism_multipoles(mx, my, a, b)


def _prepare_cuboid(magnetisations, half_sizes):
    return tuple(magnetisations[..., i] for i in range(3)) + tuple(half_sizes[..., i] for i in range(3))


def _prepare_sphere(magnetisations, half_sizes):
    return tuple(magnetisations[..., i] for i in range(3)) + (half_sizes[..., 0],)


KERNELS: dict[Family, FamilyKernel] = {
    Family.DISC: FamilyKernel(_prepare_disc, _kernels2d.disc_pair),
    Family.PRISM: FamilyKernel(_prepare_prism, _kernels2d.prism_pair),
    Family.CUBOID: FamilyKernel(_prepare_cuboid, _kernels3d.cuboid_pair),
    Family.SPHERE: FamilyKernel(_prepare_sphere, _kernels3d.sphere_pair),
}


def _pair_options(family: Family, any_far: bool) -> dict:
    return {"any_far": any_far} if family == Family.PRISM else {}


def _sum_chunk(points, centers, params, mask, pair):
    """(C, d) points against (K, ...) sources -> (1 + d, C) stacked potential and field."""
    offsets = [points[:, i, None] - centers[None, :, i] for i in range(points.shape[-1])]
    params = [p[None] for p in params]
    outputs = pair(*offsets, *params)
    return jnp.stack([jnp.where(mask[None, :], out, 0.0) for out in outputs]).sum(axis=-1)


@functools.partial(jax.jit, static_argnames=("family", "any_far", "chunk"))
def direct_sum(points, centers, magnetisations, sizes, mask, *, family: Family, any_far: bool = True,
               chunk: int = CHUNK):
    """Potential and field of K sources of one family at N points.

    Args:
      points: (N, d) evaluation points.
      centers, magnetisations, sizes: (K, d) sources (sizes are FULL extents).
      mask: (K,) bool, False for padding sources (they contribute exactly zero).
      family: the family of every source (static).
      any_far: prisms only (static): False promises that no point is far enough from a prism to
        need the multipole series, which saves its cost.
      chunk: points per chunk (static).

    Returns:
      phi (N,) and H (N, d), float64.
    """
    kernel = KERNELS[family]
    pair = functools.partial(kernel.pair, **_pair_options(family, any_far))
    params = kernel.prepare(magnetisations, sizes / 2)
    count, dim = points.shape
    padded = -(-count // chunk) * chunk
    points = jnp.pad(points, ((0, padded - count), (0, 0)))
    blocks = points.reshape(padded // chunk, chunk, dim)
    stacked = jax.lax.map(lambda block: _sum_chunk(block, centers, params, mask, pair), blocks)
    stacked = jnp.moveaxis(stacked, 1, 0).reshape(1 + dim, padded)[:, :count]
    return stacked[0], stacked[1:].T


@functools.partial(jax.jit, static_argnames=("family", "any_far", "chunk"))
def direct_sum_batched(points, centers, magnetisations, sizes, mask, *, family: Family, any_far: bool = True,
                       chunk: int = CHUNK):
    """:func:`direct_sum` over a batch of B samples.

    points: (B, N, d) per sample, or (N, d) shared by all samples; sources (B, K, d), mask (B, K).
    Returns phi (B, N) and H (B, N, d).
    """
    point_axis = 0 if points.ndim == 3 else None
    single = functools.partial(direct_sum, family=family, any_far=any_far, chunk=chunk)
    return jax.vmap(single, in_axes=(point_axis, 0, 0, 0, 0))(points, centers, magnetisations, sizes, mask)


def any_far_from_prisms(points: np.ndarray, centers: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether some point is far enough from some prism to need its multipole series (concrete
    NumPy check, done once outside jit; a cheap bound on the distance to the collection)."""
    points = np.asarray(points).reshape(-1, 2)
    centers = np.asarray(centers).reshape(-1, 2)
    sizes = np.asarray(sizes).reshape(-1, 2)
    if points.size == 0 or centers.size == 0:
        return False
    lo = centers.min(axis=0)
    hi = centers.max(axis=0)
    # Largest possible distance from any point to any prism centre, against the smallest threshold.
    reach = np.max(np.maximum(np.abs(points - lo), np.abs(points - hi)), axis=0)
    threshold = _kernels2d.FAR_RATIO * np.sqrt(np.min(np.sum((sizes / 2) ** 2, axis=-1)))
    return bool(np.hypot(*reach) > threshold)
