"""Between the stages: the whitened coordinates of the basis on the fixed points P (D, V L^-1/2) and
the whitened optimal codes z* of the training sources, the hypernetwork's regression targets."""

from __future__ import annotations

import numpy as np

from ._config import FitConfig
from ._targets import _Targets


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
