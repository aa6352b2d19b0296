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

import dataclasses
import math
import numbers
from collections.abc import Sequence

import numpy as np

from ..families import Family, overlap_table, per_family
from ._sources import Sources

__all__ = [
    "ConfigurationSpec",
    "sample_sources",
    "sample_configurations",
    "sample_points",
    "pairwise_overlaps",
]

_OVERLAP_POLICIES = ("none", "allowed", "forced")
_ASPECTS = ("square", "free")
_POINT_METHODS = ("uniform", "grid")
# Candidates drawn per block during rejection sampling. Part of the generator-consumption order:
# changing it changes which configurations a given seed produces.
_CHUNK = 32


# -- small validators ------------------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _normalise_domain(name: str, domain) -> tuple[float, float]:
    """(lo, hi) from a half-width h (-> [-h, h]) or a (lo, hi) pair."""
    if _is_number(domain):
        half = float(domain)
        if not math.isfinite(half) or half <= 0:
            raise ValueError(
                f"{name} must be a positive half-width h (the domain is [-h, h]^d) or a pair (lo, hi) "
                f"with lo < hi; got {domain!r}"
            )
        return (-half, half)
    if isinstance(domain, (str, bytes)) or not isinstance(domain, (Sequence, np.ndarray)) or len(domain) != 2:
        raise ValueError(
            f"{name} must be a positive half-width h (the domain is [-h, h]^d) or a pair (lo, hi); got {domain!r}"
        )
    lo, hi = domain
    if not (_is_number(lo) and _is_number(hi)) or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}=(lo, hi) must hold two finite numbers; got {domain!r}")
    if not lo < hi:
        raise ValueError(f"{name}=(lo, hi) needs lo < hi (the domain is [lo, hi]^d); got {domain!r}")
    return (float(lo), float(hi))


def _domain_text(domain: tuple[float, float], dim: int) -> str:
    return f"[{domain[0]:g}, {domain[1]:g}]^{dim}"


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)); "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_dim(dim) -> int:
    if not _is_int(dim) or int(dim) not in (2, 3):
        raise ValueError(f"dim must be 2 (discs, prisms) or 3 (cuboids, spheres); got {dim!r}")
    return int(dim)


# -- exact overlap tests ---------------------------------------------------------------------------
def pairwise_overlaps(sources: Sources) -> np.ndarray:
    """Symmetric (K, K) bool: whether the interiors of sources i and j intersect (diagonal False).

    Exact for every family pair (each family's ``overlaps``, ``fieldbench.families``: disc/sphere:
    distance of centres < r1 + r2; prism/cuboid: the axis-aligned open intervals overlap on every
    axis; round with box: distance from the round centre to the box < r). Touching sources do not
    overlap.
    """
    if not isinstance(sources, Sources):
        raise TypeError(f"sources must be a fieldbench.Sources; got {type(sources).__name__}")
    family = np.asarray(sources.family)
    centers = np.asarray(sources.centers, dtype=np.float64)
    sizes = np.asarray(sources.sizes, dtype=np.float64)
    table = overlap_table(family, centers, sizes, family, centers, sizes)
    np.fill_diagonal(table, False)
    return table


# -- the specification -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ConfigurationSpec:
    """How to draw the sources of one sample (validated on construction).

    After construction every field holds its canonical form (shown in brackets), so two specs that
    describe the same distribution compare equal.

    Attributes:
      families: family names or :class:`Family` members, e.g. ``("disc",)`` or ``("disc", "prism")``
        [tuple of Family]. A single name is accepted. All must share one dimension. With several,
        each source's family is drawn uniformly from the tuple.
      sources: the number of sources K, or an inclusive range ``(k_min, k_max)`` drawn uniformly per
        sample [``(k_min, k_max)``; use ``spec.sources[1]`` as ``SourceBatch.pad(max_sources=...)``].
      domain: half-width h of the centre domain ``[-h, h]^d``, or a pair ``(lo, hi)`` for
        ``[lo, hi]^d`` [``(lo, hi)``]. Centres are uniform in the domain; with ``overlap="none"``
        sources are placed one after another, each candidate (family, size and centre together)
        drawn afresh until it clears those already placed, so dense requests favour smaller sizes;
        see ``overlap`` for "forced". Sources may stick out of the domain; only centres are bounded.
      centres: ``"uniform"`` (default: uniform in the domain) or ``"normal"`` (each coordinate
        normal with the domain's midpoint as mean and a sixth of its width as standard deviation,
        so [-3, 3] gives N(0, 1), as in the paper's public code; centres then may leave the domain).
        With ``overlap="forced"`` only the first source of a sample follows it.
      size: the RADIUS range of discs/spheres and the FULL side-length range of prisms/cuboids,
        ``(lo, hi)`` with ``0 < lo <= hi``, or one number for a fixed size [``(lo, hi)``]. Sizes are
        uniform in the range. With mixed families the same range applies to each family in its own
        meaning (radius or side).
      aspect: ``"free"`` (default; each side of a prism/cuboid drawn independently) or ``"square"``
        (all sides equal, one draw: squares and cubes). Ignored by discs and spheres.
      magnetisation: standard deviation of each magnetisation component; components are normal
        with mean 0 (default 1.0: standard normal, as in the paper), in A/m.
      overlap: ``"none"`` (no two sources overlap; rejection sampling), ``"allowed"`` (independent
        placement) or ``"forced"`` (every source overlaps at least one other: each new source is
        placed overlapping a uniformly chosen, already placed one, its centre uniform over the part
        of the domain where it would overlap it; needs K >= 2).
      max_attempts: for ``"none"`` and ``"forced"``, candidate draws allowed per source before the
        sample is restarted from scratch.
      max_restarts: restarts allowed per sample before :func:`sample_sources` gives up with a
        ValueError saying what to change.
    """

    families: tuple = ("disc",)
    sources: int | tuple[int, int] = 1
    domain: float | tuple[float, float] = 1.0
    size: float | tuple[float, float] = (0.1, 0.3)
    aspect: str = "free"
    magnetisation: float = 1.0
    overlap: str = "none"
    max_attempts: int = 1000
    max_restarts: int = 100
    centres: str = "uniform"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)

        # families
        families = self.families
        if isinstance(families, (str, Family, int, np.integer)):
            families = (families,)
        try:
            families = tuple(Family.parse(f) for f in families)
        except TypeError:
            raise ValueError(f"families must be a tuple of family names, e.g. ('disc',) or ('disc', 'prism'); "
                             f"got {self.families!r}") from None
        if not families:
            raise ValueError("families is empty; name at least one family, e.g. families=('disc',)")
        if len(set(families)) != len(families):
            raise ValueError(f"families lists a family twice ({[f.name.lower() for f in families]}); "
                             "name each family once (mixed families are drawn uniformly)")
        if len({f.dim for f in families}) > 1:
            raise ValueError(
                f"families mixes 2D and 3D families ({', '.join(f.name.lower() for f in families)}); "
                "use discs/prisms (2D) or cuboids/spheres (3D), not both"
            )
        set_("families", families)
        dim = families[0].dim

        # sources
        count = self.sources
        if _is_int(count):
            count = (int(count), int(count))
        elif (isinstance(count, (Sequence, np.ndarray)) and not isinstance(count, (str, bytes))
              and len(count) == 2 and all(_is_int(c) for c in count)):
            count = (int(count[0]), int(count[1]))
        else:
            raise ValueError("sources must be an int K or an inclusive range (k_min, k_max) of ints; "
                             f"got {self.sources!r}")
        if count[0] < 1 or count[0] > count[1]:
            raise ValueError(f"sources=(k_min, k_max) needs 1 <= k_min <= k_max; got {self.sources!r}")
        set_("sources", count)

        # domain
        set_("domain", _normalise_domain("domain", self.domain))

        # size
        size = self.size
        if _is_number(size):
            size = (size, size)
        if (isinstance(size, (str, bytes)) or not isinstance(size, (Sequence, np.ndarray)) or len(size) != 2
                or not all(_is_number(s) and math.isfinite(s) for s in size)):
            raise ValueError(
                "size must be a range (lo, hi) of finite numbers (radius for discs/spheres, full side for "
                f"prisms/cuboids) or one number for a fixed size; got {self.size!r}"
            )
        lo, hi = float(size[0]), float(size[1])
        if not 0 < lo <= hi:
            raise ValueError(f"size=(lo, hi) needs 0 < lo <= hi (lo == hi fixes the size); got {self.size!r}")
        set_("size", (lo, hi))

        # policies and scalars
        if self.aspect not in _ASPECTS:
            raise ValueError("aspect must be 'free' (independent sides) or 'square' (equal sides); "
                             f"got {self.aspect!r}")
        if self.centres not in ("uniform", "normal"):
            raise ValueError(f"centres must be 'uniform' or 'normal'; got {self.centres!r}")
        if self.overlap not in _OVERLAP_POLICIES:
            raise ValueError(f"overlap must be one of {', '.join(map(repr, _OVERLAP_POLICIES))}; got {self.overlap!r}")
        if not _is_number(self.magnetisation) or not math.isfinite(self.magnetisation) or self.magnetisation <= 0:
            raise ValueError(
                "magnetisation is the standard deviation of each magnetisation component and must be a "
                f"positive number (1.0 = standard normal); got {self.magnetisation!r}"
            )
        set_("magnetisation", float(self.magnetisation))
        for name in ("max_attempts", "max_restarts"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
            set_(name, int(value))

        if self.overlap == "forced" and count[0] < 2:
            raise ValueError(
                f"overlap='forced' needs at least 2 sources per sample (a lone source overlaps nothing), "
                f"but sources={self.sources!r} can draw K = {count[0]}; use k_min >= 2, e.g. "
                f"sources=(2, {max(2, count[1])}), or overlap='allowed'"
            )
        if self.overlap == "none":
            self._check_room(dim)

    def _check_room(self, dim: int) -> None:
        """Raise if k_max non-overlapping sources obviously cannot have their centres in the domain.

        Shrink every source to its smallest allowed shape (ball of radius lo, or cube of side lo),
        keeping its centre: the shrunk shapes stay disjoint and lie in the domain grown by their
        half extent, so k_max times the smallest shrunk measure cannot exceed that grown measure.
        """
        k_max = self.sources[1]
        lo = self.size[0]
        width = self.domain[1] - self.domain[0]
        measures, extents = [], []
        for family in self.families:
            shape = family.definition
            smallest = shape.sizes_from_draws(np.full((1, dim), lo), "square")
            measures.append(float(shape.measure(smallest)[0]))
            extents.append(shape.half_extent_of_size(lo))
        needed = k_max * min(measures)
        room = (width + 2 * max(extents)) ** dim
        if needed > room:
            word = "area" if dim == 2 else "volume"
            names = "/".join(f.name.lower() for f in self.families)
            raise ValueError(
                f"overlap='none' cannot fit {k_max} non-overlapping {names} sources with centres in "
                f"{_domain_text(self.domain, dim)}: even at the smallest size ({lo:g}) they need a total {word} "
                f"of {needed:.4g}, but the domain grown by the source extent offers only {room:.4g}. "
                "Reduce sources, reduce size, enlarge domain, or use overlap='allowed'"
            )

    @property
    def dim(self) -> int:
        """Spatial dimension of the sampled sources (2 or 3)."""
        return self.families[0].dim


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
        f"centres in {_domain_text(spec.domain, spec.dim)} after {spec.max_restarts} restart(s) of up to "
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
            # in that box (intersected with the domain, which holds the anchor centre), then test exactly.
            reach = sizes[anchor] / 2 + cand_sizes / 2
            low = np.maximum(lo_dom, centers[anchor] - reach)
            high = np.minimum(hi_dom, centers[anchor] + reach)
            cand_centers = np.clip(low + unit * (high - low), lo_dom, hi_dom)
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
    if not _is_int(count) or count < 0:
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
    if not _is_int(count) or count < 0:
        raise ValueError(f"count must be a non-negative int (the number of points); got {count!r}")
    count = int(count)
    lo, hi = _normalise_domain("domain", domain)
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
                f"in {_domain_text((lo, hi), dim)}: the sources cover (almost) all of the domain; enlarge the domain "
                "or exclude fewer/smaller sources"
            )
        missing = count - keep.shape[0]
        extra = rng.uniform(lo, hi, size=(2 * missing + 16, dim))
        drawn += extra.shape[0]
        extra = extra[~exclude.contains(extra, strict=False).any(axis=1)]
        keep = np.concatenate([keep, extra])
    return keep[:count]
