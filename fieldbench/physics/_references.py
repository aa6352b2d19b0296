"""Independent reference fields: H of any :class:`~fieldbench.Sources` computed by external libraries.

:func:`reference_field` evaluates the field H = -grad(phi) (docs/physics.md conventions: H in the units
of M, A/m in, A/m out) of a source collection with one of two third-party libraries, so that any
result of fieldbench's own solver can be cross-checked against code written by someone else:

``"magpylib"`` (a core dependency)
    Closed forms of magpylib's functional interface (``magpylib.func``), vectorised over every
    (point, source) pair: cuboids, spheres, and for the 2D families long cuboids and long
    cylinders (axis z) evaluated at z = 0. (A magpylib without ``magpylib.func`` is used through
    its magnet objects, ``magnetization=M``, one object per source and length.)
``"magtense"`` (``pip install 'fieldbench[magtense]'``)
    MagTense 3.0.1 tiles, mu_r = 1, magnetisation set directly (not through its easy axis, which
    MagTense rounds to 9 decimals): prisms (tile_type 2, ``size`` = FULL sides, ``offset`` =
    centre), spheres (tile_type 6, ``size[0]`` = radius) and cylinders (tile_type 1,
    ``center_pos = [R/2, 0, 0]``, ``dev_center = [R, 2 pi, L]``), evaluated with ``get_H_field``
    (its ``get_H_field_fmm`` returns zeros in the PyPI build). MagTense returns H in A/m with
    fieldbench's sign (checked: sphere inside -M/3, disc inside -M/2).

2D sources (discs, prisms) are magnets of finite length L along z evaluated in the plane z = 0.
The length error is a smooth function of L (about (r/L)^2, r the distance of the point from the
source axis), while float64 rounding inside both libraries grows like eps (L / size)^2, so a few
moderate lengths are extrapolated to L = infinity instead of taking one huge L: six lengths
L_j = L_0 1.5^j with L_0 = 3 (r + R_s) (R_s the cross-section's circumradius; MagTense, which
takes one length per call, uses L_0 rounded up to a power of sqrt(2) times 2.5 R_s), combined by
polynomial (Neville) extrapolation to u = 0 in u = 1 - (L/2) / sqrt(r^2 + R_s^2 + L^2/4) (about
2 (r^2 + R_s^2) / L^2; the length error of a line of dipoles is a polynomial in this kind of
variable, and it extrapolated 2-4x better than 1/L^2 far from the source).

Achieved accuracy: relative error per point, ||H_ref - H|| / ||H||, the largest over 40 seeded
configurations of three sources (tests/test_references.py), measured against fieldbench's solver
and, for cuboids and the 2D families, against the closed forms evaluated in long double.
"near" is inside and within a few sizes outside, "face" 1e-3 of the size from a face, "corner"
1e-3 of the size from a corner or (cuboids) an edge, "far" 10-100 times the largest size away:

========  ==========  ========  ========  ========  ========
family    backend     near      face      corner    far
========  ==========  ========  ========  ========  ========
sphere    both        2e-15     2e-15     --        1e-14
cuboid    magpylib    2e-13     5e-15     1e-11     2e-8
cuboid    MagTense    2e-13     5e-15     1e-11     3e-9
prism     magpylib    3e-10     7e-11     2e-8      2e-8
prism     MagTense    7e-10     3e-10     2e-8      3e-8
disc      magpylib    3e-10     8e-11     --        2e-8
disc      MagTense    2e-8      4e-10     --        2e-8
========  ==========  ========  ========  ========  ========

The far-field errors are cancellation inside the libraries' closed forms (the terms are O(1), the
field O((size/r)^3) for cuboids, O((size/r)^2) for the long magnets; fieldbench itself switches to
exact multipole series far from prisms and cuboids and keeps ~1e-15 there). MagTense's prism kernel
is evaluated with the point reflected into the octant x, y, z <= 0 (and M reflected with it):
elsewhere it errs by up to 25% near the extension of an edge. Near a prism corner the long-magnet
rounding grows like eps (L / rho)^2, rho the distance to the corner (2e-6 at 1e-4 of the size).
MagTense integrates its cylinder numerically (QUADPACK) and is accurate to a few 1e-9 only (5e-9 for
one source; sources whose fields cancel amplify that). Its full cylinder is a cylinder piece from
theta0 - pi to theta0 + pi, and within ~1e-8 of that seam half-plane its field is wrong by up to
200%: the seam is always put on the side of the source opposite to the point.

Points on a boundary get the mean of the inside and outside limits, as in fieldbench's solver:
such pairs are evaluated at p +- delta n and p +- 2 delta n (delta = 1e-6 of the size) and
extrapolated to delta = 0 (measured error: a few 1e-11). Points exactly on a prism corner or a
cuboid edge, where H diverges, raise ValueError; so do points too close to a 2D prism corner for
the long-magnet construction (closer than ~5e-5 of the size; the error is 2e-6 at 1e-4), and
(MagTense only) points within 2e-4 R of a disc's rim, where MagTense's cylinder kernel loses its
accuracy (4e-8 at 1e-4 R, 0.3 at 1e-5 R). Near a disc's axis MagTense returns NaN (and loses
digits within 1e-2 R); there the field is averaged over a small circle around the point, which is
exact for the extrapolated 2D field (harmonic, and uniform inside a disc).
A NaN from a backend is never returned: it raises RuntimeError.

Speed on 2 CPU cores, (point, source) pairs per second: magpylib 1.4e6 (cuboids), 2.8e6
(spheres), 2e5-3e5 (prisms, discs: six lengths each); MagTense 6e5 (cuboids), 1.6e6 (spheres),
5e4 (prisms) and only ~200 for discs (its cylinder is integrated numerically).
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from ..families import SourceFamily, as_3d
from ..sources import Sources, as_points

__all__ = ["BACKENDS", "reference_backends", "reference_field"]

#: Names accepted by :func:`reference_field`'s ``backend``.
BACKENDS = ("magpylib", "magtense")

_INSTALL_HINT = {
    "magpylib": "pip install magpylib  (a core dependency of fieldbench: reinstall fieldbench)",
    "magtense": "pip install 'fieldbench[magtense]'",
}

# -- long-magnet extrapolation (2D families) -------------------------------------------------------
_LEVELS = 6  # lengths per extrapolation
_RATIO = 1.5  # L_{j+1} / L_j
_ALPHA = 3.0  # L_0 / (r + R_s) with a length per pair (magpylib.func)
_ALPHA_BINNED = 2.5  # L_0 / R_s / sqrt(2)^k with one length per call (MagTense, magpylib objects)
#: A 2D prism pair is refused when eps (L_max / rho)^2, rho the distance to the nearest corner,
#: exceeds this (the measured error is ~100x below that estimate: a few 1e-6 at the limit).
_CORNER_ROUNDING_LIMIT = 1e-4
# -- boundaries ------------------------------------------------------------------------------------
_NUDGE = 1e-6  # delta / size for points exactly on a boundary
#: Largest number of (point, source) pairs handled at once (bounds the memory).
_PAIR_CHUNK = 1 << 15


# ==================================================================================================
# public API
# ==================================================================================================
def reference_backends() -> tuple[str, ...]:
    """The backends of :func:`reference_field` that can be imported here, in :data:`BACKENDS` order."""
    available = []
    for name in BACKENDS:
        try:
            _engine(name)
        except ImportError:
            continue
        available.append(name)
    return tuple(available)


def reference_field(sources: Sources, points, backend: str = "magpylib") -> np.ndarray:
    """Field H of a source collection computed by an external library (independent reference).

    Args:
      sources: any :class:`~fieldbench.Sources` (families may mix; 2D or 3D).
      points: (N, d) evaluation points, d = ``sources.dim``.
      backend: ``"magpylib"`` (default) or ``"magtense"`` (needs ``pip install
        'fieldbench[magtense]'``); see :data:`BACKENDS` and :func:`reference_backends`.

    Returns:
      H = -grad(phi), a NumPy float64 array of shape (N, d), in the units of M (A/m for M in A/m).
      On a boundary it is the mean of the inside and outside limits. Worst relative error per
      point (module docstring: the full table): spheres 1e-14; cuboids 1e-13 (magpylib) and
      1e-11 (MagTense) near the source; 2D families 5e-10 near the source (MagTense discs 2e-8),
      2e-8 at 1e-3 of the size from a prism corner; every family but spheres 2e-8 at 100 sizes
      (cancellation inside the libraries' closed forms).

    Raises:
      ValueError: unknown backend, bad points, a point on a prism corner / cuboid edge (where H
        diverges), a point too close to a 2D prism corner for the long-magnet construction, or
        (MagTense) a point within 2e-4 R of a disc's rim.
      ImportError: the backend's package is missing (the message names the pip extra).
      RuntimeError: the backend returned a non-finite value.
    """
    if not isinstance(sources, Sources):
        raise TypeError(f"sources must be a fieldbench.Sources (e.g. Sources.discs(...)); got {type(sources).__name__}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available backends: {', '.join(map(repr, BACKENDS))}")
    points = as_points(points, sources.dim)
    engine = _engine(backend)
    field = np.zeros(points.shape)
    if len(sources) == 0 or points.shape[0] == 0:
        return field
    for family in sources.families:
        part = sources.select(family)
        centers = np.asarray(part.centers, dtype=np.float64)
        magnetisations = np.asarray(part.magnetisations, dtype=np.float64)
        sizes = np.asarray(part.sizes, dtype=np.float64)
        step = max(1, _PAIR_CHUNK // len(part))
        for start in range(0, points.shape[0], step):
            chunk = points[start:start + step]
            field[start:start + step] += _family_field(
                engine, family.definition, chunk, centers, magnetisations, sizes, first_index=start)
    if not np.all(np.isfinite(field)):  # defensive: every row was checked already
        bad = np.flatnonzero(~np.all(np.isfinite(field), axis=1))
        raise RuntimeError(
            f"backend {backend!r} produced a non-finite field at {bad.size} point(s), first index {bad[0]}")
    return field


# ==================================================================================================
# pairs -> rows -> backend -> pairs -> points
# ==================================================================================================
def _family_field(engine, family: SourceFamily, points, centers, magnetisations, sizes, first_index: int):
    """Field of the sources of one family at a chunk of points: (n, d)."""
    n, dim = points.shape
    k = centers.shape[0]
    offsets = (points[:, None, :] - centers[None, :, :]).reshape(n * k, dim)  # as fieldbench computes them
    pair_point = np.repeat(np.arange(n), k)
    pair_source = np.tile(np.arange(k), n)
    pair_m = magnetisations[pair_source]
    pair_size = sizes[pair_source]

    rows = _expand_boundaries(engine, family, offsets, pair_size, pair_point, first_index, points)
    row_pair, row_offset, row_weight = rows
    row_h = _evaluate_rows(engine, family, offsets, pair_size, pair_m, pair_source,
                           row_pair, row_offset, pair_point, first_index, points)
    weighted = row_h * row_weight[:, None]
    pair_h = np.stack([np.bincount(row_pair, weights=weighted[:, j], minlength=n * k) for j in range(dim)], axis=1)
    return pair_h.reshape(n, k, dim).sum(axis=1)  # pairs are ordered point-major


def _expand_boundaries(engine, family, offsets, size, pair_point, first_index, points):
    """Rows to evaluate: (pair index, offset, weight), with boundary pairs replaced by stencils."""
    half = size / 2
    singular = family.on_singular_set(offsets, half)
    if np.any(singular):
        i = np.flatnonzero(singular)[0]
        raise ValueError(
            f"{int(np.sum(singular))} point(s) lie exactly on {family.singular_set}, where the field diverges "
            f"(first: index {first_index + pair_point[i]}, {points[pair_point[i]].tolist()}); move them")
    refusals = family.magtense_refusals(offsets, size) if engine.name == "magtense" else None
    if refusals is not None and np.any(refusals[0]):
        bad, (where, why) = refusals
        i = np.flatnonzero(bad)[0]
        raise ValueError(f"{int(np.sum(bad))} point(s) lie {where} (first: index {first_index + pair_point[i]}, "
                         f"{points[pair_point[i]].tolist()}), {why}")
    surface, normal, scale = family.on_boundary(offsets, half)

    plain = np.flatnonzero(~surface)
    row_pair = [plain]
    row_offset = [offsets[plain]]
    row_weight = [np.ones(plain.size)]
    if np.any(surface):
        # mean of both one-sided limits, extrapolated in delta: 2 mean(delta) - mean(2 delta)
        idx = np.flatnonzero(surface)
        delta = (_NUDGE * scale[idx])[:, None] * normal[idx]
        for factor, weight in ((1.0, 1.0), (-1.0, 1.0), (2.0, -0.5), (-2.0, -0.5)):
            row_pair.append(idx)
            row_offset.append(offsets[idx] + factor * delta)
            row_weight.append(np.full(idx.size, weight))
    row_pair = np.concatenate(row_pair)
    row_offset = np.concatenate(row_offset)
    row_weight = np.concatenate(row_weight)
    if engine.name == "magtense":
        row_pair, row_offset, row_weight = family.magtense_rows(row_pair, row_offset, row_weight, half)
    return row_pair, row_offset, row_weight


def _evaluate_rows(engine, family, pair_offsets, pair_size, pair_m, pair_source, row_pair, row_offset,
                   pair_point, first_index, points):
    """Field of each row's source at the row's offset (source at the origin): (rows, d)."""
    size = pair_size[row_pair]
    m = pair_m[row_pair]
    if family.dim == 3:
        group = (pair_source[row_pair], np.zeros(row_pair.size, dtype=np.int64))
        h = engine.evaluate(family, row_offset, size, m, None, group)
        _check_finite(engine, h, row_pair, pair_point, first_index, points)
        return h

    # 2D: a magnet of length L along z, evaluated at z = 0, extrapolated to L = infinity.
    r = np.sqrt(np.sum(pair_offsets[row_pair] ** 2, axis=1))  # the pair's own distance (stencils share it)
    circumradius = family.reference_radius(size)
    reach = r + circumradius
    if engine.per_row_length:
        length0 = _ALPHA * reach
        group = None
    else:
        steps = np.ceil(2.0 * np.log2(np.maximum(reach / circumradius, 1.0)) - 1e-12)
        length0 = _ALPHA_BINNED * circumradius * np.sqrt(2.0) ** steps
        group = (pair_source[row_pair], steps.astype(np.int64))
    lengths = [length0 * _RATIO ** j for j in range(_LEVELS)]

    rho2 = family.reference_hazard(row_offset, size)
    if rho2 is not None:
        _check_corner_rounding(rho2, lengths[-1], row_pair, pair_point, first_index, points)

    values = []
    for length in lengths:
        h = engine.evaluate(family, row_offset, size, m, length, group)
        _check_finite(engine, h, row_pair, pair_point, first_index, points)
        values.append(h)
    reff2 = r * r + circumradius * circumradius
    abscissae = []
    for length in lengths:
        t = 4.0 * reff2 / (length * length)
        root = np.sqrt(1.0 + t)
        abscissae.append((t / ((root + 1.0) * root))[:, None])  # 1 - (L/2)/sqrt(reff^2 + L^2/4), stably
    return _extrapolate_to_zero(abscissae, values)


def _extrapolate_to_zero(xs, values):
    """Neville's scheme: the interpolating polynomial through (xs[j], values[j]) evaluated at x = 0."""
    table = list(values)
    count = len(xs)
    for k in range(1, count):
        table = [(xs[i] * table[i + 1] - xs[i + k] * table[i]) / (xs[i] - xs[i + k]) for i in range(count - k)]
    return table[0]


def _check_corner_rounding(rho2, longest, row_pair, pair_point, first_index, points):
    """Refuse rows whose long-magnet rounding, eps (L / rho)^2, exceeds the limit (rho2 = rho^2 to
    the family's hazard: a prism corner)."""
    estimate = np.finfo(np.float64).eps * longest * longest / np.maximum(rho2, np.finfo(np.float64).tiny)
    bad = estimate > _CORNER_ROUNDING_LIMIT
    if np.any(bad):
        i = np.flatnonzero(bad)[0]
        p = pair_point[row_pair[i]]
        raise ValueError(
            f"{int(np.sum(bad))} point(s) lie too close to a prism corner for a long-magnet reference "
            f"(first: index {first_index + p}, {points[p].tolist()}, {np.sqrt(rho2[i]):.3g} from the corner): float64 "
            "rounding inside the backend grows like eps (L / distance)^2; move them at least ~1e-4 of the "
            "prism's size away from its corners")


def _check_finite(engine, h, row_pair, pair_point, first_index, points):
    finite = np.all(np.isfinite(h), axis=1)
    if not np.all(finite):
        i = np.flatnonzero(~finite)[0]
        p = pair_point[row_pair[i]]
        raise RuntimeError(
            f"{engine.name} returned a non-finite field for {int(np.sum(~finite))} (point, source) pair(s) "
            f"(first: point index {first_index + p}, {points[p].tolist()}); such points usually sit on or "
            "extremely close to an edge of a source (for 2D sources: of the long magnet standing in for it)")


# ==================================================================================================
# backends: evaluate(family, offsets (P, d), sizes (P, d), M (P, d), length (P,) | None, group)
# -> H (P, d) of one source per row, centred at the origin (sizes FULL extents)
# ==================================================================================================
class _Magpylib:
    name = "magpylib"

    def __init__(self):
        try:
            import magpylib
        except ImportError as error:
            raise ImportError(f"backend 'magpylib' needs magpylib: {_INSTALL_HINT['magpylib']}") from error
        self.magpylib = magpylib
        self.func = getattr(magpylib, "func", None)
        # magpylib's functional interface takes a length per row; without it (older magpylib),
        # sources are built as objects, one per group of rows sharing a length.
        self.per_row_length = self.func is not None and all(
            hasattr(self.func, f) for f in ("cuboid_field", "cylinder_field", "sphere_field"))

    def evaluate(self, family, offsets, size, m, length, group):
        if self.per_row_length:
            return self._evaluate_func(family, offsets, size, m, length)
        return _grouped(self._evaluate_objects, family, offsets, size, m, length, group)

    def _evaluate_func(self, family, offsets, size, m, length):
        if offsets.shape[0] == 0:
            return np.zeros(offsets.shape)
        pol = self.magpylib.mu_0 * as_3d(m)  # functional interface takes J = mu0 M; H comes back in A/m
        return family.magpylib_field(self.func, as_3d(offsets), size, pol, length)[:, :family.dim]

    def _evaluate_objects(self, family, offsets, size, m, length):
        source = family.magpylib_magnet(self.magpylib.magnet, size, as_3d(m[None])[0], length)
        h = np.asarray(source.getH(as_3d(offsets)), dtype=np.float64).reshape(-1, 3)
        return h[:, :family.dim]


class _MagTense:
    name = "magtense"
    per_row_length = False

    def __init__(self):
        try:
            from magtense import magstatics
        except ImportError as error:
            raise ImportError(f"backend 'magtense' needs MagTense 3.0.1: {_INSTALL_HINT['magtense']}") from error
        except OSError as error:  # the Fortran extension or its runtime failed to load
            raise ImportError(f"backend 'magtense': MagTense is installed but failed to load ({error}); "
                              f"reinstall it: {_INSTALL_HINT['magtense']}") from error
        self.magstatics = magstatics

    def evaluate(self, family, offsets, size, m, length, group):
        return _grouped(self._evaluate_tile, family, offsets, size, m, length, group)

    def _evaluate_tile(self, family, offsets, size, m, length):
        common = dict(offset=[0.0, 0.0, 0.0], rot=[0.0, 0.0, 0.0], mu_r_ea=1.0, mu_r_oa=1.0,
                      M_rem=1.0, easy_axis=[1.0, 0.0, 0.0])

        def tiles(**shape):
            return self.magstatics.Tiles(1, **shape, **common)

        return family.magtense_field(tiles, self._run, offsets, size, m, length)

    def _run(self, tile, m, offsets, dim):
        tile.M = np.asfortranarray(as_3d(np.asarray(m)[None]))  # exact M; the easy axis is rounded to 9 decimals
        pts = np.asfortranarray(as_3d(offsets))
        with _silenced_stdout():
            h = self.magstatics.get_H_field(tile, pts)
        return np.asarray(h, dtype=np.float64).reshape(-1, 3)[:, :dim]


def _grouped(evaluate_one, family, offsets, size, m, length, group):
    """Call ``evaluate_one(family, offsets, size, m, length)`` once per group of rows sharing a source
    and a length (rows of one group have identical size, M and length)."""
    out = np.zeros(offsets.shape)
    if offsets.shape[0] == 0:
        return out
    source, step = group
    _, inverse = np.unique(np.column_stack([source, step]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for g in range(int(inverse.max()) + 1):
        rows = np.flatnonzero(inverse == g)
        first = rows[0]
        out[rows] = evaluate_one(family, offsets[rows], size[first], m[first],
                                 None if length is None else float(length[first]))
    return out


@contextlib.contextmanager
def _silenced_stdout():
    """Silence file descriptor 1 (MagTense's Fortran prints there, bypassing sys.stdout)."""
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - a closed or odd sys.stdout must not break the computation
        pass
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_ENGINES: dict[str, object] = {}
_ENGINE_CLASSES = {"magpylib": _Magpylib, "magtense": _MagTense}


def _engine(name: str):
    if name not in _ENGINES:
        _ENGINES[name] = _ENGINE_CLASSES[name]()
    return _ENGINES[name]
