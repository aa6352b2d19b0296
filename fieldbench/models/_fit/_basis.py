"""Stage 1: the basis by variable projection (the model's least-squares floor), and its saved copy
(``<checkpoint>.basis.eqx``) from which an interrupted fit resumes."""

from __future__ import annotations

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..._io import atomic_write_text, file_sha256
from ...exceptions import TrainingDivergedError
from ...metrics import median_relative_error
from .._protocol import LinearBasisModel
from ._config import FitConfig
from ._targets import _ridge_solve, _Targets


def _projection_loss(basis_part, rest, design, targets, weights, ridge):
    """Relative residual of the least-squares codes, weighted per row (see ``_Targets.relative_weights``)."""
    model = eqx.combine(basis_part, rest)
    matrix = design(model).astype(jnp.float64)  # (R, L)
    codes = _ridge_solve(matrix.T @ matrix, matrix.T @ targets.T, ridge)  # (L, B)
    residual = (matrix @ codes).T - targets
    return jnp.mean(jnp.sum(weights * residual ** 2, 1) / jnp.sum(weights * targets ** 2, 1))


def least_squares_floor(model, data: _Targets, split, points, ridge: float, samples: int = 128) -> dict:
    """Eq. 10 (%) of the best codes (least squares on exact targets) of split samples at points:
    what a perfect hypernetwork would score with this basis, single sources and sums alike."""
    rows = np.arange(min(samples, len(split)))
    phi, field = data.exact(rows, points, split)
    matrix = np.asarray(data.design(model, points), np.float64)
    codes = np.asarray(_ridge_solve(jnp.asarray(matrix.T @ matrix), jnp.asarray(matrix.T @ data.weighted(phi, field).T),
                                    ridge)).T
    psi, gradient = model.basis_and_gradient(jnp.asarray(points, jnp.float32))
    phi_hat = codes @ np.asarray(psi, np.float64).T
    field_hat = -np.einsum("nld,bl->bnd", np.asarray(gradient, np.float64), codes)
    return {"floor_phi_error": median_relative_error(phi_hat, phi, vector=False)[0],
            "floor_field_error": median_relative_error(field_hat, field, vector=True)[0]}


def _fit_basis(model, config: FitConfig, data: _Targets, report, floor) -> tuple[LinearBasisModel, list]:
    trainable = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    trainable = eqx.tree_at(lambda m: m.hypernet, trainable, replace_fn=lambda h: jax.tree_util.tree_map(
        lambda _: False, h))
    basis_part, rest = eqx.partition(model, trainable)
    if not jax.tree_util.tree_leaves(basis_part):
        return model, []
    schedule = optax.cosine_decay_schedule(config.basis_learning_rate, config.basis_steps, alpha=0.02)
    optimizer = optax.adam(schedule)
    state = optimizer.init(basis_part)

    @eqx.filter_jit
    def step(basis_part, state, points, targets, weights):
        loss, grads = eqx.filter_value_and_grad(_projection_loss)(
            basis_part, rest, lambda m: data.design(m, points), targets, weights, config.ridge)
        updates, state = optimizer.update(grads, state, basis_part)
        return eqx.apply_updates(basis_part, updates), state, loss

    history, recent = [], []
    for index in range(config.basis_steps):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, index)))
        rows = rng.choice(len(data.split), size=min(config.basis_sources, len(data.split)), replace=False)
        points = data.uniform(rng, config.basis_points)
        phi, field = data.exact(rows, points)
        targets = data.weighted(phi, field)
        weights = data.relative_weights(targets, data.dim, config.relative_floor)
        if config.near_weight:
            weights = weights * np.tile(data.near_weights(rows, points, config.near_weight, config.near_scale),
                                        (1, 1 + data.dim))
        basis_part, state, loss = step(basis_part, state, jnp.asarray(points, jnp.float32), jnp.asarray(targets),
                                       jnp.asarray(weights))
        recent.append(float(loss))
        if (index + 1) % 100 == 0 or index + 1 == config.basis_steps:
            loss = float(np.mean(recent))
            if not np.isfinite(loss):
                raise TrainingDivergedError(f"basis fit diverged at step {index + 1}; lower basis_learning_rate")
            history.append({"stage": "basis", "step": index + 1, "projection_loss": loss}
                           | floor(eqx.combine(basis_part, rest)))
            report(history[-1])
            recent = []
    return eqx.combine(basis_part, rest), history


#: What the basis stage depends on (with the model's own build): a saved basis is reused when these agree.
BASIS_FIELDS = ("model", "dataset", "preset", "seed", "basis_steps", "basis_sources", "basis_points",
                "basis_learning_rate", "field_weight", "relative_floor", "ridge", "near_weight", "near_scale",
                "hyperparameters")


def _basis_fields(config: FitConfig) -> dict:
    return {name: getattr(config, name) for name in BASIS_FIELDS}


def _basis_paths(checkpoint: Path) -> tuple[Path, Path]:
    return checkpoint.with_suffix(".basis.eqx"), checkpoint.with_suffix(".basis.json")


def _load_basis(model, checkpoint: Path | None, config: FitConfig):
    """(model, history) from a basis stage saved by an interrupted run with this config, else None."""
    if checkpoint is None:
        return None
    leaves, meta = _basis_paths(checkpoint)
    if not (leaves.is_file() and meta.is_file()):
        return None
    try:
        saved = json.loads(meta.read_text())
    except json.JSONDecodeError:
        return None  # a torn sidecar: redo the stage
    if saved.get("config") != _basis_fields(config) or saved.get("sha256") != file_sha256(leaves):
        return None
    return eqx.tree_deserialise_leaves(leaves, model), saved["history"]


def _save_basis(model, history, checkpoint: Path | None, config: FitConfig) -> None:
    """Keep the finished basis stage, so an interrupted fit resumes after it."""
    if checkpoint is None:
        return
    leaves, meta = _basis_paths(checkpoint)
    leaves.parent.mkdir(parents=True, exist_ok=True)
    temporary = leaves.with_name(f".{leaves.name}.tmp")
    eqx.tree_serialise_leaves(temporary, model)
    temporary.replace(leaves)
    atomic_write_text(meta, json.dumps({"config": _basis_fields(config), "sha256": file_sha256(leaves),
                                        "history": history}, default=float))
