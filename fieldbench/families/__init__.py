"""Source families: one module per family, registered here, the one place that knows them all.

Each family (``disc``, ``prism``, ``cuboid``, ``sphere``) is a :class:`SourceFamily` subclass in
its own module holding its geometry, its closed-form kernels, its far-field switch, its singular
points and how the reference libraries model it. :data:`DEFINITIONS` lists them; the
:class:`Family` IntEnum (the codes stored in datasets) is built from that list, and every other
layer (sources, physics, models, ...) asks a member for its definition (``family.definition``)
instead of branching on it. This package imports none of fieldbench's other layers.

Adding a family: a module here, one line in :data:`DEFINITIONS`, tests
(docs/adding-a-family.md).
"""

from __future__ import annotations

import enum

import numpy as np

from ._base import BoxShape, RoundShape, SourceFamily, as_3d
from .cuboid import Cuboid
from .disc import Disc
from .prism import Prism
from .sphere import Sphere

__all__ = ["Family", "SourceFamily", "RoundShape", "BoxShape", "DEFINITIONS", "families_of_dim",
           "per_family", "overlap_table", "as_3d"]

#: THE registration list: one instance per family. Codes are stored in datasets: a new family
#: takes a new code, none is ever renumbered or reused.
DEFINITIONS: tuple[SourceFamily, ...] = (Disc(), Prism(), Cuboid(), Sphere())

_BY_CODE = {d.code: d for d in DEFINITIONS}
assert len(_BY_CODE) == len(DEFINITIONS), "two families share a code"


class _FamilyEnum(enum.IntEnum):
    """Members are added from DEFINITIONS below; the behaviour comes from each one's definition."""

    @property
    def definition(self) -> SourceFamily:
        """Everything this family is (geometry, kernels, references): its :class:`SourceFamily`."""
        return _BY_CODE[int(self)]

    @property
    def dim(self) -> int:
        """Spatial dimension of the family (2 or 3)."""
        return self.definition.dim

    @property
    def is_round(self) -> bool:
        """True for discs and spheres, whose single size is a radius."""
        return self.definition.is_round

    @classmethod
    def parse(cls, value) -> Family:
        """Family from a member, its code or its name (case-insensitive, plural allowed)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, (int, np.integer)):
            try:
                return cls(int(value))
            except ValueError:
                raise ValueError(f"unknown family code {value}; known: {_family_names()}") from None
        name = str(value).strip().upper()
        for candidate in (name, name.rstrip("S"), name.removesuffix("ES")):
            if candidate in cls.__members__:
                return cls[candidate]
        raise ValueError(f"unknown family {value!r}; known: {_family_names()}")


Family = _FamilyEnum("Family", [(d.name.upper(), d.code) for d in DEFINITIONS], module=__name__,
                     qualname="Family")
Family.__doc__ = "Shape family of a source. The integer codes are stored in datasets: never renumber."


def _family_names() -> str:
    return ", ".join(f.name.lower() for f in Family)


def families_of_dim(dim: int) -> tuple[Family, ...]:
    """The registered families of one dimension, in registration order (models' one-hot order)."""
    return tuple(Family(d.code) for d in DEFINITIONS if d.dim == dim)


def per_family(codes, compute, default):
    """Evaluate ``compute(definition)`` for every family present in ``codes`` and pick, element by
    element, the value of that element's family (``default`` where no family matches).

    ``codes`` must broadcast against the computed values. Each family's value is computed on the
    whole arrays, so every element gets exactly its own family's floating-point operations.
    """
    codes = np.asarray(codes)
    out = default
    for code in np.unique(codes):
        out = np.where(codes == code, compute(_BY_CODE[int(code)]), out)
    return out


def overlap_table(fam_a, cen_a, siz_a, fam_b, cen_b, siz_b) -> np.ndarray:
    """(A, B) bool: whether the interiors of source a and source b intersect (touching is not overlap).

    Each pair of families answers through :meth:`SourceFamily.overlaps` (the first family asked,
    then the second with the roles swapped). Sizes are FULL extents, as in ``Sources``.
    """
    fam_a = np.asarray(fam_a)
    fam_b = np.asarray(fam_b)
    delta = np.abs(np.asarray(cen_a)[:, None, :] - np.asarray(cen_b)[None, :, :])
    siz_a = np.asarray(siz_a)[:, None, :]
    siz_b = np.asarray(siz_b)[None, :, :]
    table = np.zeros(delta.shape[:2], dtype=bool)
    for code_a in np.unique(fam_a):
        for code_b in np.unique(fam_b):
            first, second = _BY_CODE[int(code_a)], _BY_CODE[int(code_b)]
            hit = first.overlaps(second, delta, siz_a, siz_b)
            if hit is NotImplemented:
                hit = second.overlaps(first, delta, siz_b, siz_a)
            if hit is NotImplemented:
                raise TypeError(f"no overlap test between {first.name}s and {second.name}s")
            table = np.where((fam_a == code_a)[:, None] & (fam_b == code_b)[None, :], hit, table)
    return table
