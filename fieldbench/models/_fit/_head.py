"""The code head, the hypernetwork's last linear layer: where it is, and the three ways the recipe
rewrites it (a fresh head of whitened outputs, the closed-form least-squares head, the whitening
folded back into its weights)."""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._protocol import LinearBasisModel
from ._targets import _ridge_solve


def code_head(model: LinearBasisModel) -> Callable:
    """``where(model) -> eqx.nn.Linear``: the layer whose output is the per-source code (or, for a
    magnetisation-linear head, the code times each magnetisation component)."""
    hypernet = model.hypernet
    if isinstance(hypernet, eqx.nn.Linear):
        return lambda m: m.hypernet
    if isinstance(hypernet, eqx.nn.MLP):
        return lambda m: m.hypernet.layers[-1]
    if hasattr(hypernet, "mlp"):
        return lambda m: m.hypernet.mlp.layers[-1]
    raise TypeError(f"{type(model).__name__}.hypernet ({type(hypernet).__name__}) has no known last layer")


def _penultimate(model: LinearBasisModel, features):
    """(activations before the code head (K, H), magnetisation (K, d) or None) per source."""
    hypernet = model.hypernet
    if isinstance(hypernet, eqx.nn.Linear):
        return features, None
    if isinstance(hypernet, eqx.nn.MLP):
        def hidden(x):
            for layer in hypernet.layers[:-1]:
                x = hypernet.activation(layer(x))
            return x
        return jax.vmap(hidden)(features), None
    return jax.vmap(hypernet.hidden)(features), hypernet.magnetisation(features)


def _fold(model: LinearBasisModel, whiten: jax.Array) -> LinearBasisModel:
    """Replace the code head's output z by code = whiten @ z (exactly, in the weights)."""
    where = code_head(model)
    head = where(model)
    blocks = head.weight.shape[0] // whiten.shape[1]  # 1, or d for a magnetisation-linear head
    weight = head.weight.reshape(whiten.shape[1], blocks, -1)
    weight = jnp.einsum("cz,zbh->cbh", whiten, weight).reshape(-1, weight.shape[-1])
    bias = jnp.einsum("cz,zb->cb", whiten, head.bias.reshape(whiten.shape[1], blocks)).reshape(-1)
    return eqx.tree_at(lambda m: (where(m).weight, where(m).bias), model,
                       (weight.astype(head.weight.dtype), bias.astype(head.bias.dtype)))


def _resize_head(model: LinearBasisModel, code_size: int, rank: int, key) -> LinearBasisModel:
    """A fresh, small code head with ``rank`` whitened outputs (times the blocks)."""
    where = code_head(model)
    head = where(model)
    blocks = head.weight.shape[0] // code_size
    fan_in = head.weight.shape[1]
    weight = 0.1 * jax.random.uniform(key, (rank * blocks, fan_in), head.weight.dtype, -1, 1) / math.sqrt(fan_in)
    return eqx.tree_at(lambda m: (where(m).weight, where(m).bias), model,
                       (weight, jnp.zeros(rank * blocks, head.bias.dtype)))


def _solve_head(model, features, targets, weights, ridge: float):
    """The code head as the weighted ridge least-squares fit of z* on the penultimate activations."""
    hidden, magnetisation = _penultimate(model, features)
    hidden = np.asarray(hidden, np.float64)
    design = np.concatenate([hidden, np.ones((hidden.shape[0], 1))], axis=1)  # (S, H + 1)
    if magnetisation is not None:  # z = sum_j M_j (W_j h + b_j): linear in the stacked (W_j, b_j)
        m = np.asarray(magnetisation, np.float64)
        design = (m[:, :, None] * design[:, None, :]).reshape(design.shape[0], -1)
    w = np.asarray(weights, np.float64)[:, None]
    gram = design.T @ (w * design)
    rhs = design.T @ (w * np.asarray(targets, np.float64))
    solution = np.asarray(_ridge_solve(jnp.asarray(gram), jnp.asarray(rhs), ridge))  # (blocks*(H+1), r)
    blocks = 1 if magnetisation is None else magnetisation.shape[1]
    solution = solution.reshape(blocks, hidden.shape[1] + 1, -1)  # [block, hidden(+1), z]
    weight = np.transpose(solution[:, :-1, :], (2, 0, 1)).reshape(-1, hidden.shape[1])  # row = z * blocks + b
    bias = np.transpose(solution[:, -1, :], (1, 0)).reshape(-1)
    where = code_head(model)
    head = where(model)
    return eqx.tree_at(lambda m: (where(m).weight, where(m).bias), model,
                       (jnp.asarray(weight, head.weight.dtype), jnp.asarray(bias, head.bias.dtype)))
