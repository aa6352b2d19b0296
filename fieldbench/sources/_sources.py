"""One representation for collections of uniformly magnetised sources of every family.

A :class:`Sources` holds ``K`` sources as four arrays (an array of structs laid out as a struct of
arrays), so that the same object feeds NumPy code, JAX transformations and Parquet columns:

- ``family``         (K,)   int8, a :class:`Family` code per source;
- ``centers``        (K, d) float64, the centre of each source;
- ``magnetisations`` (K, d) float64, the uniform magnetisation M of each source (A/m);
- ``sizes``          (K, d) float64, the FULL extent of each source along each axis
  (prism and cuboid: side lengths; disc and sphere: the diameter, repeated on every axis).

``d`` is 2 for the 2D families (disc = infinite cylinder, prism = infinite bar) and 3 for the 3D
families (cuboid, sphere); a collection never mixes the two.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

import jax
import numpy as np

__all__ = ["Family", "Sources", "SourceBatch"]


class Family(enum.IntEnum):
    """Shape family of a source. The integer codes are stored in datasets: never renumber."""

    DISC = 0
    PRISM = 1
    CUBOID = 2
    SPHERE = 3

    @property
    def dim(self) -> int:
        """Spatial dimension of the family (2 or 3)."""
        return 2 if self in (Family.DISC, Family.PRISM) else 3

    @property
    def is_round(self) -> bool:
        """True for discs and spheres, whose single size is a radius."""
        return self in (Family.DISC, Family.SPHERE)

    @classmethod
    def parse(cls, value: "Family | int | str") -> "Family":
        """Family from a member, its code or its name (case-insensitive, plural allowed)."""
        if isinstance(value, Family):
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


def _family_names() -> str:
    return ", ".join(f.name.lower() for f in Family)


def _as_float_array(name: str, value, shape_hint: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers {shape_hint}; got {type(value).__name__}") from error
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} contains a non-finite value (NaN or inf) at index {tuple(int(i) for i in bad)}; "
            "every entry must be a finite number"
        )
    return array


def _check_vectors(name: str, value, dim: int | None) -> np.ndarray:
    hint = "of shape (K, 2) for 2D or (K, 3) for 3D" if dim is None else f"of shape (K, {dim})"
    array = _as_float_array(name, value, hint)
    if array.ndim == 1 and dim is not None and array.shape[0] == dim:
        raise ValueError(
            f"{name} has shape {array.shape}, a single vector; pass shape (1, {dim}) for one source "
            f"(e.g. {name}=[[...]])"
        )
    if array.ndim != 2 or array.shape[1] not in (2, 3) or (dim is not None and array.shape[1] != dim):
        raise ValueError(f"{name} must have shape {hint[9:]}; got {array.shape}")
    return array


def _check_positive(name: str, array: np.ndarray) -> None:
    if np.any(array <= 0):
        bad = np.argwhere(array <= 0)[0]
        raise ValueError(
            f"{name} must be strictly positive; entry {tuple(int(i) for i in bad)} is {array[tuple(bad)]!r}. "
            "Sizes are lengths: give each source a positive extent"
        )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Sources:
    """A collection of K uniformly magnetised sources (see the module docstring for the layout).

    Build one with the validating constructors :meth:`discs`, :meth:`prisms`, :meth:`cuboids`,
    :meth:`spheres` and :meth:`concat`. The raw dataclass constructor does not validate; it exists
    for JAX (a ``Sources`` is a pytree, so it passes through ``jit`` and ``vmap``).
    """

    family: np.ndarray
    centers: np.ndarray
    magnetisations: np.ndarray
    sizes: np.ndarray

    # -- validating constructors -------------------------------------------------------------
    @classmethod
    def discs(cls, centers, magnetisations, radii) -> "Sources":
        """2D discs (infinite cylinders along z). centers, magnetisations: (K, 2); radii: (K,)."""
        return cls._round(Family.DISC, centers, magnetisations, radii)

    @classmethod
    def spheres(cls, centers, magnetisations, radii) -> "Sources":
        """3D spheres. centers, magnetisations: (K, 3); radii: (K,)."""
        return cls._round(Family.SPHERE, centers, magnetisations, radii)

    @classmethod
    def prisms(cls, centers, magnetisations, sides) -> "Sources":
        """2D rectangular prisms (infinite bars along z), axis-aligned.

        centers, magnetisations: (K, 2); sides: (K, 2) FULL side lengths (not half-widths).
        """
        return cls._boxes(Family.PRISM, centers, magnetisations, sides)

    @classmethod
    def cuboids(cls, centers, magnetisations, sides) -> "Sources":
        """3D axis-aligned cuboids. centers, magnetisations, sides: (K, 3); sides are FULL lengths."""
        return cls._boxes(Family.CUBOID, centers, magnetisations, sides)

    @classmethod
    def _round(cls, family: Family, centers, magnetisations, radii) -> "Sources":
        dim = family.dim
        centers = _check_vectors("centers", centers, dim)
        magnetisations = _check_vectors("magnetisations", magnetisations, dim)
        radii = _as_float_array("radii", radii, "of shape (K,)")
        if radii.ndim == 0:
            radii = np.full(centers.shape[0], float(radii))
        if radii.ndim != 1:
            raise ValueError(f"radii must have shape (K,); got {radii.shape}")
        _check_positive("radii", radii)
        sizes = np.repeat(2.0 * radii[:, None], dim, axis=1)
        return cls._assemble(family, centers, magnetisations, sizes, size_name="radii")

    @classmethod
    def _boxes(cls, family: Family, centers, magnetisations, sides) -> "Sources":
        dim = family.dim
        centers = _check_vectors("centers", centers, dim)
        magnetisations = _check_vectors("magnetisations", magnetisations, dim)
        sides = _as_float_array("sides", sides, f"of shape (K, {dim})")
        if sides.ndim == 1 and sides.shape[0] == centers.shape[0] and dim == 2 and sides.shape[0] != dim:
            raise ValueError(f"sides must have shape (K, {dim}) (full side lengths per axis); got {sides.shape}. "
                             "For squares pass np.stack([s, s], axis=1)")
        if sides.ndim != 2 or sides.shape[1] != dim:
            raise ValueError(f"sides must have shape (K, {dim}) (full side lengths per axis); got {sides.shape}")
        _check_positive("sides", sides)
        return cls._assemble(family, centers, magnetisations, sides, size_name="sides")

    @classmethod
    def _assemble(cls, family, centers, magnetisations, sizes, size_name) -> "Sources":
        count = centers.shape[0]
        for name, array in (("magnetisations", magnetisations), (size_name, sizes)):
            if array.shape[0] != count:
                raise ValueError(
                    f"{name} describes {array.shape[0]} sources but centers describes {count}; "
                    "give one row per source in every argument"
                )
        return cls(
            family=np.full(count, int(family), dtype=np.int8),
            centers=centers,
            magnetisations=magnetisations,
            sizes=sizes,
        )

    @classmethod
    def concat(cls, collections: Sequence["Sources"]) -> "Sources":
        """Join collections (families may mix, dimensions may not)."""
        collections = list(collections)
        if not collections:
            raise ValueError("concat needs at least one Sources collection")
        dims = {c.dim for c in collections}
        if len(dims) > 1:
            raise ValueError(
                "cannot mix 2D sources (discs, prisms) with 3D sources (cuboids, spheres) in one "
                "collection; evaluate them separately"
            )
        return cls(
            family=np.concatenate([np.asarray(c.family, dtype=np.int8) for c in collections]),
            centers=np.concatenate([np.asarray(c.centers) for c in collections]),
            magnetisations=np.concatenate([np.asarray(c.magnetisations) for c in collections]),
            sizes=np.concatenate([np.asarray(c.sizes) for c in collections]),
        )

    @classmethod
    def from_arrays(cls, family, centers, magnetisations, sizes) -> "Sources":
        """Validate and wrap the four raw arrays (as stored in datasets)."""
        family = np.asarray(family)
        if family.ndim != 1 or not np.issubdtype(family.dtype, np.integer):
            raise ValueError(f"family must be a 1-D integer array of Family codes; got {family.dtype} {family.shape}")
        codes = set(np.unique(family).tolist())
        unknown = codes - {int(f) for f in Family}
        if unknown:
            raise ValueError(f"family contains unknown codes {sorted(unknown)}; known: "
                             + ", ".join(f"{int(f)}={f.name.lower()}" for f in Family))
        dims = {Family(code).dim for code in codes}
        if len(dims) > 1:
            raise ValueError("cannot mix 2D and 3D families in one collection")
        dim = dims.pop() if dims else None
        centers = _check_vectors("centers", centers, dim)
        magnetisations = _check_vectors("magnetisations", magnetisations, centers.shape[1])
        sizes = _check_vectors("sizes", sizes, centers.shape[1])
        _check_positive("sizes", sizes)
        out = cls._assemble(Family.DISC, centers, magnetisations, sizes, size_name="sizes")
        if family.shape[0] != centers.shape[0]:
            raise ValueError(f"family describes {family.shape[0]} sources but centers describes {centers.shape[0]}")
        round_rows = np.isin(family, [int(Family.DISC), int(Family.SPHERE)])
        if np.any(round_rows) and not np.allclose(sizes[round_rows], sizes[round_rows, :1], rtol=0, atol=0):
            raise ValueError("discs and spheres must have the same size (the diameter) on every axis")
        return dataclasses.replace(out, family=family.astype(np.int8))

    # -- views ----------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Spatial dimension (2 or 3)."""
        return int(np.shape(self.centers)[-1])

    def __len__(self) -> int:
        return int(np.shape(self.centers)[-2])

    @property
    def radii(self) -> np.ndarray:
        """Half of the extent along x: the radius of discs and spheres. Shape (K,)."""
        return self.sizes[..., 0] / 2

    @property
    def half_sizes(self) -> np.ndarray:
        """Half extents along each axis, (K, d)."""
        return self.sizes / 2

    @property
    def families(self) -> list[Family]:
        """The distinct families present, in code order."""
        return [Family(int(code)) for code in np.unique(np.asarray(self.family))]

    def select(self, family: Family) -> "Sources":
        """The sub-collection of one family."""
        keep = np.asarray(self.family) == int(family)
        return Sources(
            family=np.asarray(self.family)[keep],
            centers=np.asarray(self.centers)[keep],
            magnetisations=np.asarray(self.magnetisations)[keep],
            sizes=np.asarray(self.sizes)[keep],
        )

    def __getitem__(self, index) -> "Sources":
        index = np.atleast_1d(np.arange(len(self))[index])
        return Sources(
            family=np.asarray(self.family)[index],
            centers=np.asarray(self.centers)[index],
            magnetisations=np.asarray(self.magnetisations)[index],
            sizes=np.asarray(self.sizes)[index],
        )

    def with_magnetisations(self, magnetisations) -> "Sources":
        """The same geometry with other magnetisations (validated)."""
        magnetisations = _check_vectors("magnetisations", magnetisations, self.dim)
        if magnetisations.shape != np.shape(self.centers):
            raise ValueError(f"magnetisations must have shape {np.shape(self.centers)}; got {magnetisations.shape}")
        return dataclasses.replace(self, magnetisations=magnetisations)

    def moments(self) -> np.ndarray:
        """Dipole moment of each source, (K, d): M times the area (2D, per unit length) or volume (3D)."""
        sizes = np.asarray(self.sizes)
        family = np.asarray(self.family)
        measure = np.prod(sizes, axis=-1)
        measure = np.where(family == Family.DISC, np.pi * (sizes[..., 0] / 2) ** 2, measure)
        measure = np.where(family == Family.SPHERE, 4 / 3 * np.pi * (sizes[..., 0] / 2) ** 3, measure)
        return np.asarray(self.magnetisations) * measure[..., None]

    def contains(self, points, *, strict: bool = True) -> np.ndarray:
        """Boolean (N, K): whether each point lies inside each source (strictly, or boundary included)."""
        points = np.asarray(points, dtype=np.float64)
        d = points[:, None, :] - np.asarray(self.centers)[None]
        half = np.asarray(self.sizes)[None] / 2
        family = np.asarray(self.family)[None]
        round_ = (family == Family.DISC) | (family == Family.SPHERE)
        r2 = np.sum(d * d, axis=-1)
        box = np.max(np.abs(d) / half, axis=-1)
        if strict:
            return np.where(round_, r2 < half[..., 0] ** 2, box < 1)
        return np.where(round_, r2 <= half[..., 0] ** 2, box <= 1)

    def __repr__(self) -> str:
        counts = {f.name.lower(): int(np.sum(np.asarray(self.family) == int(f))) for f in self.families}
        body = ", ".join(f"{n}={c}" for n, c in counts.items()) or "empty"
        return f"Sources({body}, dim={self.dim})"


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SourceBatch:
    """Many samples of sources, padded to a common count for batched evaluation.

    All arrays have a leading batch axis B and a source axis K (the largest count in the batch);
    ``mask`` (B, K) is True for real sources and False for padding. Padding rows hold a harmless
    unit source with zero magnetisation far from the origin, so they contribute exactly zero.
    """

    family: np.ndarray  # (B, K) int8
    centers: np.ndarray  # (B, K, d)
    magnetisations: np.ndarray  # (B, K, d)
    sizes: np.ndarray  # (B, K, d)
    mask: np.ndarray  # (B, K) bool

    @classmethod
    def pad(cls, samples: Sequence[Sources], max_sources: int | None = None) -> "SourceBatch":
        """Stack samples into one padded batch (families may differ between and within samples)."""
        samples = list(samples)
        if not samples:
            raise ValueError("pad needs at least one sample")
        dims = {s.dim for s in samples}
        if len(dims) > 1:
            raise ValueError("all samples of a batch must have the same dimension (2D or 3D)")
        dim = dims.pop()
        width = max(len(s) for s in samples)
        if max_sources is not None:
            if max_sources < width:
                raise ValueError(f"max_sources={max_sources} is smaller than the largest sample ({width} sources)")
            width = max_sources
        count = len(samples)
        family = np.zeros((count, width), dtype=np.int8)
        centers = np.zeros((count, width, dim))
        magnetisations = np.zeros((count, width, dim))
        sizes = np.ones((count, width, dim))
        mask = np.zeros((count, width), dtype=bool)
        for row, sample in enumerate(samples):
            k = len(sample)
            family[row, :k] = sample.family
            family[row, k:] = sample.family[0] if k else 0
            centers[row, :k] = sample.centers
            magnetisations[row, :k] = sample.magnetisations
            sizes[row, :k] = sample.sizes
            mask[row, :k] = True
        return cls(family=family, centers=centers, magnetisations=magnetisations, sizes=sizes, mask=mask)

    @property
    def dim(self) -> int:
        return int(np.shape(self.centers)[-1])

    def __len__(self) -> int:
        return int(np.shape(self.centers)[0])

    def sample(self, index: int) -> Sources:
        """The unpadded sources of one sample."""
        keep = np.asarray(self.mask[index])
        return Sources(
            family=np.asarray(self.family[index])[keep],
            centers=np.asarray(self.centers[index])[keep],
            magnetisations=np.asarray(self.magnetisations[index])[keep],
            sizes=np.asarray(self.sizes[index])[keep],
        )

    @property
    def families(self) -> list[Family]:
        codes = np.unique(np.asarray(self.family)[np.asarray(self.mask)])
        return [Family(int(c)) for c in codes]
