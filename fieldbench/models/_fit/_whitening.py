"""Between the stages: the whitened coordinates of the basis on the fixed points P (D, V L^-1/2) and
the whitened optimal codes of the training sources, the hypernetwork's regression targets (z*, or
the relative-error optimal codes of ``FitConfig.target_floor``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._config import FitConfig
from ._targets import _ridge_solve, _Targets


def _whitening(model, data: _Targets, points, config: FitConfig):
    """(design matrix D (R, L) float64, whiten V L^-1/2 (L, r)) on the fixed points."""
    matrix = np.asarray(data.design(model, points), np.float64)
    eigenvalues, vectors = np.linalg.eigh(matrix.T @ matrix)
    keep = eigenvalues > config.rank_tolerance * eigenvalues[-1]
    return matrix, vectors[:, keep] / np.sqrt(eigenvalues[keep])


def _whitened_targets(data: _Targets, rows, points, projector, chunk: int = 500):
    """z* (S, r), per-sample weights 1 / ||y||^2 and the weighted rows y (S, R) float32 of split rows."""
    targets, weights, values = [], [], []
    for start in range(0, len(rows), chunk):
        y = data.weighted(*data.exact(rows[start:start + chunk], points))
        targets.append(y @ projector)
        weights.append(1.0 / np.maximum(np.sum(y ** 2, 1), 1e-30))
        values.append(y.astype(np.float32))
    return np.concatenate(targets), np.concatenate(weights), np.concatenate(values)


def _relative_targets(values, projector, dim: int, floor: float, points: int, ridge: float = 1e-6,
                      chunk: int = 100) -> np.ndarray:
    """(S, r) per source, the whitened code minimising its relative error on the first ``points`` of
    the fixed points: (U^T W U)^-1 U^T W y, U the whitened design (``projector``), W the weights of
    ``_Targets.relative_weights`` with ``floor`` (what the relative fine-tune optimises), y its rows
    in ``values``. ``ridge`` (``_ridge_solve``'s) keeps the float32 solves well posed."""
    total = projector.shape[0] // (1 + dim)
    keep = (np.arange(min(points, total))[None, :] + total * np.arange(1 + dim)[:, None]).reshape(-1)
    whitened = jnp.asarray(projector[keep], jnp.float32)

    @jax.jit
    def solve(rows):
        weights = _Targets.relative_weights(rows, dim, floor)
        gram = jnp.einsum("nr,bn,ns->brs", whitened, weights, whitened)
        rhs = jnp.einsum("nr,bn->br", whitened, weights * rows)
        return jax.vmap(lambda g, b: _ridge_solve(g, b, ridge))(gram, rhs)

    return np.concatenate([np.asarray(solve(jnp.asarray(values[start:start + chunk][:, keep])))
                           for start in range(0, len(values), chunk)])
