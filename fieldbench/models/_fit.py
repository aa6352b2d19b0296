"""The two-stage recipe for models linear in their code (Fourier, FC+ILR, Linear and their variants).

phi(r) = psi(r) . code, with code = sum over sources of g(features). Two facts make these models
cheap to train well, where end-to-end Adam on the joint loss barely moves them:

1. **The basis first, by variable projection.** For a fixed basis, the best code of every
   training sample is a (ridge) least-squares solve against its exact potential and field. So the
   basis parameters are trained against the least-squares residual itself (Golub and Pereyra's
   variable projection): each step draws sources and points, solves for the optimal codes in
   float64 and backpropagates through the solve. This is the model's *floor*: no hypernetwork can
   beat the basis it is given. Models without basis parameters (Linear) skip it.
2. **The hypernetwork in whitened coordinates.** On a fixed set of points P, let D be the basis's
   weighted potential-and-field design matrix and G = D^T D = V L V^T. With code = V L^(-1/2) z,
   the joint loss is ||z - z*||^2 + const, where z* = L^(-1/2) V^T D^T y is the whitened optimal
   code: training the hypernetwork is a well-conditioned regression on precomputed targets, with
   no basis evaluation per step. Its last layer is then solved in closed form (ridge least squares
   on the penultimate activations) and the map V L^(-1/2) is folded into it, so the trained model
   has exactly the architecture it was built with.

Losses are the paper's joint potential + field loss, normalised per sample (the metric, Eq. 10, is
relative, so a weak source counts as much as a strong one). Every stage is deterministic from the
seed; the result is saved with :func:`save_checkpoint` like any trained model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._io import atomic_write_text, file_sha256
from ..exceptions import TrainingDivergedError
from ..metrics import median_relative_error
from ..physics import potential_and_field_batched
from ..sources import SourceBatch, Sources, boundary_distance, pairwise_overlaps
from ._protocol import LinearBasisModel, source_features
from ._registry import build_model, provenance, save_checkpoint

__all__ = ["FitConfig", "FitResult", "fit", "code_head"]


@dataclasses.dataclass
class FitConfig:
    """Everything a two-stage fit depends on (stored in the checkpoint's ``training``).

    basis_steps: variable-projection steps on the basis (0 skips the stage).
    basis_sources, basis_points: training sources and points drawn per basis step.
    fit_points: the fixed point set P of the whitened stage (uniform in the training domain).
    epochs: passes of the hypernetwork over the training split, minibatches of ``batch_size``.
    ridge: relative ridge of the least-squares solves (times the mean eigenvalue).
    head_ridge: the same for the closed-form code head; larger, so that the head stays well
      conditioned and the relative fine-tune after it can move the layers below it.
    relative_floor: the basis stage's relative loss: weights 1 / (|y|^2 + floor^2 mean |y|^2).
    relative_epochs: epochs of the relative fine-tune (the same kind of loss at random subsets of
      ``relative_points`` of P, with ``fine_tune_floor``: a larger floor is closer to plain least
      squares, which is what sums of sources need).
    rank_tolerance: whitened directions with eigenvalue below this times the largest are dropped
      (they are invisible on P; keeping them would only amplify float32 rounding).
    near_weight, near_scale: the relative losses (basis stage and fine-tune) weight a point by
      1 + near_weight * exp(-max(s, 0) / near_scale), s its size-normalised signed distance to the
      source's boundary (``sources.boundary_distance``): points inside and near a source count
      more. Uniform points put 9 % of a disc's points inside it, but a scene of several sources
      puts a third of its points inside one and another third within a quarter size of a boundary,
      where an additive model is least accurate; without this weight the multi-source median is
      set by the points the single-source loss cared least about. 0 turns it off.
    joint_epochs: epochs of a last joint fine-tune of the basis and the hypernetwork on the same
      relative loss, the code still V L^-1/2 z with V, L those of the basis the stage started from
      (a joint stage without that parametrisation undoes the whitened fit), so that the basis
      adapts to the codes the hypernetwork can produce.
    """

    model: str = "fc-ilr"
    dataset: str = "circles2d-mini"
    preset: str = "cpu"
    seed: int = 0
    basis_steps: int = 600
    basis_sources: int = 64
    basis_points: int = 768
    basis_learning_rate: float = 2e-3
    fit_points: int = 4096
    epochs: int = 150
    batch_size: int = 200
    learning_rate: float = 2e-3
    field_weight: float = 1.0
    relative_floor: float = 0.1
    relative_epochs: int = 40
    relative_points: int = 512
    fine_tune_floor: float = 0.1
    ridge: float = 1e-7
    head_ridge: float = 1e-3
    rank_tolerance: float = 1e-8
    validation_samples: int = 256
    near_weight: float = 0.0
    near_scale: float = 0.3
    joint_epochs: int = 0
    hyperparameters: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("basis_sources", "basis_points", "fit_points", "epochs", "batch_size", "validation_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        for name in ("basis_steps", "relative_epochs", "joint_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        for name in ("basis_learning_rate", "learning_rate", "ridge", "head_ridge", "rank_tolerance", "relative_floor",
                     "fine_tune_floor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value}")
        for name in ("field_weight", "near_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if not (math.isfinite(self.near_scale) and self.near_scale > 0):
            raise ValueError(f"near_scale must be a positive number; got {self.near_scale}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"recipe": "two-stage"}


@dataclasses.dataclass
class FitResult:
    model: LinearBasisModel
    checkpoint: Path | None
    history: list[dict]
    seconds: float


# -- the code head: the hypernetwork's last linear layer -------------------------------------------
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


# -- data -------------------------------------------------------------------------------------------
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
        blocks = rows.reshape(rows.shape[0], 1 + dim, -1) ** 2
        magnitudes = xp.stack([blocks[:, 0], blocks[:, 1:].sum(1)], axis=1)  # (B, 2, N)
        mean = xp.maximum(magnitudes.mean(-1, keepdims=True), 1e-30)  # field_weight 0: all-zero field rows
        weights = mean / (magnitudes + floor ** 2 * mean)
        return xp.concatenate([weights[:, 0]] + [weights[:, 1]] * dim, axis=-1)

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


def _ridge_solve(gram, rhs, ridge: float):
    """(G + ridge * mean eig * I)^-1 rhs by Cholesky, float64."""
    size = gram.shape[0]
    shift = ridge * jnp.trace(gram) / size
    factor = jax.scipy.linalg.cho_factor(gram + shift * jnp.eye(size, dtype=gram.dtype))
    return jax.scipy.linalg.cho_solve(factor, rhs)


# -- stage 1: the basis by variable projection ------------------------------------------------------
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


# -- stage 2: the hypernetwork in whitened coordinates ----------------------------------------------
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


def _features(model, split, rows):
    return source_features(jnp.asarray(split.family[rows]), jnp.asarray(split.centers[rows], jnp.float32),
                           jnp.asarray(split.magnetisations[rows], jnp.float32),
                           jnp.asarray(split.sizes[rows], jnp.float32), model.length_scale)


def _single_source(split) -> None:
    if split.mask.shape[1] != 1 or not split.mask.all():
        raise ValueError("the two-stage recipe trains on single-source samples (a train split with sources=1); "
                         "use `fieldbench train --recipe adam` for other training sets")


def _adam(hyper, loss_fn, config: FitConfig, epochs: int, learning_rate: float, count: int, phase: int, val,
          report, name: str):
    """Minibatch Adam (warm-up, cosine decay) over ``epochs`` passes; loss_fn(hyper, rows, key)."""
    batch = min(config.batch_size, count)
    per_epoch = max(1, count // batch)
    steps = epochs * per_epoch
    schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, min(500, steps // 10), steps,
                                                  end_value=learning_rate * 1e-3)
    # Clipping: the closed-form head can leave large weights, and one outsized step would undo it.
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    state = optimizer.init(hyper)

    @eqx.filter_jit
    def epoch(hyper, state, order, key):
        def body(carry, inputs):
            hyper, state = carry
            rows, step_key = inputs
            loss, grads = eqx.filter_value_and_grad(loss_fn)(hyper, rows, step_key)
            updates, state = optimizer.update(grads, state, hyper)
            return (eqx.apply_updates(hyper, updates), state), loss
        (hyper, state), losses = jax.lax.scan(body, (hyper, state), (order, jax.random.split(key, len(order))))
        return hyper, state, jnp.mean(losses)

    history = []
    every = max(1, epochs // 5)
    for index in range(epochs):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(phase, index)))
        order = rng.permutation(count)[:per_epoch * batch].reshape(per_epoch, batch)
        hyper, state, loss = epoch(hyper, state, jnp.asarray(order), jax.random.PRNGKey(int(rng.integers(2 ** 31))))
        if (index + 1) % every == 0 or index + 1 == epochs:
            if not np.isfinite(float(loss)):
                raise TrainingDivergedError(f"{name} diverged at epoch {index + 1}; lower learning_rate")
            history.append({"stage": name, "epoch": index + 1, "loss": float(loss)} | val(hyper))
            report(history[-1])
    return hyper, history


def _hypernet_stage(model, config, features, targets, weights, values, whitened_design, near, joint, val, report):
    """The hypernetwork (its code head outputs z): Adam on the whitened regression, the head in
    closed form, then Adam on the relative (Eq. 10-like) loss at random subsets of the points, and
    optionally the same loss on the basis and the hypernetwork together (``joint_epochs``)."""
    trainable = eqx.tree_at(lambda m: m.hypernet, jax.tree_util.tree_map(lambda _: False, model),
                            jax.tree_util.tree_map(eqx.is_inexact_array, model.hypernet))
    hyper, rest = eqx.partition(model, trainable)
    count = features.shape[0]
    validate = lambda h: val(eqx.combine(h, rest))  # noqa: E731

    def whitened_loss(hyper, rows, key):
        predicted = eqx.combine(hyper, rest).encode_sources(features[rows])
        w = weights[rows]
        return jnp.sum(w * jnp.sum((predicted - targets[rows]) ** 2, -1)) / jnp.sum(w)

    hyper, history = _adam(hyper, whitened_loss, config, config.epochs, config.learning_rate, count, 2, validate,
                           report, "hypernetwork")
    model = _solve_head(eqx.combine(hyper, rest), features, targets, weights, config.head_ridge)
    history.append({"stage": "closed-form head"} | val(model))
    report(history[-1])
    hyper, rest = eqx.partition(model, trainable)
    dim = whitened_design.shape[0] // config.fit_points - 1
    subset = min(config.relative_points, config.fit_points)

    def draw(key):
        """A random subset of the fixed points and its rows in the (1+d) N layout of ``values``."""
        chosen = jax.random.choice(key, config.fit_points, (subset,), replace=False)
        return chosen, (chosen[None, :] + config.fit_points * jnp.arange(1 + dim)[:, None]).reshape(-1)

    def relative_error(predicted, rows, expanded):
        """The squared relative error of predicted rows (what Eq. 10 scores), near weights included."""
        y = values[rows][:, expanded]
        w = _Targets.relative_weights(y, dim, config.fine_tune_floor)
        if near is not None:
            w = w * near[rows][:, expanded % config.fit_points]
        return jnp.mean(jnp.sum(w * (predicted - y) ** 2, 1) / jnp.sum(w * y ** 2, 1))

    def relative_loss(hyper, rows, key):
        _, expanded = draw(key)
        predicted = eqx.combine(hyper, rest).encode_sources(features[rows]) @ whitened_design[expanded].T
        return relative_error(predicted, rows, expanded)

    if config.relative_epochs:
        hyper, more = _adam(hyper, relative_loss, config, config.relative_epochs, config.learning_rate / 10, count, 5,
                            validate, report, "relative fine-tune")
        model, history = eqx.combine(hyper, rest), history + more
    if not config.joint_epochs:
        return model, history
    data, points, whiten = joint
    params, static = eqx.partition(model, eqx.is_inexact_array)
    # data.design scales rows by 1/sqrt(points it is given); the stored values y by 1/sqrt(fit_points).
    rescale = math.sqrt(subset / config.fit_points)

    def joint_loss(params, rows, key):
        current = eqx.combine(params, static)
        chosen, expanded = draw(key)
        design = data.design(current, points[chosen]) * rescale @ whiten  # ((1+d) subset, r)
        return relative_error(current.encode_sources(features[rows]) @ design.T, rows, expanded)

    params, more = _adam(params, joint_loss, config, config.joint_epochs, config.learning_rate / 10, count, 6,
                         lambda p: val(eqx.combine(p, static)), report, "joint fine-tune")
    return eqx.combine(params, static), history + more


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


#: Most sources in one multi-source validation scene (see _validator).
VALIDATION_GROUP = 6


def _scenes(split, rows, most: int) -> np.ndarray:
    """Scene index of each row: rows packed first-fit into scenes of at most ``most`` sources whose
    interiors do not overlap, like a multi-source test split (dense, touching allowed)."""
    table = pairwise_overlaps(Sources(split.family[rows, 0], split.centers[rows, 0], split.magnetisations[rows, 0],
                                      split.sizes[rows, 0]))
    scenes: list[list[int]] = []
    for index in range(len(rows)):
        home = next((scene for scene in scenes if len(scene) < most and not table[index, scene].any()), None)
        if home is None:
            scenes.append(home := [])
        home.append(index)
    label = np.empty(len(rows), dtype=np.int64)
    for number, scene in enumerate(scenes):
        label[scene] = number
    return label


def _validator(model_ref, data: _Targets, val_split, points, config: FitConfig):
    """Eq. 10 on validation sources at the fixed points, from the current (unfolded) model: single
    sources, and scenes of up to ``VALIDATION_GROUP`` non-overlapping ones (``multi_*``; exact
    targets by superposition). The train and val splits hold single sources; the scenes say how
    the codes add up, which is what test-multi scores, without looking at any test split."""
    rows = np.arange(min(config.validation_samples, len(val_split)))
    phi, field = data.exact(rows, points, val_split)
    fixed_points = jnp.asarray(points, jnp.float32)
    features = _features(model_ref["model"], val_split, rows)
    scene = _scenes(val_split, rows, VALIDATION_GROUP)
    crowded = np.isin(scene, np.flatnonzero(np.bincount(scene) >= 2))  # scenes of one source are not multi

    def summed(values):
        total = np.zeros((scene.max() + 1,) + values.shape[1:])
        np.add.at(total, scene[crowded], values[crowded])
        return total[np.unique(scene[crowded])]

    def validate(model, whiten=None):
        whiten = model_ref["whiten"] if whiten is None else whiten
        codes = np.asarray(model.encode_sources(features.reshape(-1, features.shape[-1])))
        codes = codes.reshape(len(rows), -1, codes.shape[-1]).sum(1) @ whiten.T
        psi, gradient = (np.asarray(a, np.float64) for a in model.basis_and_gradient(fixed_points))
        phi_hat = codes @ psi.T
        field_hat = -np.einsum("nld,bl->bnd", gradient, codes)
        record = {"phi_error": median_relative_error(phi_hat, phi, vector=False)[0],
                  "field_error": median_relative_error(field_hat, field, vector=True)[0]}
        if crowded.any():
            record |= {"multi_phi_error": median_relative_error(summed(phi_hat), summed(phi), vector=False)[0],
                       "multi_field_error": median_relative_error(summed(field_hat), summed(field), vector=True)[0]}
        return record

    return validate


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


def fit(config: FitConfig, checkpoint: str | Path | None = None, *, restart: bool = False,
        progress: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``config.model`` with the two-stage recipe and save it to ``checkpoint``.

    An existing checkpoint is never replaced unless ``restart=True``. A run interrupted after its
    basis stage resumes from it (``<checkpoint>.basis.eqx``, removed once the fit is saved).
    ``progress`` receives one dict per reported stage or epoch.
    """
    from ..datasets import load, open_dataset

    started = time.perf_counter()
    report = progress or (lambda record: None)
    checkpoint = Path(checkpoint).with_suffix(".eqx") if checkpoint else None
    if checkpoint and checkpoint.exists() and not restart:
        raise FileExistsError(f"{checkpoint} exists; pass restart=True (--restart) to train again and replace it, "
                              "or choose another checkpoint path")
    handle = open_dataset(config.dataset)
    spec = handle.spec
    train_split, val_split = load(config.dataset, "train"), load(config.dataset, "val")
    _single_source(train_split)
    domain = spec.splits["train"].configuration.domain
    length_scale = float(max(abs(domain[0]), abs(domain[1])))
    model, hyperparameters = build_model(config.model, dim=spec.splits["train"].dim, length_scale=length_scale,
                                         preset=config.preset, seed=config.seed, **config.hyperparameters)
    if not isinstance(model, LinearBasisModel):
        raise ValueError(f"the two-stage recipe needs a model linear in its code; {config.model} is not "
                         "(train it with `--recipe adam`)")
    data = _Targets(train_split, domain, config.field_weight)
    probe_points = data.uniform(np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(4,))), 2048)

    def floor(candidate):
        return least_squares_floor(candidate, data, val_split, probe_points, config.ridge)

    resumed = None if restart else _load_basis(model, checkpoint, config)
    if resumed:
        model, history = resumed
        report({"stage": "basis", "resumed": str(_basis_paths(checkpoint)[0])})
    else:
        model, history = _fit_basis(model, config, data, report, floor)
        _save_basis(model, history, checkpoint, config)

    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3,)))
    points = data.uniform(rng, config.fit_points)
    matrix, whiten = _whitening(model, data, points, config)
    projector = matrix @ whiten  # y -> z* = whiten^T D^T y
    rows = np.arange(len(train_split))
    targets, weights, values = _whitened_targets(data, rows, points, projector)
    features = _features(model, train_split, rows).reshape(len(rows), -1)
    model = _resize_head(model, whiten.shape[0], whiten.shape[1], jax.random.PRNGKey(config.seed + 7))
    ref = {"model": model, "whiten": whiten}
    validate = _validator(ref, data, val_split, points, config)
    history.append({"stage": "whitening", "rank": int(whiten.shape[1]), "code_size": int(whiten.shape[0])}
                   | floor(model))
    report(history[-1])
    near = jnp.asarray(data.near_weights(rows, points, config.near_weight, config.near_scale)) \
        if config.near_weight and (config.relative_epochs or config.joint_epochs) else None
    joint = (data, jnp.asarray(points, jnp.float32), jnp.asarray(whiten, jnp.float32))
    model, stage = _hypernet_stage(model, config, features, jnp.asarray(targets, jnp.float32),
                                   jnp.asarray(weights, jnp.float32), jnp.asarray(values),
                                   jnp.asarray(projector, jnp.float32), near, joint, validate, report)
    history += stage
    model = _fold(model, jnp.asarray(whiten))
    seconds = time.perf_counter() - started
    info = provenance(config.model, model, hyperparameters, handle, config.to_dict()) | {
        "seconds": round(seconds, 1), "history": history, "validation": history[-1]}
    path = save_checkpoint(checkpoint, model, info) if checkpoint else None
    if checkpoint:
        for leftover in _basis_paths(checkpoint):
            leftover.unlink(missing_ok=True)
    return FitResult(model, path, history, seconds)
