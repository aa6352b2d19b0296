"""What a source family is: the abstract definition every family module implements.

A family is one uniformly magnetised shape (a disc, a prism, ...). Its definition holds everything
the package needs to know about it, so that no other layer branches on the family:

- identity: ``name`` (lower case, the name in datasets' ``family`` column) and ``code`` (the
  integer stored in datasets: never renumber), ``dim`` (2: infinite along z; 3) and ``is_round``
  (a single size, the radius, repeated on every axis);
- geometry (NumPy, elementwise over leading axes): ``measure``, ``contains``,
  ``signed_distance``, ``overlaps``, ``sizes_from_draws``, ``surface_points``;
- physics (pure ``jax.numpy``): ``prepare`` and ``pair``, the closed-form kernel of one
  (point, source) pair, and ``far_ratio``, where the kernel switches to a far-field series;
- singular points: ``singular_set`` (where H diverges) and ``on_singular_set``;
- independent references: how magpylib and MagTense model the family (``magpylib_field``,
  ``magpylib_magnet``, ``magtense_field``; the libraries are imported by the caller).

Conventions: ``sizes`` are FULL extents (..., d) as in :class:`fieldbench.Sources` (side lengths;
the diameter, repeated, for round families); ``offsets`` (..., d) are points minus the source
centre; ``half_sizes`` = sizes / 2. Every method works on arrays of any number of sources of this
family; mixed collections are dispatched by :func:`fieldbench.families.per_family`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

__all__ = ["SourceFamily", "RoundShape", "BoxShape", "as_3d"]


def as_3d(vectors) -> np.ndarray:
    """(..., 2) or (..., 3) vectors as (..., 3), z = 0 appended to 2D ones (for 3D libraries)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.shape[-1] == 3:
        return vectors
    return np.concatenate([vectors, np.zeros(vectors.shape[:-1] + (1,))], axis=-1)


class SourceFamily(abc.ABC):
    """One source family. Subclass it in one module, register an instance in ``families/__init__``."""

    #: Lower-case name, e.g. ``"disc"``: the enum member is its upper case, datasets store it.
    name: ClassVar[str]
    #: Integer code stored in datasets: never change it, never reuse another family's.
    code: ClassVar[int]
    #: Spatial dimension: 2 (an infinite cylinder or bar along z, fields per unit length) or 3.
    dim: ClassVar[int]
    #: True when the shape has one size, its radius (sizes hold the diameter on every axis).
    is_round: ClassVar[bool]
    #: Name of the optional named ``Sources`` constructor, e.g. ``"discs"`` (``Sources.discs``);
    #: None: none, build with ``Sources.of(name, ...)``.
    constructor: ClassVar[str | None] = None
    #: ``pair`` switches to a far-field series beyond this many half-diagonals and takes a static
    #: ``any_far`` flag (``fieldbench.physics`` decides it); None: one closed form everywhere.
    far_ratio: ClassVar[float | None] = None
    #: Where H diverges (logarithmically), in words, e.g. ``"corner of a prism"``; None: nowhere.
    singular_set: ClassVar[str | None] = None

    # -- geometry -----------------------------------------------------------------------------
    @abc.abstractmethod
    def measure(self, sizes) -> np.ndarray:
        """Area (2D, per unit length) or volume (3D) of each source, (...)."""

    def moments(self, magnetisations, sizes) -> np.ndarray:
        """Dipole moment M x measure of each source, (..., d)."""
        return np.asarray(magnetisations) * self.measure(sizes)[..., None]

    @abc.abstractmethod
    def contains(self, offsets, sizes, *, strict: bool) -> np.ndarray:
        """Whether each offset lies inside the source (strictly, or boundary included), (...)."""

    @abc.abstractmethod
    def signed_distance(self, offsets, sizes) -> np.ndarray:
        """Euclidean distance to the boundary, negative inside (minus the depth), (...)."""

    @abc.abstractmethod
    def overlaps(self, other: SourceFamily, delta, sizes, other_sizes):
        """Whether the INTERIORS of a source of this family and one of ``other`` intersect, given
        ``delta`` = |centre difference| per axis (...): touching is not overlap. Returns
        ``NotImplemented`` for a pair this family does not know (then ``other`` is asked)."""

    @abc.abstractmethod
    def sizes_from_draws(self, draws, aspect: str) -> np.ndarray:
        """Full sizes (n, d) from uniform size variates (n, d) drawn in the spec's size range
        (``ConfigurationSpec.size``: a radius for round families, a side otherwise);
        ``aspect`` is ``"free"`` or ``"square"``."""

    @abc.abstractmethod
    def half_extent_of_size(self, size: float) -> float:
        """Half extent along an axis of a source whose spec size (radius or side) is ``size``."""

    @abc.abstractmethod
    def surface_points(self, sizes, unit) -> tuple[np.ndarray, np.ndarray]:
        """Points on the boundary and the outward unit normals there, both (n, d), from variates
        ``unit`` (n, d) uniform in [0, 1) (points with an undefined normal, e.g. corners, avoided)."""

    # -- singular points ------------------------------------------------------------------------
    @abc.abstractmethod
    def on_boundary(self, offsets, half_sizes):
        """Rows (n, d) exactly on the boundary: (mask (n,), outward normals (n, d), a length scale
        (n,) for stencils across it). A point on the singular set counts as off the boundary."""

    def on_singular_set(self, offsets, half_sizes) -> np.ndarray:
        """Where the field diverges (the points of ``singular_set``), (...) bool."""
        return np.zeros(np.shape(offsets)[:-1], dtype=bool)

    # -- physics --------------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare(self, magnetisations, half_sizes) -> tuple:
        """Per-source parameters of :meth:`pair` from (K, d) arrays, computed once per source."""

    @abc.abstractmethod
    def pair(self, *offsets_and_params, **options) -> tuple:
        """Potential and field of one (point, source) pair, elementwise in ``jax.numpy``:
        ``pair(dx, dy[, dz], *prepare(...))`` -> (phi, hx, hy[, hz]), H = -grad(phi), H in the
        units of M; on the boundary the mean of both limits. ``any_far`` (only with ``far_ratio``)."""

    # -- independent references -----------------------------------------------------------------
    def reference_radius(self, sizes) -> np.ndarray:
        """(2D) circumradius of the cross-section, (n,): sets the long magnets' lengths."""
        raise NotImplementedError(f"{self.name}: no long-magnet reference")

    def reference_hazard(self, offsets, sizes):
        """(2D) squared distance to the nearest point where the long magnet's rounding explodes
        (a prism corner), (n,), or None when there is no such point."""
        return None

    @abc.abstractmethod
    def magpylib_field(self, func, observers, sizes, polarisations, lengths) -> np.ndarray:
        """H (n, 3) from ``magpylib.func`` at observers (n, 3) of sources at the origin; 2D
        families are magnets of length ``lengths`` (n,) along z."""

    @abc.abstractmethod
    def magpylib_magnet(self, magnet, size, magnetisation, length):
        """One ``magpylib.magnet`` object at the origin (``magnet`` is that module)."""

    def magtense_field(self, tiles, run, offsets, size, magnetisation, length) -> np.ndarray:
        """H (n, d) of one MagTense tile: ``tiles(**kwargs)`` builds one, ``run(tile, m, offsets)``
        evaluates it."""
        raise NotImplementedError(f"MagTense has no tile for {self.name}s")

    def magtense_refusals(self, offsets, sizes):
        """(mask, reason) of offsets MagTense cannot evaluate for this family, or None."""
        return None

    def magtense_rows(self, row_pair, row_offset, row_weight, half_sizes):
        """Replace rows MagTense evaluates badly by an equivalent average (default: unchanged)."""
        return row_pair, row_offset, row_weight

    def __repr__(self) -> str:
        return f"<family {self.name} (code {self.code}, {self.dim}D)>"


class RoundShape(SourceFamily, abc.ABC):
    """Geometry shared by discs and spheres: a ball of radius half the size along x."""

    is_round = True

    def contains(self, offsets, sizes, *, strict: bool) -> np.ndarray:
        half = np.asarray(sizes) / 2
        r2 = np.sum(offsets * offsets, axis=-1)
        return r2 < half[..., 0] ** 2 if strict else r2 <= half[..., 0] ** 2

    def signed_distance(self, offsets, sizes) -> np.ndarray:
        return np.linalg.norm(offsets, axis=-1) - np.asarray(sizes)[..., 0] / 2

    def overlaps(self, other, delta, sizes, other_sizes):
        half_a, half_b = sizes / 2, other_sizes / 2
        if isinstance(other, RoundShape):  # distance of centres < r1 + r2
            return np.sum(delta * delta, axis=-1) < (half_a[..., 0] + half_b[..., 0]) ** 2
        if isinstance(other, BoxShape):  # distance from the centre to the closed box < r
            gap = np.maximum(delta - half_b, 0.0)
            return np.sum(gap * gap, axis=-1) < half_a[..., 0] ** 2
        return NotImplemented

    def sizes_from_draws(self, draws, aspect: str) -> np.ndarray:
        return np.broadcast_to(2.0 * draws[:, :1], draws.shape)  # radius -> diameter, every axis

    def half_extent_of_size(self, size: float) -> float:
        return size

    def surface_points(self, sizes, unit):
        normals = unit - 0.5
        normals = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
        return normals * (np.asarray(sizes)[..., :1] / 2), normals

    def reference_radius(self, sizes) -> np.ndarray:
        return sizes[:, 0] / 2

    def on_boundary(self, offsets, half_sizes):
        radius = half_sizes[:, 0]
        r2 = np.sum(offsets * offsets, axis=1)
        norm = np.sqrt(r2)
        return r2 == radius * radius, offsets / np.where(norm > 0, norm, 1.0)[:, None], radius


class BoxShape(SourceFamily, abc.ABC):
    """Geometry shared by prisms and cuboids: an axis-aligned box."""

    is_round = False

    def measure(self, sizes) -> np.ndarray:
        return np.prod(sizes, axis=-1)

    def contains(self, offsets, sizes, *, strict: bool) -> np.ndarray:
        box = np.max(np.abs(offsets) / (np.asarray(sizes) / 2), axis=-1)
        return box < 1 if strict else box <= 1

    def signed_distance(self, offsets, sizes) -> np.ndarray:
        half = np.asarray(sizes) / 2
        outside = np.linalg.norm(np.maximum(np.abs(offsets) - half, 0.0), axis=-1)
        inside = np.max(np.abs(offsets) - half, axis=-1)
        return np.where(outside > 0, outside, inside)

    def overlaps(self, other, delta, sizes, other_sizes):
        if isinstance(other, BoxShape):  # the open intervals overlap on every axis
            return np.all(delta < sizes / 2 + other_sizes / 2, axis=-1)
        return NotImplemented  # a round family knows how it meets a box

    def sizes_from_draws(self, draws, aspect: str) -> np.ndarray:
        return np.broadcast_to(draws[:, :1], draws.shape) if aspect == "square" else draws

    def half_extent_of_size(self, size: float) -> float:
        return size / 2

    def surface_points(self, sizes, unit):
        sizes = np.asarray(sizes)
        half = sizes / 2
        count, dim = unit.shape
        # the face: axis and side from the first variate; the rest spread over the face's middle 80%
        pick = np.minimum((unit[:, 0] * 2 * dim).astype(int), 2 * dim - 1)
        axis, side = pick // 2, np.where(pick % 2 == 0, 1.0, -1.0)
        points = (0.8 * (2 * np.roll(unit, -1, axis=1) - 1)) * half
        points[np.arange(count), axis] = side * half[np.arange(count), axis]
        normals = np.zeros((count, dim))
        normals[np.arange(count), axis] = side
        return points, normals

    def magtense_sides(self, size, length) -> list[float]:
        """FULL sides of the MagTense prism tile (tile_type 2) standing in for one source."""
        raise NotImplementedError

    def magtense_field(self, tiles, run, offsets, size, magnetisation, length):
        # MagTense's prism kernel is accurate only for points with x, y, z <= 0 relative to the
        # centre: near the extension of an edge elsewhere it errs by up to 25% (5e-2 at 1e-6 of
        # the size, 6e-6 exactly on it). By symmetry H(S d; S M) = S H(d; M) for a reflection
        # S = diag(+-1), so every point is reflected into that octant.
        sides = self.magtense_sides(size, length)
        local = as_3d(offsets)
        flips = np.where(local >= 0, -1.0, 1.0)
        patterns, which = np.unique(flips, axis=0, return_inverse=True)
        which = which.reshape(-1)
        out = np.zeros(local.shape)
        for index, flip in enumerate(patterns):
            rows = which == index
            out[rows] = run(tiles(tile_type=2, size=sides), as_3d(magnetisation[None])[0] * flip, local[rows] * flip,
                            3) * flip
        return out[:, :self.dim]

    def on_boundary(self, offsets, half_sizes):
        within = np.all(np.abs(offsets) <= half_sizes, axis=1)
        on_axis = np.abs(offsets) == half_sizes
        surface = within & (np.sum(on_axis, axis=1) == 1)
        rows = np.arange(offsets.shape[0])
        axis = np.argmax(on_axis, axis=1)
        normals = np.zeros_like(offsets)
        normals[rows, axis] = np.sign(offsets[rows, axis])
        return surface, normals, half_sizes[rows, axis]

    @staticmethod
    def on_singular_set(offsets, half_sizes) -> np.ndarray:
        """At least two coordinates on a face plane, none outside: the corners in 2D, the edges
        (corners included) in 3D. There H diverges like ln(distance). (Static: the physics layer's
        fast edge test, ``physics._api.edge_and_corner_hits``, applies it to every box family.)"""
        distance = np.abs(offsets)
        within = np.all(distance <= half_sizes, axis=-1)
        return within & (np.sum(distance == half_sizes, axis=-1) >= 2)
