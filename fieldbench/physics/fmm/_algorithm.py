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
    closed form (``fieldbench.families.disc`` and ``.prism``) added. Discs are exact dipoles outside, so their
    near zone is the disc itself. A prism's near zone is the circle of radius
    ``half_diagonal + near * longest_side`` around its centre (it holds every point within ``near``
    sizes of the prism); beyond it, the FMM carries the prism's multipoles up to an order chosen
    from ``iprec`` and ``near`` (a ring of point dipoles that reproduces its moments Q_1..Q_n
    exactly), so that the result matches the exact solver to about the FMM's accuracy everywhere,
    inside sources included.

Both return float64 ``phi`` (N,) and ``H = -grad(phi)`` (N, 2) in the units of M (A/m), with the
conventions of docs/physics.md. pyfmmlib's ``lfmm2dparttarg`` computes
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

import math
from typing import NamedTuple

import numpy as np

from ...sources import Family, Sources
from ._corrections import add_corrections
from ._loading import lfmm_dipoles, omp_threads, require_pyfmmlib
from ._neighbours import near_pairs, segment_min
from ._rings import MAX_RING, Rings, build_rings, ring_size_for

__all__ = ["fmm_potential_and_field", "check_prism_order", "VARIANTS", "IPREC_TOLERANCE", "SNAP_RADIUS"]

#: The two variants of the paper's Fig. 5.
VARIANTS = ("pure", "corrected")

#: pyfmmlib's requested relative tolerance per ``iprec`` (fmmlib2d documentation). Measured
#: errors are smaller: about 1e-5, 1e-8 and 1e-15 relative for iprec 1, 2 and 4 (docs/physics.md).
IPREC_TOLERANCE = {-2: 0.5, -1: 0.05, 0: 5e-3, 1: 5e-4, 2: 5e-7, 3: 5e-10, 4: 5e-13, 5: 5e-16}

#: Corrected variant: a point closer than SNAP_RADIUS * sqrt(s * min(s, d)) to a source centre
#: (s: the source's longest full extent, d: distance from that centre to the nearest other dipole
#: of the FMM) is evaluated from the FMM at that centre (self term excluded) plus a Taylor step,
#: instead of subtracting a huge point dipole from the FMM sum. The Taylor step errs by ~(r / d)^2
#: in H, the subtraction by ~eps (s / r)^2; both are ~1e-8 s / d at the switch, far less elsewhere.
SNAP_RADIUS = 1e-4


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
    if len(sources) == 0 or count == 0:
        return np.zeros(count), np.zeros((count, 2))
    require_pyfmmlib()  # ImportError naming the extra, before any work

    arrays = _source_arrays(sources)
    corrected = variant == "corrected"
    ring = 0
    if corrected and np.any(arrays.is_prism):
        ring = ring_size_for(arrays.half, arrays.longest, arrays.is_prism, iprec=iprec, near=near,
                             prism_order=prism_order)
    rings = build_rings(arrays.centers, arrays.magnetisations, arrays.half, arrays.is_prism, ring) if ring else None
    pairs = _near_zone(points, arrays, near if corrected else None)
    if corrected and corners == "raise":
        _refuse_corners(points, arrays, pairs)
    snapped = _snapped(pairs, arrays, rings, corrected)
    carriers = _merged_centre_dipoles(arrays)
    # The thread count is set here, not in a step: omp_threads' warning points at our caller.
    with omp_threads(threads):
        expansion = _fmm_expansion(iprec, points, arrays.centers, carriers, rings, snapped)
    phi, field = _taylor_step(expansion)
    if corrected and pairs.point.size:
        add_corrections(phi, field, points, expansion.base, expansion.delta, pairs.point, pairs.source,
                        carriers.carrier, snapped.points, snapped.sources, arrays.family, arrays.centers,
                        arrays.magnetisations, arrays.half, arrays.moment, rings)
    _replace_non_finite(sources, points, phi, field, corrected)
    return phi, field


# -- the steps ----------------------------------------------------------------------------------

class _SourceArrays(NamedTuple):
    """The sources as float64 NumPy arrays: family codes, centres (contiguous: their bytes key the
    merge of coincident centres), magnetisations, half sizes, complex moments p_x + i p_y, whether
    each is a prism, and its longest full extent."""

    family: np.ndarray
    centers: np.ndarray
    magnetisations: np.ndarray
    half: np.ndarray
    moment: np.ndarray
    is_prism: np.ndarray
    longest: np.ndarray


def _source_arrays(sources: Sources) -> _SourceArrays:
    family = np.asarray(sources.family)
    half = np.asarray(sources.sizes, dtype=np.float64) / 2
    moments = sources.moments()
    return _SourceArrays(
        family=family,
        centers=np.ascontiguousarray(sources.centers, dtype=np.float64),
        magnetisations=np.asarray(sources.magnetisations, dtype=np.float64),
        half=half,
        moment=moments[:, 0] + 1j * moments[:, 1],
        is_prism=family == int(Family.PRISM),
        longest=2 * half.max(axis=1),
    )


class _Pairs(NamedTuple):
    """(point, source) pairs sorted by point, with offset = point - centre and its squared length."""

    point: np.ndarray
    source: np.ndarray
    offset: np.ndarray
    distance2: np.ndarray


def _near_zone(points, arrays: _SourceArrays, near: float | None) -> _Pairs:
    """Every pair in a source's near zone (corrected: ``near`` given; a disc's is the disc itself),
    or, for the pure variant (``near`` None), every point exactly at a source centre."""
    if near is not None:
        half, longest = arrays.half, arrays.longest
        reach = np.where(arrays.is_prism, np.hypot(half[:, 0], half[:, 1]) + near * longest, half[:, 0])
    else:
        reach = np.zeros(len(arrays.centers))
    point, source = near_pairs(points, arrays.centers, reach)
    offset = points[point] - arrays.centers[source]
    return _Pairs(point, source, offset, offset[:, 0] ** 2 + offset[:, 1] ** 2)


def _refuse_corners(points, arrays: _SourceArrays, pairs: _Pairs) -> None:
    """ValueError if a point lies exactly on a prism corner (corrected, ``corners="raise"``)."""
    on_corner = arrays.is_prism[pairs.source] & np.all(np.abs(pairs.offset) == arrays.half[pairs.source], axis=1)
    if np.any(on_corner):
        index = int(pairs.point[np.argmax(on_corner)])
        raise ValueError(
            f"{int(np.unique(pairs.point[on_corner]).size)} point(s) lie exactly on a prism corner (first: index "
            f"{index}, {points[index].tolist()}), where the field diverges logarithmically; move them, or pass "
            "corners='finite-part' to accept the documented finite part")


class _Snapped(NamedTuple):
    """Points evaluated from a source centre instead of at themselves, and that source (the nearest)."""

    points: np.ndarray
    sources: np.ndarray


def _snapped(pairs: _Pairs, arrays: _SourceArrays, rings: Rings | None, corrected: bool) -> _Snapped:
    """Points at a centre (pure) or within the snap radius of one (corrected; ``_snap_radius2``),
    each with its nearest such source."""
    if corrected:
        snap = pairs.distance2 <= _snap_radius2(arrays.centers, arrays.longest, rings, pairs.source, pairs.distance2)
    else:
        snap = pairs.distance2 == 0
    snap_order = np.lexsort((pairs.distance2[snap], pairs.point[snap]))
    points, first = np.unique(pairs.point[snap][snap_order], return_index=True)
    return _Snapped(points, pairs.source[snap][snap_order][first])


class _Carriers(NamedTuple):
    """The centre dipoles handed to the FMM, merged where centres coincide (then at most one dipole
    sits at any point): ``carrier`` (K,) is each source's dipole, positions (C, 2), moments (C,)."""

    carrier: np.ndarray
    positions: np.ndarray
    moments: np.ndarray


def _merged_centre_dipoles(arrays: _SourceArrays) -> _Carriers:
    keys = arrays.centers.view(np.complex128).ravel()
    unique_keys, carrier = np.unique(keys, return_inverse=True)
    carrier = carrier.ravel()
    positions = np.stack([unique_keys.real, unique_keys.imag], axis=1)
    moment = arrays.moment
    moments = np.bincount(carrier, moment.real, len(unique_keys)) + 1j * np.bincount(carrier, moment.imag,
                                                                                     len(unique_keys))
    return _Carriers(carrier, positions, moments)


class _Expansion(NamedTuple):
    """The FMM's sum about each point's expansion centre ``base`` (the point itself, or the source
    centre it snapped to, whose own dipole is then excluded), ``delta`` = point - base as a complex
    number: phi, f1 = phi_x - i phi_y and f2 = phi_xx - i phi_xy there (f2 zero unless a Taylor
    step needs it)."""

    base: np.ndarray
    delta: np.ndarray
    phi: np.ndarray
    f1: np.ndarray
    f2: np.ndarray


def _fmm_expansion(iprec: int, points, centers, carriers: _Carriers, rings: Rings | None,
                   snapped: _Snapped) -> _Expansion:
    """The FMM calls: regular points at themselves; snapped points at their centre, from the
    evaluation at the sources (self term excluded), with Hessians only if a Taylor step follows.
    One call without snapped points, else one over the centre dipoles and one over the rings."""
    count = len(points)
    regular = np.ones(count, bool)
    regular[snapped.points] = False
    regular_index = np.flatnonzero(regular)
    base = points.copy()
    base[snapped.points] = centers[snapped.sources]
    delta = np.zeros(count, np.complex128)
    delta[snapped.points] = (points[snapped.points, 0] - base[snapped.points, 0]) \
        + 1j * (points[snapped.points, 1] - base[snapped.points, 1])
    phi0 = np.zeros(count)
    f1 = np.zeros(count, np.complex128)
    f2 = np.zeros(count, np.complex128)
    ring_positions, ring_moments = rings.as_dipoles() if rings is not None else (None, None)
    if snapped.points.size == 0:
        positions, strengths = carriers.positions, carriers.moments
        if rings is not None:
            positions = np.concatenate([positions, ring_positions])
            strengths = np.concatenate([strengths, ring_moments])
        _, values = lfmm_dipoles(iprec, positions, strengths, points)
        phi0[:], f1[:] = values[0], values[1]
        return _Expansion(base, delta, phi0, f1, f2)
    stepped = bool(np.any(delta[snapped.points] != 0))  # Hessians only for a Taylor step
    at_centres, values = lfmm_dipoles(iprec, carriers.positions, carriers.moments, points[regular_index],
                                      at_sources=True, hessians=stepped)
    if values is not None:
        phi0[regular_index], f1[regular_index] = values[0], values[1]
    centre = carriers.carrier[snapped.sources]
    phi0[snapped.points] = at_centres[0][centre]
    f1[snapped.points] = at_centres[1][centre]
    if stepped:
        f2[snapped.points] = at_centres[2][centre]
    if rings is not None:
        targets = np.concatenate([points[regular_index], carriers.positions[centre]])
        _, from_rings = lfmm_dipoles(iprec, ring_positions, ring_moments, targets, hessians=stepped)
        split = regular_index.size
        phi0[regular_index] += from_rings[0][:split]
        f1[regular_index] += from_rings[1][:split]
        phi0[snapped.points] += from_rings[0][split:]
        f1[snapped.points] += from_rings[1][split:]
        if stepped:
            f2[snapped.points] += from_rings[2][split:]
    return _Expansion(base, delta, phi0, f1, f2)


def _taylor_step(expansion: _Expansion) -> tuple[np.ndarray, np.ndarray]:
    """phi and H = -grad(phi) at the points: the expansion stepped by delta to second order."""
    step, f1, f2 = expansion.delta, expansion.f1, expansion.f2
    phi = expansion.phi + np.real(step * (f1 + 0.5 * step * f2))
    gradient = f1 + f2 * step
    field = np.zeros((len(phi), 2))
    field[:, 0] = -gradient.real
    field[:, 1] = gradient.imag
    return phi, field


def _replace_non_finite(sources: Sources, points, phi, field, corrected: bool) -> None:
    """Never a silent NaN: the pure variant raises where a point dipole overflowed; the corrected
    one recomputes those points with the exact direct sum, in place."""
    bad = ~(np.isfinite(phi) & np.all(np.isfinite(field), axis=1))
    if not np.any(bad):
        return
    if not corrected:
        index = int(np.argmax(bad))
        raise FloatingPointError(
            f"the pure FMM overflowed at {int(bad.sum())} point(s) (first: index {index}, {points[index].tolist()}) "
            "lying within ~1e-150 of a source centre, where a point dipole diverges; use variant='corrected'")
    # Looked up on fieldbench.physics at call time: that package imports this one (a top-level
    # import would be circular).
    from .. import potential_and_field

    # Corners were checked above; "finite-part" skips the exact API's own (N, M) corner scan.
    phi[bad], field[bad] = potential_and_field(sources, points[bad], corners="finite-part")


# -- validation and the snap radius -------------------------------------------------------------

def check_prism_order(prism_order) -> None:
    """ValueError unless ``prism_order`` is None (automatic) or an integer in [1, MAX_RING]."""
    if prism_order is not None and (isinstance(prism_order, bool) or not isinstance(prism_order, (int, np.integer))
                                    or not 1 <= prism_order <= MAX_RING):
        raise ValueError(f"prism_order must be None (automatic) or an integer in [1, {MAX_RING}]; got {prism_order!r}")


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
    check_prism_order(prism_order)
    if corners not in ("raise", "finite-part"):
        raise ValueError(f"corners must be 'raise' or 'finite-part'; got {corners!r}")
    return points


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
    here, other = near_pairs(centers[examined], centers, reach)
    origin = centers[examined[here], 0] + 1j * centers[examined[here], 1]
    offset = origin - (centers[other, 0] + 1j * centers[other, 1])
    separation = np.where(offset != 0, np.abs(offset), np.inf)  # the merged centre itself is excluded
    nearest = segment_min(here, separation, examined.size)
    if rings is not None:
        with_ring = rings.row[other] >= 0
        ring_gap = np.abs(origin[with_ring, None] - rings.positions[rings.row[other[with_ring]]]).min(axis=1)
        nearest = np.minimum(nearest, segment_min(here[with_ring], ring_gap, examined.size))
    per_source = np.zeros(len(centers))
    per_source[examined] = SNAP_RADIUS ** 2 * longest[examined] * np.minimum(longest[examined], nearest)
    return per_source[pair_source]
