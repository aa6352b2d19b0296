"""The typed configuration spec: how the sources of one sample are drawn, validated up front.

:class:`ConfigurationSpec` checks and normalises every sampling option on construction (so a
malformed or obviously impossible request fails before any drawing starts, and two specs of the
same distribution compare equal); the samplers in :mod:`fieldbench.sources._sampling` read its
fields without re-validating them. Conventions (domain, size, overlap) are those of the samplers' module docstring.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from ..families import Family
from ._input_checks import as_domain, domain_text, is_int, is_number

__all__ = ["ConfigurationSpec"]

_OVERLAP_POLICIES = ("none", "allowed", "forced")
_ASPECTS = ("square", "free")


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
        if is_int(count):
            count = (int(count), int(count))
        elif (isinstance(count, (Sequence, np.ndarray)) and not isinstance(count, (str, bytes))
              and len(count) == 2 and all(is_int(c) for c in count)):
            count = (int(count[0]), int(count[1]))
        else:
            raise ValueError("sources must be an int K or an inclusive range (k_min, k_max) of ints; "
                             f"got {self.sources!r}")
        if count[0] < 1 or count[0] > count[1]:
            raise ValueError(f"sources=(k_min, k_max) needs 1 <= k_min <= k_max; got {self.sources!r}")
        set_("sources", count)

        # domain
        set_("domain", as_domain("domain", self.domain))

        # size
        size = self.size
        if is_number(size):
            size = (size, size)
        if (isinstance(size, (str, bytes)) or not isinstance(size, (Sequence, np.ndarray)) or len(size) != 2
                or not all(is_number(s) and math.isfinite(s) for s in size)):
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
        if not is_number(self.magnetisation) or not math.isfinite(self.magnetisation) or self.magnetisation <= 0:
            raise ValueError(
                "magnetisation is the standard deviation of each magnetisation component and must be a "
                f"positive number (1.0 = standard normal); got {self.magnetisation!r}"
            )
        set_("magnetisation", float(self.magnetisation))
        for name in ("max_attempts", "max_restarts"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
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
                f"{domain_text(self.domain, dim)}: even at the smallest size ({lo:g}) they need a total {word} "
                f"of {needed:.4g}, but the domain grown by the source extent offers only {room:.4g}. "
                "Reduce sources, reduce size, enlarge domain, or use overlap='allowed'"
            )

    @property
    def dim(self) -> int:
        """Spatial dimension of the sampled sources (2 or 3)."""
        return self.families[0].dim
