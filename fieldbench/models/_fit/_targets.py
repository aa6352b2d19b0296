"""The least-squares problem both stages solve: exact potentials and fields of training sources at
points, weighted like the joint loss (:class:`_Targets`), the basis's design matrix on the same
rows, the per-source features, and the ridge solve of one against the other."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ...physics import potential_and_field_batched
from ...sources import SourceBatch, boundary_distance
from .._protocol import LinearBasisModel, source_features


class _Targets:
    """Exact potential and field of training sources at points, weighted like the joint loss."""

    def __init__(self, split, domain, field_weight: float):
        self.split = split
        self.domain = domain
        self.field_weight = field_weight
        probe = np.random.default_rng(12345).choice(len(split), size=min(256, len(split)), replace=False)
        points = self.uniform(np.random.default_rng(12345), 1024)
        phi, field = self.exact(probe, points)
        # Global scales of the joint loss: mean phi^2 and mean |H|^2 over the training distribution.
        self.phi_scale = float(np.sqrt(np.mean(phi ** 2)))
        self.field_scale = float(np.sqrt(np.mean(np.sum(field ** 2, -1))))

    @property
    def dim(self) -> int:
        return self.split.centers.shape[-1]

    def uniform(self, rng, count: int) -> np.ndarray:
        lo, hi = self.domain
        return rng.uniform(lo, hi, size=(count, self.dim)).astype(np.float32).astype(np.float64)

    def exact(self, rows, points, split=None):
        """Exact phi (B, N) and H (B, N, d) of rows of the training split (or of ``split``)."""
        s = self.split if split is None else split
        batch = SourceBatch(s.family[rows], s.centers[rows], s.magnetisations[rows], s.sizes[rows], s.mask[rows])
        phi, field = potential_and_field_batched(batch, points)
        return np.asarray(phi), np.asarray(field)

    def weighted(self, phi, field) -> np.ndarray:
        """(B, (1+d) N) rows of the joint loss: phi / sigma_phi, then -H_a sqrt(w) / sigma_H."""
        count = phi.shape[-1]
        parts = [phi / self.phi_scale] + [-field[..., a] * math.sqrt(self.field_weight) / self.field_scale
                                          for a in range(field.shape[-1])]
        return np.concatenate(parts, axis=-1) / math.sqrt(count)

    @staticmethod
    def relative_weights(rows, dim: int, floor: float):
        """Row weights for rows laid out like ``weighted`` ((B, (1+d) N), NumPy or JAX) that turn the
        squared residual into a squared RELATIVE error, what Eq. 10 scores: 1 / (|value|^2 + floor^2
        mean |value|^2) per point, the potential and the field apart (the d field rows of a point
        share its |H|); ``floor`` bounds the weight at zeros of the target (a dipole's nodal line)."""
        xp = jnp if isinstance(rows, jax.Array) else np
        magnitudes = _per_quantity(rows ** 2, dim)  # (B, 2, N)
        mean = xp.maximum(magnitudes.mean(-1, keepdims=True), 1e-30)  # field_weight 0: all-zero field rows
        weights = mean / (magnitudes + floor ** 2 * mean)
        return xp.concatenate([weights[:, 0]] + [weights[:, 1]] * dim, axis=-1)

    @staticmethod
    def relative_loss(predicted, y, weights, dim: int, robust_scale: float = 0.0):
        """The fine-tunes' loss of predicted rows against ``y`` (both (B, (1+d) N), JAX), ``weights``
        from ``relative_weights`` (near weights included). ``robust_scale`` 0: per source the
        weighted squared residual over the weighted squared target, a mean squared relative error.
        ``robust_scale`` tau > 0: per source, point and quantity (phi; the field's d rows together)
        the squared relative error e^2 = w |r|^2 / mean(w |y|^2), and the mean of log(1 + e^2 /
        tau^2), a Cauchy loss. Eq. 10 scores a MEDIAN: the squared loss spends most of its gradient
        on the few points it cannot fit (the field jumps at a source's boundary), while the Cauchy
        loss weighs a point by 1 / (tau^2 + e^2), so a point far above tau stops pulling and the
        capacity goes to the points the median counts."""
        residual = weights * (predicted - y) ** 2
        if not robust_scale:
            return jnp.mean(jnp.sum(residual, 1) / jnp.sum(weights * y ** 2, 1))
        scale = jnp.maximum(_per_quantity(weights * y ** 2, dim).mean(-1, keepdims=True), 1e-30)
        return jnp.mean(jnp.log1p(_per_quantity(residual, dim) / scale / robust_scale ** 2))

    def near_weights(self, rows, points, weight: float, scale: float) -> np.ndarray:
        """(B, N) point weights 1 + weight * exp(-max(s, 0) / scale) of training rows at points
        (s: ``boundary_distance``; see ``FitConfig.near_weight``)."""
        s, parts = self.split, []
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            distance = boundary_distance(s.family[chunk], s.centers[chunk], s.sizes[chunk], s.mask[chunk],
                                         np.broadcast_to(points, (len(chunk),) + points.shape))
            parts.append((1.0 + weight * np.exp(-np.maximum(distance, 0.0) / scale)).astype(np.float32))
        return np.concatenate(parts)

    def design(self, model: LinearBasisModel, points):
        """((1+d) N, L) weighted design matrix of the basis at points (same rows as ``weighted``)."""
        points = jnp.asarray(points, jnp.float32)
        psi, gradient = model.basis_and_gradient(points)
        parts = [psi / self.phi_scale] + [gradient[..., a] * math.sqrt(self.field_weight) / self.field_scale
                                          for a in range(gradient.shape[-1])]
        return jnp.concatenate(parts, axis=0) / math.sqrt(points.shape[0])


def _per_quantity(rows, dim: int):
    """Rows laid out like ``_Targets.weighted`` ((B, (1+d) N), NumPy or JAX) -> (B, 2, N): the phi
    row, then the field's d rows summed (a point's |H|^2 when the rows are squares)."""
    xp = jnp if isinstance(rows, jax.Array) else np
    blocks = rows.reshape(rows.shape[0], 1 + dim, -1)
    return xp.stack([blocks[:, 0], blocks[:, 1:].sum(1)], axis=1)


def _ridge_solve(gram, rhs, ridge: float):
    """(G + ridge * mean eig * I)^-1 rhs by Cholesky, float64."""
    size = gram.shape[0]
    shift = ridge * jnp.trace(gram) / size
    factor = jax.scipy.linalg.cho_factor(gram + shift * jnp.eye(size, dtype=gram.dtype))
    return jax.scipy.linalg.cho_solve(factor, rhs)


def _features(model, split, rows):
    """``source_features`` (S, K, 3d + families) of split rows, in float32, scaled by the model's length."""
    return source_features(jnp.asarray(split.family[rows]), jnp.asarray(split.centers[rows], jnp.float32),
                           jnp.asarray(split.magnetisations[rows], jnp.float32),
                           jnp.asarray(split.sizes[rows], jnp.float32), model.length_scale)
