"""The raw core: a direct sum of pair kernels over sources, per family, jitted and batched.

Everything here is a pure function of arrays (float64, jittable). Each family's definition
(``fieldbench.families``) gives a pair of functions: ``prepare(magnetisations, half_sizes) ->
params`` turns per-source data (K, ...) into what the pair kernel needs (for prisms and cuboids:
also the coefficients of their far-field series, computed once per source), and
``pair(*offsets, *params)`` evaluates one (point, source) pair elementwise.

Speed comes from the shape of the computation (measured with ``fieldbench bench solvers``):
- points are processed in chunks of ``CHUNK`` with ``lax.map`` so the working set stays in cache
  (a plain (N, K) broadcast is ~20x slower on CPU);
- potential and field components are summed over sources by ONE variadic reduction, which XLA
  fuses with the kernel into a single loop (stacking the outputs first made XLA materialise every
  shared intermediate: 2x slower for prisms);
- the points (or the samples of a batch) are split across all local devices with ``shard_map``.
  On CPU, ``fieldbench`` (``_config``) asks JAX for one CPU device per core at import (XLA runs one
  computation on one thread), which doubles throughput on 2 cores.

Scale: every pair is evaluated in the source's own length unit (:func:`length_units`), so that no
square or power of a length in the kernels over- or underflows whatever the size of the sources
(|d|^2 overflows beyond 1e154, a prism's 9th multipole a^10 beyond 1e30): the kernels get offsets
and half-sides divided by the unit, and phi, homogeneous of degree one in length, is multiplied by
it again (H is of degree zero). The unit is a power of two, so the division is exact.
"""

from __future__ import annotations

import functools
from typing import NamedTuple
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ..families import DEFINITIONS, Family, families_of_dim

__all__ = ["FamilyKernel", "KERNELS", "direct_sum", "direct_sum_batched", "length_units", "CHUNK"]

#: Points per chunk of the direct sum: measured best on 2-core AVX2 CPUs (16 to 2048 tried).
CHUNK = 128


class FamilyKernel(NamedTuple):
    prepare: Callable
    pair: Callable


KERNELS: dict[Family, FamilyKernel] = {Family(d.code): FamilyKernel(d.prepare, d.pair) for d in DEFINITIONS}


#: Families whose pair kernel switches to a far-field series beyond FAR_RATIO half-diagonals, and
#: takes the static ``any_far`` flag (see :func:`any_far_from_boxes`).
FAR_RATIOS: dict[Family, float] = {Family(d.code): d.far_ratio for d in DEFINITIONS if d.far_ratio is not None}


def _pair_options(family: Family, any_far: bool) -> dict:
    return {"any_far": any_far} if family in FAR_RATIOS else {}


def _add(x, y):
    return tuple(u + v for u, v in zip(x, y))


def length_units(half_sizes):
    """Each source's length unit: the largest power of two not above its largest half-side, (K,).

    In this unit the largest half-side lies in [1, 2). A power of two, so that dividing by it is
    exact (half-sides of normal float64 numbers, at least 2^-1021: the functional layer refuses
    sizes below 1e-300).
    """
    _, exponent = jnp.frexp(jnp.max(half_sizes, axis=-1))
    return jnp.ldexp(jnp.ones_like(half_sizes[..., 0]), exponent - 1)


def _pair_in_units(pair, offsets, params, unit, inv_unit):
    """One family's pair kernel on raw offsets, evaluated in the sources' length units (module
    docstring): phi scales like M x length, H like M."""
    phi, *field = pair(*(offset * inv_unit for offset in offsets), *params)
    return (phi * unit, *field)


def _sum_chunk(points, centers, params, units, pair):
    """(C, d) points against (K, ...) sources -> (1 + d, C) stacked potential and field."""
    offsets = [points[:, i, None] - centers[None, :, i] for i in range(points.shape[-1])]
    outputs = _pair_in_units(pair, offsets, [p[None] for p in params], *(u[None] for u in units))
    zeros = tuple(jnp.zeros((), out.dtype) for out in outputs)
    return jnp.stack(jax.lax.reduce(tuple(outputs), zeros, _add, (1,)))


def _devices() -> list:
    return jax.local_devices()


def _pair_and_params(family: Family, any_far: bool, magnetisations, sizes, mask):
    """The family's pair kernel and its per-source parameters, with masked sources neutralised.

    Masking happens on the sources, not on the outputs: the kernels are linear in M, so a padding
    source with M = 0 (and a unit size, so no kernel divides by zero) adds exactly 0. A select on
    the kernels' outputs would also stop XLA from vectorising their logs (measured 5x slower).

    Returns (pair, params, (unit, 1 / unit)): the kernel's parameters are in the sources' length
    units (:func:`length_units`), which :func:`_pair_in_units` applies to the offsets and to phi.
    """
    kernel = KERNELS[family]
    magnetisations = jnp.where(mask[..., None], magnetisations, 0.0)
    half_sizes = jnp.where(mask[..., None], sizes, 1.0) / 2
    pair = functools.partial(kernel.pair, **_pair_options(family, any_far))
    unit = length_units(half_sizes)
    inv_unit = 1.0 / unit
    return pair, kernel.prepare(magnetisations, half_sizes * inv_unit[..., None]), (unit, inv_unit)


def _direct_sum_local(points, centers, magnetisations, sizes, mask, *, family: Family, any_far: bool = True,
                      chunk: int = CHUNK):
    pair, params, units = _pair_and_params(family, any_far, magnetisations, sizes, mask)
    count, dim = points.shape
    padded = -(-count // chunk) * chunk
    points = jnp.pad(points, ((0, padded - count), (0, 0)))
    blocks = points.reshape(padded // chunk, chunk, dim)
    stacked = jax.lax.map(lambda block: _sum_chunk(block, centers, params, units, pair), blocks)
    stacked = jnp.moveaxis(stacked, 1, 0).reshape(1 + dim, padded)[:, :count]
    return stacked[0], stacked[1:].T


@functools.partial(jax.jit, static_argnames=("family", "any_far", "chunk"))
def direct_sum(points, centers, magnetisations, sizes, mask, *, family: Family, any_far: bool = True,
               chunk: int = CHUNK):
    """Potential and field of K sources of one family at N points.

    Args:
      points: (N, d) evaluation points.
      centers, magnetisations, sizes: (K, d) sources (sizes are FULL extents).
      mask: (K,) bool, False for padding sources (they contribute exactly zero).
      family: the family of every source (static).
      any_far: prisms and cuboids only (static): False promises that no point is far enough from a
        source to need its far-field series, which saves its cost (see :func:`any_far_from_boxes`).
      chunk: points per chunk (static).

    Returns:
      phi (N,) and H (N, d), float64.
    """
    devices = _devices()
    local = functools.partial(_direct_sum_local, family=family, any_far=any_far, chunk=chunk)
    if len(devices) == 1:
        return local(points, centers, magnetisations, sizes, mask)
    count = points.shape[0]
    share = -(-count // (len(devices) * chunk)) * chunk
    points = jnp.pad(points, ((0, share * len(devices) - count), (0, 0)))
    mesh = Mesh(np.array(devices), ("points",))
    split, whole = PartitionSpec("points"), PartitionSpec()
    phi, field = jax.shard_map(local, mesh=mesh, in_specs=(split, whole, whole, whole, whole),
                               out_specs=(split, split))(points, centers, magnetisations, sizes, mask)
    return phi[:count], field[:count]


#: Pairs per block when many small samples are evaluated together (measured: 8k-16k is best).
_BLOCK_PAIRS = 16384


def _batched_local(points, centers, magnetisations, sizes, mask, *, family, any_far, chunk):
    """Batched direct sum on one device. Samples with few pairs (datasets: K <= 8 sources, N ~ 1e3
    points) are evaluated a block of samples at a time over (b, N, K), which measured 3-5x faster
    than mapping the single-sample path; big samples go through the chunked single-sample path."""
    count, sources, dim = centers.shape
    if points.ndim == 2:
        points = jnp.broadcast_to(points, (count,) + points.shape)
    per_sample = points.shape[1]
    if per_sample * sources > _BLOCK_PAIRS:
        single = functools.partial(_direct_sum_local, family=family, any_far=any_far, chunk=chunk)
        return jax.vmap(single)(points, centers, magnetisations, sizes, mask)
    pair, params, units = _pair_and_params(family, any_far, magnetisations, sizes, mask)
    block = max(1, min(count, _BLOCK_PAIRS // (per_sample * sources)))
    padded = -(-count // block) * block

    def pad(x):  # repeat the last sample: discarded afterwards, but never a degenerate source
        x = jnp.pad(x, [(0, padded - count)] + [(0, 0)] * (x.ndim - 1), mode="edge")
        return x.reshape((padded // block, block) + x.shape[1:])

    def one_block(args):
        block_points, block_centers, block_params, block_units = args  # (b, N, d), (b, K, d), (b, K, ...)
        offsets = [block_points[:, :, None, i] - block_centers[:, None, :, i] for i in range(dim)]
        outputs = _pair_in_units(pair, offsets, [p[:, None, :] for p in block_params],
                                 *(u[:, None, :] for u in block_units))
        zeros = tuple(jnp.zeros((), out.dtype) for out in outputs)
        return jax.lax.reduce(tuple(outputs), zeros, _add, (2,))  # 1 + d arrays (b, N)

    sums = jax.lax.map(one_block, (pad(points), pad(centers), tuple(pad(p) for p in params),
                                   tuple(pad(u) for u in units)))
    phi, *field = (x.reshape((padded,) + x.shape[2:])[:count] for x in sums)
    return phi, jnp.stack(field, axis=-1)


@functools.partial(jax.jit, static_argnames=("family", "any_far", "chunk"))
def direct_sum_batched(points, centers, magnetisations, sizes, mask, *, family: Family, any_far: bool = True,
                       chunk: int = CHUNK):
    """:func:`direct_sum` over a batch of B samples.

    points: (B, N, d) per sample, or (N, d) shared by all samples; sources (B, K, d), mask (B, K).
    Returns phi (B, N) and H (B, N, d).
    """
    batched = functools.partial(_batched_local, family=family, any_far=any_far, chunk=chunk)
    devices = _devices()
    size = centers.shape[0]
    if len(devices) == 1 or size < len(devices):
        return batched(points, centers, magnetisations, sizes, mask)
    padded = -(-size // len(devices)) * len(devices)

    def pad(x):
        return jnp.pad(x, [(0, padded - size)] + [(0, 0)] * (x.ndim - 1))

    mesh = Mesh(np.array(devices), ("samples",))
    split, whole = PartitionSpec("samples"), PartitionSpec()
    point_spec = split if points.ndim == 3 else whole
    points = pad(points) if points.ndim == 3 else points
    phi, field = jax.shard_map(batched, mesh=mesh, in_specs=(point_spec, split, split, split, split),
                               out_specs=(split, split))(points, pad(centers), pad(magnetisations), pad(sizes),
                                                         pad(mask))
    return phi[:size], field[:size]


def any_far_from_boxes(points: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
                       family: Family | None = None) -> bool:
    """Whether some point may be far enough from some prism or cuboid to need its far-field series
    (concrete NumPy check, done once outside jit; a cheap, conservative bound on the distance to the
    collection). ``family`` picks the ratio (default: the first family of that dimension with a
    far-field switch, prisms in 2D, cuboids in 3D)."""
    centers = np.asarray(centers, dtype=np.float64)
    dim = centers.shape[-1] if centers.ndim else np.asarray(points).shape[-1]
    if family is None:
        family = next(f for f in families_of_dim(dim) if f in FAR_RATIOS)
    points = np.asarray(points, dtype=np.float64).reshape(-1, dim)
    centers = centers.reshape(-1, dim)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, dim)
    if points.size == 0 or centers.size == 0:
        return False
    lo = centers.min(axis=0)
    hi = centers.max(axis=0)
    # Largest possible distance from any point to any source centre, against the smallest threshold,
    # both in units of the largest size: squares of sizes beyond 1e154 overflowed to inf, and the
    # series was then never compiled in. In this unit an overflow or underflow can only say "far".
    unit = np.max(sizes)
    with np.errstate(over="ignore", under="ignore"):
        reach = np.max(np.maximum(np.abs(points - lo), np.abs(points - hi)), axis=0) / unit
        threshold = FAR_RATIOS[family] * np.sqrt(np.min(np.sum((sizes / (2 * unit)) ** 2, axis=-1)))
        return bool(np.linalg.norm(reach) > threshold)

