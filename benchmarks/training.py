"""One optimisation step of each learned baseline, at the paper's size and at the quick preset."""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

import numpy as np

from ._data import DOMAIN, block, memo

MODELS = ["fourier", "fc-ilr", "fc-inr", "linear"]


def _batch(count: int, points: int):
    """(features, mask, points, phi, field) of one training batch: ``fieldbench.models._speed``'s
    (the batch of ``python -m fieldbench.models._speed``: single discs of radius 1 in [-3, 3]^2,
    shared points, exact float32 targets) where the commit has it; else the same shapes with
    seeded random targets (a step's cost does not depend on their values)."""
    import jax.numpy as jnp

    try:
        from fieldbench.models._speed import _batch as speed_batch

        return speed_batch(count, points, 0)
    except (ImportError, TypeError):  # no _speed at this commit, or another signature
        pass
    from fieldbench import Family
    from fieldbench.models import source_features

    rng = np.random.default_rng(0)
    centers = rng.uniform(-DOMAIN, DOMAIN, (count, 1, 2))
    magnetisations = rng.normal(size=(count, 1, 2))
    features = source_features(jnp.full((count, 1), int(Family.DISC), jnp.int8), jnp.asarray(centers, jnp.float32),
                               jnp.asarray(magnetisations, jnp.float32), jnp.full((count, 1, 2), 2.0, jnp.float32),
                               DOMAIN)
    shared = rng.uniform(-DOMAIN, DOMAIN, (points, 2))
    return (features, jnp.ones((count, 1), bool), jnp.asarray(shared, jnp.float32),
            jnp.asarray(rng.normal(size=(count, points)), jnp.float32),
            jnp.asarray(rng.normal(size=(count, points, 2)), jnp.float32))


def _train_step_case(name: str, preset: str):
    """A compiled training step on one batch of the training defaults (``TrainConfig``: 100
    configurations, 1024 shared points), Adam with the training schedule, as ``train`` runs it.
    Returns a function doing one step."""
    import equinox as eqx
    import optax

    from fieldbench.models import TrainConfig, build_model
    from fieldbench.models._train import make_step

    config = TrainConfig(model=name, preset=preset)
    model, _ = build_model(name, dim=2, length_scale=DOMAIN, preset=preset, seed=0)
    optimizer = optax.adam(config.schedule())
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    step = make_step(optimizer, config.field_weight)
    inputs = _batch(config.batch_size, config.points_per_batch)

    def run():
        return step(model, opt_state, *inputs)

    block(run())  # compile (never timed)
    return run


class TrainStep:
    """One step of ``fieldbench.models._train.make_step`` (joint potential + field loss, its
    gradient, the Adam update) for a batch of the training defaults, model at ``preset``."""

    params = (MODELS, ["quick", "paper"])
    param_names = ["model", "preset"]
    timeout = 300

    def setup(self, name, preset):
        self.run = memo(("train-step", name, preset), lambda: _train_step_case(name, preset))

    def time_train_step(self, name, preset):
        block(self.run())
