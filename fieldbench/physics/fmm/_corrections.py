"""Exact local corrections of the corrected FMM: for every near (point, source) pair, the exact
closed form minus what the FMM summed for that source there.

Jitted, and run in fixed-size chunks spread over the JAX devices, so that nothing recompiles per
call (one compilation per family and ring width).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ...sources import Family
from ...families.disc import disc_pair
from ...families.prism import prism_near

__all__ = ["add_corrections"]

#: Pairs per call of the jitted corrections (one compilation per family and ring width).
_CHUNK = 8192


def _dipole_taylor(moment, z, delta):
    """Point dipole f = P / (2 pi z) at offset z, Taylor-stepped by delta: (phi, f1 = phi_x - i phi_y).

    A zero moment contributes exactly zero (also at z = 0: padding and excluded dipoles)."""
    inv = 1.0 / jnp.where(moment == 0, 1.0, z)
    f0 = moment * inv / math.tau
    f1 = -f0 * inv
    f2 = -2.0 * f1 * inv
    return jnp.real(f0 + delta * (f1 + 0.5 * delta * f2)), f1 + f2 * delta


def _correction(exact, moment, zbase, delta, base=None, ring_moments=None, ring_positions=None):
    """exact(t) - (what the FMM summed for this source at t), per pair: (phi, hx, hy)."""
    phi, hx, hy = exact
    p, f1 = _dipole_taylor(moment, zbase, delta)
    if ring_moments is not None:
        rp, rf1 = _dipole_taylor(ring_moments, base[:, None] - ring_positions, delta[:, None])
        p = p + rp.sum(axis=1)
        f1 = f1 + rf1.sum(axis=1)
    # H = -grad(phi): hx - i hy = -f1
    return phi - p, hx + jnp.real(f1), hy - jnp.imag(f1)


@jax.jit
def _disc_chunk(dx, dy, mx, my, radius, moment, zbase, delta):
    return _correction(disc_pair(dx, dy, mx, my, radius), moment, zbase, delta)


@jax.jit
def _prism_chunk(dx, dy, mx, my, a, b, moment, zbase, delta, base, ring_moments, ring_positions):
    return _correction(prism_near(dx, dy, mx, my, a, b), moment, zbase, delta, base, ring_moments,
                       ring_positions)


def _chunked(function, arrays, tables=()):
    """Apply a jitted pair function to flat per-pair arrays in fixed-width chunks, spread over the
    JAX devices; ``tables`` are (table, index) pairs gathered per chunk (rows of per-source data)."""
    total = len(arrays[0])
    out = np.zeros((3, total))
    devices = jax.local_devices()
    pending = []
    for number, start in enumerate(range(0, total, _CHUNK)):
        stop = min(start + _CHUNK, total)
        chunk = [x[start:stop] for x in arrays] + [table[index[start:stop]] for table, index in tables]
        chunk = [np.concatenate([x, np.repeat(x[-1:], _CHUNK - (stop - start), axis=0)]) for x in chunk]
        device = devices[number % len(devices)]
        pending.append((start, stop, function(*[jax.device_put(x, device) for x in chunk])))
        if len(pending) > 2 * len(devices):
            _collect(out, pending.pop(0))
    for item in pending:
        _collect(out, item)
    return out


def _collect(out, item):
    start, stop, values = item
    for row, value in enumerate(values):
        out[row, start:stop] = np.asarray(value)[: stop - start]


def add_corrections(phi, field, points, base, delta, pair_point, pair_source, carrier, snapped_points,
                    snapped_sources, family, centers, magnetisations, half, moment, rings):
    """Add exact(t) - the FMM's own contribution of the source, for every near pair, in place."""
    count = len(points)
    snapped_carrier = np.full(count, -1, np.int64)
    snapped_carrier[snapped_points] = carrier[snapped_sources]
    exact_offset = points[pair_point] - centers[pair_source]
    base_offset = base[pair_point] - centers[pair_source]
    zbase = base_offset[:, 0] + 1j * base_offset[:, 1]
    # The FMM excluded the centre dipole at a snapped point's own centre: nothing to subtract there.
    excluded = snapped_carrier[pair_point] == carrier[pair_source]
    pair_moment = np.where(excluded, 0.0, moment[pair_source])
    pair_delta = delta[pair_point]
    totals = np.zeros((3, count))
    for code in (Family.DISC, Family.PRISM):
        rows = np.flatnonzero(family[pair_source] == int(code))
        if rows.size == 0:
            continue
        k = pair_source[rows]
        arrays = [exact_offset[rows, 0], exact_offset[rows, 1], magnetisations[k, 0], magnetisations[k, 1]]
        tail = [pair_moment[rows], zbase[rows], pair_delta[rows]]
        if code == Family.DISC:
            values = _chunked(_disc_chunk, arrays + [half[k, 0]] + tail)
        else:
            # The ring axis is padded to a power of two (zero moments add nothing) so that few
            # widths, hence few compilations, occur.
            width = 0 if rings is None else max(8, 1 << (rings.size - 1).bit_length())
            moments = np.zeros((1 if rings is None else len(rings.moments), width), np.complex128)
            positions = np.zeros_like(moments)
            if rings is not None:
                moments[:, :rings.size] = rings.moments
                positions[:, :rings.size] = rings.positions
            index = np.zeros(rows.size, np.int64) if rings is None else rings.row[k]
            points_complex = base[pair_point[rows], 0] + 1j * base[pair_point[rows], 1]
            values = _chunked(_prism_chunk, arrays + [half[k, 0], half[k, 1]] + tail + [points_complex],
                              tables=[(moments, index), (positions, index)])
        for row in range(3):
            totals[row] += np.bincount(pair_point[rows], values[row], minlength=count)
    phi += totals[0]
    field[:, 0] += totals[1]
    field[:, 1] += totals[2]
