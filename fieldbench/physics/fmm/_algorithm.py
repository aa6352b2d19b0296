"""The fast multipole method baseline (paper Fig. 5): pyfmmlib's 2D Laplace FMM on 2D sources.

Two variants, as in the paper:

``"pure"``
    every source is a point dipole at its centre with its moment per unit length (disc:
    pi R^2 M; prism: 4ab M, see :meth:`Sources.moments`), summed by the FMM. Accurate far from
    the sources, wrong inside them and, for prisms, near them (a point dipole is only a prism's
    leading multipole).
``"corrected"``
    the FMM far field plus an exact local correction. For every (point, source) pair in the
    source's *near zone* the FMM's own contribution of that source is subtracted and the exact
    closed form (``fieldbench.physics.kernels2d``) added. Discs are exact dipoles outside, so their
    near zone is the disc itself. A prism's near zone is the circle of radius
    ``half_diagonal + near * longest_side`` around its centre (it holds every point within ``near``
    sizes of the prism); beyond it, the FMM carries the prism's multipoles up to an order chosen
    from ``iprec`` and ``near`` (a ring of point dipoles that reproduces its moments Q_1..Q_n
    exactly), so that the result matches the exact solver to about the FMM's accuracy everywhere,
    inside sources included.

Both return float64 ``phi`` (N,) and ``H = -grad(phi)`` (N, 2) in the units of M (A/m), with the
conventions of PHYSICS.md. pyfmmlib's ``lfmm2dparttarg`` computes
``pot(x) = sum_j -dipstr_j (dipvec_j . (x - y_j)) / |x - y_j|^2`` and ``fld = +grad(pot)``; with
``dipstr = -1/(2 pi)`` and ``dipvec`` = the moment p this is the 2D dipole potential
``p.d / (2 pi |d|^2)``, so ``phi = Re(pot)`` and ``H = -Re(fld)``.

Points that coincide with a source centre (their squared distance is 0 in float64): a point
dipole is singular there. The FMM is then evaluated *at* that centre with the self term excluded
(pyfmmlib's evaluation at sources skips self-interaction; sources sharing one centre are merged
into one dipole first). ``"pure"`` returns that value (the field of all the other sources, the
usual particle convention); ``"corrected"`` adds the exact field of the coincident sources, so a
point at a centre is exact to the FMM's accuracy (the worst case of the paper's timing, N = M
points at the centres, takes this path). In ``"corrected"``, points very close to a centre (see
``SNAP_RADIUS``) are treated the same way, with a second-order Taylor step from the centre using
the FMM's Hessian, because subtracting a point dipole that large from the FMM sum would lose about
``eps (size / r)^2`` of H to cancellation. No NaN is returned silently: ``"pure"`` raises
``FloatingPointError`` where a point dipole overflows (a point ~1e-150 from a centre), and
``"corrected"`` recomputes any non-finite point (e.g. one exactly on an internal ring dipole) with
the exact direct sum.

The FMM's error is relative to the field of the sources around a point, not to the value at the
point: where fields cancel (|H| << M) the pointwise relative error is larger. Measured against the
exact solver on 30 random overlapping sources (tests/test_fmm.py): max |error| / max |H| about
1e-3 (iprec 1) and 1e-12 (iprec 4), median relative error about 1e-5 and 1e-15.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import math
import os
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..physics import kernels2d
from ..sources import Family, Sources

__all__ = ["fmm_available", "fmm_potential_and_field", "VARIANTS", "IPREC_TOLERANCE", "SNAP_RADIUS"]

#: The two variants of the paper's Fig. 5.
VARIANTS = ("pure", "corrected")

#: pyfmmlib's requested relative tolerance per ``iprec`` (fmmlib2d documentation). Measured
#: errors are smaller: about 1e-5, 1e-8 and 1e-15 relative for iprec 1, 2 and 4 (PHYSICS.md).
IPREC_TOLERANCE = {-2: 0.5, -1: 0.05, 0: 5e-3, 1: 5e-4, 2: 5e-7, 3: 5e-10, 4: 5e-13, 5: 5e-16}

#: Target accuracy of the prism multipoles the corrected variant hands to the FMM, per iprec
#: (about the FMM's own measured accuracy, so the truncation does not dominate).
_MULTIPOLE_TOLERANCE = {-2: 1e-1, -1: 1e-2, 0: 1e-3, 1: 1e-5, 2: 1e-9, 3: 1e-12, 4: 1e-15, 5: 1e-16}

#: Corrected variant: a point closer than SNAP_RADIUS * sqrt(s * min(s, d)) to a source centre
#: (s: the source's longest full extent, d: distance from that centre to the nearest other dipole
#: of the FMM) is evaluated from the FMM at that centre (self term excluded) plus a Taylor step,
#: instead of subtracting a huge point dipole from the FMM sum. The Taylor step errs by ~(r / d)^2
#: in H, the subtraction by ~eps (s / r)^2; both are ~1e-8 s / d at the switch, far less elsewhere.
SNAP_RADIUS = 1e-4

_TWO_PI = 2.0 * math.pi
_MAX_RING = 256
#: Largest number of (point, source) candidate pairs handled at once by the neighbour search.
_PAIR_BATCH = 1 << 22


# -- pyfmmlib -----------------------------------------------------------------------------------

def fmm_available() -> bool:
    """Whether pyfmmlib (the optional FMM backend) can be imported."""
    try:
        _fmm_module()
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _fmm_module():
    try:
        import pyfmmlib._internal as internal
    except ImportError as error:
        raise ImportError(
            "the FMM baseline needs pyfmmlib, which is not installed: pip install 'fieldbench[fmm]'"
        ) from error
    return internal


@functools.lru_cache(maxsize=1)
def _openmp():
    """pyfmmlib's own OpenMP runtime (bundled next to it), to set its thread count; or None."""
    try:
        import pyfmmlib
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(os.path.dirname(pyfmmlib.__file__)), "pyfmmlib.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libgomp*.so*"))) or ["libgomp.so.1"]:
        try:
            library = ctypes.CDLL(path)
            library.omp_get_max_threads.restype = ctypes.c_int
            library.omp_set_num_threads.argtypes = [ctypes.c_int]
            return library
        except OSError:
            continue
    return None


@contextlib.contextmanager
def _threads(count):
    if count is None:
        yield
        return
    library = _openmp()
    if library is None:
        warnings.warn("cannot set pyfmmlib's thread count (its OpenMP runtime was not found); "
                      "set OMP_NUM_THREADS before starting Python instead", RuntimeWarning, stacklevel=4)
        yield
        return
    previous = library.omp_get_max_threads()
    library.omp_set_num_threads(int(count))
    try:
        yield
    finally:
        library.omp_set_num_threads(previous)


def _lfmm(iprec, positions, moments, targets, *, at_sources=False, hessians=False):
    """One ``lfmm2dparttarg`` call on point dipoles.

    positions (C, 2) and complex moments p_x + i p_y (C,); targets (T, 2). Returns
    (source values or None, target values), each a tuple (phi, f1, f2) of the analytic
    derivatives: phi, f1 = phi_x - i phi_y, f2 = phi_xx - i phi_xy (f2 None unless ``hessians``).
    Evaluation at sources excludes self-interaction; ``hessians`` applies to both.
    """
    internal = _fmm_module()
    count, ntarget = len(positions), len(targets)
    source = np.asfortranarray(positions.T, dtype=np.float64)
    dipvec = np.asfortranarray(np.stack([moments.real, moments.imag]), dtype=np.float64)
    dipstr = np.full(count, -1.0 / _TWO_PI, dtype=np.complex128)
    charge = np.zeros(count, dtype=np.complex128)
    alloc = max(ntarget, 1)
    target = np.asfortranarray(targets.T, dtype=np.float64) if ntarget else np.zeros((2, 1), order="F")
    on_targets = int(ntarget > 0)
    ier, pot, fld, hess, pottarg, fldtarg, hesstarg = internal.lfmm2dparttarg(
        int(iprec), source, 0, charge, 1, dipstr, dipvec,
        int(at_sources), int(at_sources), int(at_sources and hessians),
        ntarget, target,
        on_targets, np.zeros(alloc, np.complex128),
        on_targets, np.zeros((2, alloc), np.complex128, order="F"),
        int(on_targets and hessians), np.zeros((3, alloc), np.complex128, order="F"),
    )
    if ier:
        raise RuntimeError(f"pyfmmlib lfmm2dparttarg failed with error code {ier} (out of memory?)")

    def unpack(p, g, h):
        f2 = (h[0].real - 1j * h[1].real) if hessians else None
        return p.real.copy(), g[0].real - 1j * g[1].real, f2

    at = unpack(pot, fld, hess) if at_sources else None
    return at, (unpack(pottarg[:ntarget], fldtarg[:, :ntarget], hesstarg[:, :ntarget]) if ntarget else None)


# -- neighbour search ---------------------------------------------------------------------------

def _near_pairs(points, centers, reach):
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


# -- prism multipoles as a ring of dipoles ------------------------------------------------------

def _ring_size(ratio: float, tolerance: float) -> int:
    """Ring dipoles per prism so that the first unmatched multipole, ~ratio^n relative to the dipole
    at the edge of the near zone, is below tolerance (0: the point dipole is enough)."""
    if ratio <= 0:
        return 0
    # Relative size of the k-th term at the edge of the near zone: c_k ratio^(k-1), with
    # c_k = |Q_k| / (k r^(k-1) |Q_1|) <= ~1/k for rectangles of any aspect (0.33 at k = 3).
    needed = math.ceil(math.log(tolerance / 0.35) / math.log(ratio))
    if needed <= 2:  # a centred rectangle has no quadrupole: the dipole is good to ratio^2
        return 0
    return needed + needed % 2


def _order_to_ring(order: int) -> int:
    """Ring size that carries a prism's multipoles up to ``order`` (odd orders are the non-zero ones)."""
    if order <= 2:
        return 0
    return order + order % 2


class _Rings(NamedTuple):
    """The ring dipoles of the prisms: moments and absolute positions (Kp, n) complex, radius (Kp,),
    and ``row`` (K,): each source's row here, -1 for discs."""

    moments: np.ndarray
    positions: np.ndarray
    radius: np.ndarray
    row: np.ndarray

    @property
    def size(self) -> int:
        return self.moments.shape[1]


def _ring_phase(a, b, size: int) -> np.ndarray:
    """Angular offset of each prism's ring that keeps its dipoles as far as possible (at least a
    quarter of their spacing) from the corners, which lie on the same circle at +-alpha and
    pi +- alpha (the ring is symmetric under a half turn)."""
    step = _TWO_PI / size
    alpha = np.arctan2(b, a)
    low, high = np.sort(np.stack([np.mod(alpha, step), np.mod(-alpha, step)]), axis=0)
    inner = high - low
    return np.mod(np.where(inner >= step - inner, 0.5 * (low + high), 0.5 * (high + low + step)), step)


def _prism_ring(centers, magnetisations, half_sizes, size: int):
    """Ring dipoles on each prism's circumscribed circle that, together with the central dipole
    Q_1, reproduce the prism's multipoles Q_1..Q_n exactly (n = size, even).

    With phi = (1/2pi) Re sum_k Q_k / (k z^k) (``kernels2d.prism_multipoles``) and ring points
    w_j = rho e^{i theta0} w^j (w = e^{2 pi i/n}), the moments P_j solve
    sum_j P_j w^{jm} = S_m = Q_{m+1} / ((m+1) rho^m e^{i m theta0}) for m = 0..n-1, with S_0 = 0
    (the central dipole carries Q_1) and S_m = 0 for odd m (even Q_k vanish for a centred
    rectangle): P = fft(S) / n. The first unmatched order is Q_{n+1}. Returns moments and
    absolute positions (Kp, n) and the radius (Kp,).
    """
    mx, my = magnetisations[:, 0], magnetisations[:, 1]
    a, b = half_sizes[:, 0], half_sizes[:, 1]
    rho = np.hypot(a, b)
    scale = 1.0 / rho
    pp, pm = (a + 1j * b) * scale, (a - 1j * b) * scale
    mp, mm = (-a + 1j * b) * scale, (-a - 1j * b) * scale
    m = np.arange(size)
    power = (m + 2)[None, :]

    def face(sigma, z1, z2):  # sigma e (z2^(m+2) - z1^(m+2)) in unit-circle coordinates
        edge = z2 - z1
        unit = np.abs(edge) / edge
        return (sigma * unit)[:, None] * (z2[:, None] ** power - z1[:, None] ** power)

    total = face(mx, pm, pp) + face(-mx, mp, mm) + face(my, pp, mp) + face(-my, mm, pm)
    theta0 = _ring_phase(a, b, size)
    spectrum = (rho * rho)[:, None] * total * np.exp(-1j * m[None, :] * theta0[:, None]) / ((m + 1) * (m + 2))
    spectrum[:, (m == 0) | (m % 2 == 1)] = 0.0
    moments = np.fft.fft(spectrum, axis=1) / size
    angles = theta0[:, None] + (_TWO_PI / size) * m[None, :]
    positions = (centers[:, 0] + 1j * centers[:, 1])[:, None] + rho[:, None] * np.exp(1j * angles)
    # These float64 positions are what the FMM gets, and the local correction subtracts the ring at
    # exactly them: recomputing them from the centre would round differently, which near a ring
    # dipole (next to a corner) leaves a visible residue.
    return moments, positions, rho


# -- exact local corrections (jitted, in fixed-size chunks so nothing recompiles per call) ------

def _dipole_taylor(moment, z, delta):
    """Point dipole f = P / (2 pi z) at offset z, Taylor-stepped by delta: (phi, f1 = phi_x - i phi_y).

    A zero moment contributes exactly zero (also at z = 0: padding and excluded dipoles)."""
    inv = 1.0 / jnp.where(moment == 0, 1.0, z)
    f0 = moment * inv / _TWO_PI
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
    return _correction(kernels2d.disc_pair(dx, dy, mx, my, radius), moment, zbase, delta)


@jax.jit
def _prism_chunk(dx, dy, mx, my, a, b, moment, zbase, delta, base, ring_moments, ring_positions):
    return _correction(kernels2d.prism_near(dx, dy, mx, my, a, b), moment, zbase, delta, base, ring_moments,
                       ring_positions)


#: Pairs per call of the jitted corrections (one compilation per family and ring width).
_CHUNK = 8192


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


# -- validation ---------------------------------------------------------------------------------

def _validate(sources, points, iprec, variant, near, threads, prism_order, corners):
    if not isinstance(sources, Sources):
        raise TypeError(f"sources must be a fieldbench.Sources (e.g. Sources.discs(...)); got {type(sources).__name__}")
    if sources.dim != 2 or any(f not in (Family.DISC, Family.PRISM) for f in sources.families):
        names = ", ".join(f.name.lower() for f in sources.families) or f"{sources.dim}D sources"
        raise ValueError(f"the FMM baseline is 2D only (discs and prisms; pyfmmlib's 2D Laplace FMM); got {names}. "
                         "Use fieldbench.potential_and_field for 3D sources")
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError("points must be an array of numbers of shape (N, 2)") from error
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2); got {points.shape}")
    if not np.all(np.isfinite(points)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(points))[0])
        raise ValueError(f"points contains a non-finite value at index {index}; every coordinate must be finite")
    if isinstance(iprec, bool) or not isinstance(iprec, (int, np.integer)) or int(iprec) not in IPREC_TOLERANCE:
        raise ValueError(f"iprec must be one of {sorted(IPREC_TOLERANCE)} (pyfmmlib's precision flag: "
                         f"1 ~ 1e-5, 2 ~ 1e-8, 4 ~ 1e-15 relative); got {iprec!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    if isinstance(near, bool) or not isinstance(near, (int, float, np.integer, np.floating)) \
            or not math.isfinite(near) or near <= 0:
        raise ValueError(f"near must be a positive finite number (sizes); got {near!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ValueError(f"threads must be None or a positive integer; got {threads!r}")
    if prism_order is not None and (isinstance(prism_order, bool) or not isinstance(prism_order, (int, np.integer))
                                    or not 1 <= prism_order <= _MAX_RING):
        raise ValueError(f"prism_order must be None (automatic) or an integer in [1, {_MAX_RING}]; got {prism_order!r}")
    if corners not in ("raise", "finite-part"):
        raise ValueError(f"corners must be 'raise' or 'finite-part'; got {corners!r}")
    return points


def _segment_min(index, values, size):
    """Minimum of values per (sorted) index, inf where an index has none."""
    out = np.full(size, np.inf)
    if index.size:
        present, start = np.unique(index, return_index=True)
        out[present] = np.minimum.reduceat(values, start)
    return out


def _snap_radius2(centers, longest, rings, pair_source, distance2):
    """Squared radius, per near pair, within which a point is evaluated from its source's centre.

    Evaluating at the centre and stepping by r with the FMM's Hessian errs by ~(r / d)^2 in H,
    d = distance from the centre to the nearest other dipole of the FMM; subtracting the point
    dipole instead loses ~eps (s / r)^2. The two are equal at r = eps^(1/4) sqrt(s d) (error
    ~sqrt(eps) s / d), so the radius is SNAP_RADIUS sqrt(s min(s, d)). Only sources with a point
    within SNAP_RADIUS * s of their centre (but not at it) are examined (a neighbour search among
    centres). Exact coincidences always snap (the radius is >= 0).
    """
    # Exact coincidences snap whatever the radius: only sources with a point close to, but not
    # at, their centre need the neighbour search.
    close = (distance2 > 0) & (distance2 <= (SNAP_RADIUS * longest[pair_source]) ** 2)
    radius2 = np.zeros(distance2.shape)
    if not np.any(close):
        return radius2
    examined = np.unique(pair_source[close])
    reach = longest.copy()
    if rings is not None:
        reach[rings.row >= 0] += rings.radius
    here, other = _near_pairs(centers[examined], centers, reach)
    origin = centers[examined[here], 0] + 1j * centers[examined[here], 1]
    offset = origin - (centers[other, 0] + 1j * centers[other, 1])
    separation = np.where(offset != 0, np.abs(offset), np.inf)  # the merged centre itself is excluded
    nearest = _segment_min(here, separation, examined.size)
    if rings is not None:
        with_ring = rings.row[other] >= 0
        ring_gap = np.abs(origin[with_ring, None] - rings.positions[rings.row[other[with_ring]]]).min(axis=1)
        nearest = np.minimum(nearest, _segment_min(here[with_ring], ring_gap, examined.size))
    per_source = np.zeros(len(centers))
    per_source[examined] = SNAP_RADIUS ** 2 * longest[examined] * np.minimum(longest[examined], nearest)
    return per_source[pair_source]


# -- the solver ---------------------------------------------------------------------------------

def fmm_potential_and_field(sources: Sources, points, *, iprec: int = 1, variant: str = "corrected",
                            near: float = 1.0, threads: int | None = None, prism_order: int | None = None,
                            corners: str = "raise"):
    """Potential and field of 2D sources by pyfmmlib's FMM (paper Fig. 5): ``(phi (N,), H (N, 2))``.

    Args:
      sources: a 2D :class:`~fieldbench.Sources` (discs and/or prisms; 3D families raise ValueError).
      points: (N, 2) evaluation points (same length unit as the sources).
      iprec: pyfmmlib's precision flag, one of -2..5 (documented tolerance 0.5, 0.05, 5e-3, 5e-4,
        5e-7, 5e-10, 5e-13, 5e-16; measured about 1e-5, 1e-8 and 1e-15 relative for 1, 2 and 4).
      variant: ``"pure"`` (point dipoles only) or ``"corrected"`` (exact near field; see the module
        docstring).
      near: corrected variant, prisms: the exact correction covers every point within
        ``half_diagonal + near * longest_side`` of a prism's centre. Larger ``near`` means more
        exact pairs but fewer multipoles for the FMM (ring size ~ log(tol) / log(ratio),
        ratio = half_diagonal / (half_diagonal + near * longest_side): 12 dipoles for a square at
        iprec 1 and near = 1). Discs need no near zone (their dipole is exact outside), so only
        points inside a disc are corrected. Ignored by ``"pure"``.
      threads: OpenMP threads for pyfmmlib (None: its default, OMP_NUM_THREADS or all cores).
      prism_order: corrected variant: highest prism multipole order handed to the FMM
        (None: chosen from iprec and near so the truncation stays below the FMM's error; 1: the
        point dipole only, the cheapest, whose error just outside the near zone is ~1e-3 for
        squares and ~1e-2 for elongated prisms, decaying like (half_diagonal / d)^2).
      corners: corrected variant: a point exactly on a prism corner (field diverges) raises
        ValueError (``"raise"``) or gets the exact kernels' finite part (``"finite-part"``).

    Returns:
      phi (N,) and H = -grad(phi) (N, 2), float64 NumPy arrays, in the units of M.

    Accuracy, against ``fieldbench.potential_and_field``: ``"pure"`` matches it to the FMM's
    iprec outside discs, and for prisms only far away (relative error ~ c (half_diagonal / d)^2,
    c ~ 0.07 (squares, where it is ~(.)^4) to 0.3 (elongated)); inside a disc it returns the
    dipole's interior singular field, far from -M/2. ``"corrected"`` matches it to about the
    FMM's iprec everywhere, inside sources included; points exactly at a centre are exact to the
    FMM's accuracy, points about 1e-4 sizes from a centre get H to ~1e-8 (s / d) at worst
    (``SNAP_RADIUS``), and points r from a centre otherwise lose ~eps (s / r)^2 to cancellation.

    Cost: one or two FMM calls over M dipoles (corrected prisms: M (1 + n) with the ring size n
    above) and N targets, O(N + M); plus, for corrected, a cell-list search and one exact kernel
    evaluation per near pair, O(N + M) for uniformly spread sources. Points exactly at (or within
    SNAP_RADIUS of) a centre are evaluated at the sources (self term excluded), which costs an
    evaluation at every source. The first call per family and ring width also compiles the jitted
    exact kernels (~1-2 s each).

    Points at a source centre: see the module docstring ("pure": the coincident source's self
    term is dropped; "corrected": replaced by the exact value). Never returns NaN silently.
    """
    points = _validate(sources, points, iprec, variant, near, threads, prism_order, corners)
    iprec = int(iprec)
    count = points.shape[0]
    phi = np.zeros(count)
    field = np.zeros((count, 2))
    if len(sources) == 0 or count == 0:
        return phi, field
    _fmm_module()  # ImportError naming the extra, before any work

    family = np.asarray(sources.family)
    centers = np.ascontiguousarray(sources.centers, dtype=np.float64)
    magnetisations = np.asarray(sources.magnetisations, dtype=np.float64)
    half = np.asarray(sources.sizes, dtype=np.float64) / 2
    moments = sources.moments()
    moment = moments[:, 0] + 1j * moments[:, 1]
    is_prism = family == int(Family.PRISM)
    corrected = variant == "corrected"
    longest = 2 * half.max(axis=1)

    # Prism multipoles beyond the dipole (corrected only), as rings of dipoles.
    ring = 0
    if corrected and np.any(is_prism):
        if prism_order is None:
            radius = np.hypot(half[is_prism, 0], half[is_prism, 1])
            ratio = float(np.max(radius / (radius + near * longest[is_prism])))
            ring = _ring_size(ratio, _MULTIPOLE_TOLERANCE[iprec])
            if ring > _MAX_RING:
                raise ValueError(f"near={near} is too small for iprec={iprec}: the prisms would need {ring} multipoles "
                                 "in the FMM; increase near (e.g. 1.0)")
        else:
            ring = _order_to_ring(int(prism_order))
    rings = None
    if ring:
        row = np.full(len(sources), -1, np.int64)
        row[is_prism] = np.arange(int(is_prism.sum()))
        rings = _Rings(*_prism_ring(centers[is_prism], magnetisations[is_prism], half[is_prism], ring), row=row)
        ring_positions = np.stack([rings.positions.real.ravel(), rings.positions.imag.ravel()], axis=1)
        ring_flat = rings.moments.ravel()

    # Near pairs (corrected) or exact coincidences (pure), and the points to evaluate at a centre.
    if corrected:
        reach = np.where(is_prism, np.hypot(half[:, 0], half[:, 1]) + near * longest, half[:, 0])
    else:
        reach = np.zeros(len(sources))
    pair_point, pair_source = _near_pairs(points, centers, reach)
    offset = points[pair_point] - centers[pair_source]
    distance2 = offset[:, 0] ** 2 + offset[:, 1] ** 2
    if corrected and corners == "raise":
        on_corner = is_prism[pair_source] & np.all(np.abs(offset) == half[pair_source], axis=1)
        if np.any(on_corner):
            index = int(pair_point[np.argmax(on_corner)])
            raise ValueError(
                f"{int(np.unique(pair_point[on_corner]).size)} point(s) lie exactly on a prism corner (first: index "
                f"{index}, {points[index].tolist()}), where the field diverges logarithmically; move them, or pass "
                "corners='finite-part' to accept the documented finite part")
    if corrected:
        snap = distance2 <= _snap_radius2(centers, longest, rings, pair_source, distance2)
    else:
        snap = distance2 == 0
    snap_order = np.lexsort((distance2[snap], pair_point[snap]))
    snapped_points, first = np.unique(pair_point[snap][snap_order], return_index=True)
    snapped_sources = pair_source[snap][snap_order][first]

    # Centre dipoles, merged where centres coincide (then at most one dipole sits at any point).
    keys = centers.view(np.complex128).ravel()
    unique_keys, carrier = np.unique(keys, return_inverse=True)
    carrier = carrier.ravel()
    carrier_positions = np.stack([unique_keys.real, unique_keys.imag], axis=1)
    carrier_moments = np.bincount(carrier, moment.real, len(unique_keys)) \
        + 1j * np.bincount(carrier, moment.imag, len(unique_keys))

    # FMM: regular points at themselves; snapped points at their centre (self excluded) + Taylor.
    regular = np.ones(count, bool)
    regular[snapped_points] = False
    regular_index = np.flatnonzero(regular)
    base = points.copy()
    base[snapped_points] = centers[snapped_sources]
    delta = np.zeros(count, np.complex128)
    delta[snapped_points] = (points[snapped_points, 0] - base[snapped_points, 0]) \
        + 1j * (points[snapped_points, 1] - base[snapped_points, 1])
    phi0 = np.zeros(count)
    f1 = np.zeros(count, np.complex128)
    f2 = np.zeros(count, np.complex128)
    with _threads(threads):
        if snapped_points.size == 0:
            positions, strengths = carrier_positions, carrier_moments
            if ring:
                positions = np.concatenate([positions, ring_positions])
                strengths = np.concatenate([strengths, ring_flat])
            _, values = _lfmm(iprec, positions, strengths, points)
            phi0[:], f1[:] = values[0], values[1]
        else:
            stepped = bool(np.any(delta[snapped_points] != 0))  # Hessians only for a Taylor step
            at_centres, values = _lfmm(iprec, carrier_positions, carrier_moments, points[regular_index],
                                       at_sources=True, hessians=stepped)
            if values is not None:
                phi0[regular_index], f1[regular_index] = values[0], values[1]
            centre = carrier[snapped_sources]
            phi0[snapped_points] = at_centres[0][centre]
            f1[snapped_points] = at_centres[1][centre]
            if stepped:
                f2[snapped_points] = at_centres[2][centre]
            if ring:
                targets = np.concatenate([points[regular_index], carrier_positions[centre]])
                _, from_rings = _lfmm(iprec, ring_positions, ring_flat, targets, hessians=stepped)
                split = regular_index.size
                phi0[regular_index] += from_rings[0][:split]
                f1[regular_index] += from_rings[1][:split]
                phi0[snapped_points] += from_rings[0][split:]
                f1[snapped_points] += from_rings[1][split:]
                if stepped:
                    f2[snapped_points] += from_rings[2][split:]
    step = delta
    phi[:] = phi0 + np.real(step * (f1 + 0.5 * step * f2))
    gradient = f1 + f2 * step
    field[:, 0] = -gradient.real
    field[:, 1] = gradient.imag

    if corrected and pair_point.size:
        _add_corrections(phi, field, points, base, delta, pair_point, pair_source, carrier, snapped_points,
                         snapped_sources, family, centers, magnetisations, half, moment, rings)

    bad = ~(np.isfinite(phi) & np.all(np.isfinite(field), axis=1))
    if np.any(bad):
        if not corrected:
            index = int(np.argmax(bad))
            raise FloatingPointError(
                f"the pure FMM overflowed at {int(bad.sum())} point(s) (first: index {index}, {points[index].tolist()}) "
                "lying within ~1e-150 of a source centre, where a point dipole diverges; use variant='corrected'")
        from ..physics import potential_and_field

        # Corners were checked above; "finite-part" skips the exact API's own (N, M) corner scan.
        phi[bad], field[bad] = potential_and_field(sources, points[bad], corners="finite-part")
    return phi, field


def _add_corrections(phi, field, points, base, delta, pair_point, pair_source, carrier, snapped_points,
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
