"""The model protocol: encode each source, sum the codes, evaluate the potential at any points.

Every model of the suite, learned or not, is scored through :class:`Predictor`:

- ``encode(batch) -> code``: the collection's code from its sources, O(M). For learned models
  it is the SUM over sources of a per-source code (a DeepSets/additive hypernetwork);
- ``evaluate(code, points) -> (phi, H)``: potential and field at any points, O(N) per code.

Learned models are equinox modules subclassing :class:`SourceFieldModel`: they implement
``encode_sources`` (features (K, F) -> codes (K, C)) and ``potential`` (code (C,), points (N, d) ->
(N,)); the field is ``-grad(phi)`` by autodiff unless the model provides it. Models that are
linear in their code (Fourier, FC+ILR, Linear) subclass :class:`LinearBasisModel` instead and
give a basis ``psi(points) -> (N, L)``: then phi = psi @ code, and the basis and its gradient are
computed once per batch when the points are shared (the fast training path).

Properties a model declares: ``additive`` (output linear in the code, so superposition holds)
and ``harmonic`` (the potential solves Laplace's equation, so the field is divergence-free).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..families import families_of_dim
from ..sources import SourceBatch, Sources

__all__ = [
    "Predictor", "SourceFieldModel", "LinearBasisModel", "source_features", "FEATURE_FAMILIES", "feature_count",
    "as_batch",
]

#: Families a feature vector of each dimension encodes (one-hot), in this order: the registered
#: families of that dimension in registration order (``fieldbench.families.DEFINITIONS``).
#: Checkpoints depend on it: a new family changes feature_count for its dimension.
FEATURE_FAMILIES = {dim: families_of_dim(dim) for dim in (2, 3)}


def feature_count(dim: int) -> int:
    return 3 * dim + len(FEATURE_FAMILIES[dim])


def source_features(family, centers, magnetisations, sizes, length_scale: float):
    """Per-source input features, (..., K, 3d + families): centre and size in units of
    ``length_scale``, magnetisation as is (A/m), and a one-hot family. Works on NumPy or JAX arrays."""
    dim = centers.shape[-1]
    onehot = jnp.stack([(family == int(f)).astype(centers.dtype) for f in FEATURE_FAMILIES[dim]], axis=-1)
    return jnp.concatenate([centers / length_scale, magnetisations, sizes / length_scale, onehot], axis=-1)


def as_batch(sources: Sources | SourceBatch) -> SourceBatch:
    return sources if isinstance(sources, SourceBatch) else SourceBatch.pad([sources])


class Predictor(abc.ABC):
    """What the evaluator and the scaling harness call. Arrays in and out are NumPy or JAX."""

    name: ClassVar[str] = "predictor"
    additive: ClassVar[bool] = True
    harmonic: ClassVar[bool] = False

    @abc.abstractmethod
    def encode(self, batch: SourceBatch):
        """Codes of B collections (padded batch). O(M)."""

    @abc.abstractmethod
    def evaluate(self, code, points):
        """(phi (B, N), H (B, N, d)) of the B coded collections at points (B, N, d) or shared (N, d)."""

    def predict(self, sources: Sources | SourceBatch, points):
        """Encode then evaluate: phi (B, N), H (B, N, d) as NumPy (B = 1 for a single Sources)."""
        batch = as_batch(sources)
        phi, field = self.evaluate(self.encode(batch), points)
        return np.asarray(phi), np.asarray(field)


class SourceFieldModel(eqx.Module, Predictor):
    """A learned model: per-source codes summed, then a potential network evaluated at points."""

    length_scale: float = eqx.field(static=True, default=1.0, kw_only=True)

    @abc.abstractmethod
    def encode_sources(self, features):
        """(K, F) features -> (K, C) per-source codes."""

    @abc.abstractmethod
    def potential(self, code, points):
        """Potential (N,) of one coded collection at points (N, d)."""

    def field(self, code, points):
        """H = -grad(phi), (N, d), by autodiff (each point's potential depends on that point only)."""
        return -jax.grad(lambda p: jnp.sum(self.potential(code, p)))(points)

    # -- the protocol ------------------------------------------------------------------------------
    def encode(self, batch: SourceBatch):
        features = source_features(jnp.asarray(batch.family), jnp.asarray(batch.centers, jnp.float32),
                                   jnp.asarray(batch.magnetisations, jnp.float32),
                                   jnp.asarray(batch.sizes, jnp.float32), self.length_scale)
        return self.code_from_features(features, jnp.asarray(batch.mask))

    def code_from_features(self, features, mask):
        """(B, K, F) features and (B, K) mask -> (B, C) collection codes (sum over real sources)."""
        codes = jax.vmap(self.encode_sources)(features)
        return jnp.sum(jnp.where(mask[..., None], codes, 0.0), axis=1)

    def evaluate(self, code, points):
        points = jnp.asarray(points, jnp.float32)
        if points.ndim == 2:
            return jax.vmap(lambda c: self._potential_and_field(c, points))(code)
        return jax.vmap(self._potential_and_field)(code, points)

    def _potential_and_field(self, code, points):
        return self.potential(code, points), self.field(code, points)


class LinearBasisModel(SourceFieldModel):
    """phi(r) = psi(r) . code: additive by construction; the basis does not depend on the sources."""

    additive: ClassVar[bool] = True

    @abc.abstractmethod
    def basis(self, points):
        """psi(points), (N, L) with L = the code size."""

    def basis_and_gradient(self, points):
        """psi (N, L) and d psi / d r (N, L, d), with one forward-mode pass per dimension."""
        dim = points.shape[-1]

        def along(axis):
            tangent = jnp.zeros_like(points).at[:, axis].set(1.0)
            return jax.jvp(self.basis, (points,), (tangent,))

        pairs = [along(axis) for axis in range(dim)]
        return pairs[0][0], jnp.stack([p[1] for p in pairs], axis=-1)

    def potential(self, code, points):
        return self.basis(points) @ code

    def field(self, code, points):
        _, gradient = self.basis_and_gradient(points)
        return -jnp.einsum("nld,l->nd", gradient, code)

    def evaluate(self, code, points):
        points = jnp.asarray(points, jnp.float32)
        if points.ndim == 2:  # shared points: the basis once for the whole batch
            psi, gradient = self.basis_and_gradient(points)
            return code @ psi.T, -jnp.einsum("nld,bl->bnd", gradient, code)
        # Per-sample points: the basis and its gradient in one forward-mode pass over all of them
        # (3x fewer basis evaluations than potential and field apart).
        batch, count, dim = points.shape
        psi, gradient = self.basis_and_gradient(points.reshape(batch * count, dim))
        psi, gradient = psi.reshape(batch, count, -1), gradient.reshape(batch, count, -1, dim)
        return jnp.einsum("bnl,bl->bn", psi, code), -jnp.einsum("bnld,bl->bnd", gradient, code)
