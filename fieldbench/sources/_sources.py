"""One representation for collections of uniformly magnetised sources of every family.

A :class:`Sources` holds ``K`` sources as four arrays (an array of structs laid out as a struct of
arrays), so that the same object feeds NumPy code, JAX transformations and Parquet columns:

- ``family``         (K,)   int8, a :class:`Family` code per source;
- ``centers``        (K, d) float64, the centre of each source;
- ``magnetisations`` (K, d) float64, the uniform magnetisation M of each source (A/m);
- ``sizes``          (K, d) float64, the FULL extent of each source along each axis
  (prism and cuboid: side lengths; disc and sphere: the diameter, repeated on every axis).

``d`` is 2 for the 2D families (disc = infinite cylinder, prism = infinite bar) and 3 for the 3D
families (cuboid, sphere); a collection never mixes the two. What each family is (its geometry,
kernels, references) lives in :mod:`fieldbench.families`; this module only asks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from ..families import DEFINITIONS, Family, per_family
from ._input_checks import as_float_array as _as_float_array
from ._input_checks import check_positive as _check_positive
from ._input_checks import check_vectors as _check_vectors

__all__ = ["Family", "Sources", "SourceBatch"]


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
    def discs(cls, centers, magnetisations, radii) -> Sources:
        """2D discs (infinite cylinders along z). centers, magnetisations: (K, 2); radii: (K,)."""
        return cls._round(Family.DISC, centers, magnetisations, radii)

    @classmethod
    def spheres(cls, centers, magnetisations, radii) -> Sources:
        """3D spheres. centers, magnetisations: (K, 3); radii: (K,)."""
        return cls._round(Family.SPHERE, centers, magnetisations, radii)

    @classmethod
    def prisms(cls, centers, magnetisations, sides) -> Sources:
        """2D rectangular prisms (infinite bars along z), axis-aligned.

        centers, magnetisations: (K, 2); sides: (K, 2) FULL side lengths (not half-widths).
        """
        return cls._boxes(Family.PRISM, centers, magnetisations, sides)

    @classmethod
    def cuboids(cls, centers, magnetisations, sides) -> Sources:
        """3D axis-aligned cuboids. centers, magnetisations, sides: (K, 3); sides are FULL lengths."""
        return cls._boxes(Family.CUBOID, centers, magnetisations, sides)

    @classmethod
    def of(cls, family, centers, magnetisations, sizes) -> Sources:
        """Sources of one family given as a member, code or name; ``sizes`` as its named
        constructor takes them (radii (K,) for round families, FULL sides (K, d) otherwise)."""
        family = Family.parse(family)
        return (cls._round if family.is_round else cls._boxes)(family, centers, magnetisations, sizes)

    @classmethod
    def _round(cls, family: Family, centers, magnetisations, radii) -> Sources:
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
    def _boxes(cls, family: Family, centers, magnetisations, sides) -> Sources:
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
    def _assemble(cls, family, centers, magnetisations, sizes, size_name) -> Sources:
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
    def concat(cls, collections: Sequence[Sources]) -> Sources:
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
    def from_arrays(cls, family, centers, magnetisations, sizes) -> Sources:
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
        out = cls._assemble(Family.DISC, centers, magnetisations, sizes, size_name="sizes")  # codes set below
        if family.shape[0] != centers.shape[0]:
            raise ValueError(f"family describes {family.shape[0]} sources but centers describes {centers.shape[0]}")
        round_rows = np.isin(family, [d.code for d in DEFINITIONS if d.is_round])
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

    def select(self, family: Family) -> Sources:
        """The sub-collection of one family."""
        keep = np.asarray(self.family) == int(family)
        return Sources(
            family=np.asarray(self.family)[keep],
            centers=np.asarray(self.centers)[keep],
            magnetisations=np.asarray(self.magnetisations)[keep],
            sizes=np.asarray(self.sizes)[keep],
        )

    def __getitem__(self, index) -> Sources:
        index = np.atleast_1d(np.arange(len(self))[index])
        return Sources(
            family=np.asarray(self.family)[index],
            centers=np.asarray(self.centers)[index],
            magnetisations=np.asarray(self.magnetisations)[index],
            sizes=np.asarray(self.sizes)[index],
        )

    def with_magnetisations(self, magnetisations) -> Sources:
        """The same geometry with other magnetisations (validated)."""
        magnetisations = _check_vectors("magnetisations", magnetisations, self.dim)
        if magnetisations.shape != np.shape(self.centers):
            raise ValueError(f"magnetisations must have shape {np.shape(self.centers)}; got {magnetisations.shape}")
        return dataclasses.replace(self, magnetisations=magnetisations)

    def moments(self) -> np.ndarray:
        """Dipole moment of each source, (K, d): M times the area (2D, per unit length) or volume (3D)."""
        sizes = np.asarray(self.sizes)
        measure = per_family(self.family, lambda f: f.measure(sizes), np.zeros(sizes.shape[:-1]))
        return np.asarray(self.magnetisations) * measure[..., None]

    def contains(self, points, *, strict: bool = True) -> np.ndarray:
        """Boolean (N, K): whether each point lies inside each source (strictly, or boundary included)."""
        points = np.asarray(points, dtype=np.float64)
        d = points[:, None, :] - np.asarray(self.centers)[None]
        sizes = np.asarray(self.sizes)[None]
        return per_family(np.asarray(self.family)[None], lambda f: f.contains(d, sizes, strict=strict),
                          np.zeros(d.shape[:-1], dtype=bool))

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
    def pad(cls, samples: Sequence[Sources], max_sources: int | None = None) -> SourceBatch:
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

    def __getitem__(self, index) -> SourceBatch:
        """The samples at ``index`` (an int, a slice or an index array) as a batch, padding kept
        (an int gives a batch of one, as ``Sources[int]`` gives a collection of one)."""
        index = np.atleast_1d(np.arange(len(self))[index])
        return SourceBatch(family=np.asarray(self.family)[index], centers=np.asarray(self.centers)[index],
                           magnetisations=np.asarray(self.magnetisations)[index],
                           sizes=np.asarray(self.sizes)[index], mask=np.asarray(self.mask)[index])

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
