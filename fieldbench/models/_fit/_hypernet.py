"""Stage 2: the hypernetwork in whitened coordinates (Adam on z*, the closed-form head, the relative
fine-tune, the optional joint fine-tune of basis and hypernetwork)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...exceptions import TrainingDivergedError
from ._config import FitConfig
from ._head import _solve_head
from ._targets import _Targets


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
        """The relative error of predicted rows (what Eq. 10 scores), near weights included."""
        y = values[rows][:, expanded]
        w = _Targets.relative_weights(y, dim, config.fine_tune_floor)
        if near is not None:
            w = w * near[rows][:, expanded % config.fit_points]
        return _Targets.relative_loss(predicted, y, w, dim, config.robust_scale)

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
