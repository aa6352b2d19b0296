"""Training (fieldbench.models.train): overfitting, the Linear model's floor, exact resume,
determinism from a seed, and configuration errors.

The datasets are generated into a temporary directory (no cache, no network): ``one`` holds ONE
single-source configuration (the overfitting target) and ``few`` four single discs of different
sizes; each has a separate validation split with its own seed, as a dataset must.
"""

from __future__ import annotations

import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from fieldbench.datasets import load
from fieldbench.models import TrainConfig, build_model, train
from fieldbench.models._train import _Data, loss_fn, validate
from fieldbench.pipeline import SplitSpec
from fieldbench.sources import ConfigurationSpec

LENGTH = 3.0  # the length scale train() derives from the domain [-3, 3]


def _train_and_val(configuration: ConfigurationSpec, samples: int, points: int, seed: int,
                   **options) -> dict[str, SplitSpec]:
    """A train split and a 2-sample val split with the next seed."""
    return {"train": SplitSpec(configuration, samples=samples, points=points, seed=seed, **options),
            "val": SplitSpec(configuration, samples=2, points=points, seed=seed + 1, **options)}


@pytest.fixture(scope="module")
def datasets(make_dataset, disc_configuration) -> dict[str, Path]:
    big_disc = disc_configuration(size=2.0)
    discs = disc_configuration(size=(0.5, 1.5))
    return {"one": make_dataset("one", _train_and_val(big_disc, samples=1, points=64, seed=11, exclude_interiors=True)),
            "few": make_dataset("few", _train_and_val(discs, samples=4, points=64, seed=41))}


# -- overfitting ---------------------------------------------------------------------------------------
# Each learned baseline except Linear (quick preset; FC+ILR with a 128-wide basis, a quarter of the
# cost per step of the preset's 256) drives the median relative error of the potential (Eq. 10) on
# its one training configuration well below 1% (measured: fc-inr 0.2%, fc-ilr 0.35%, fourier 0.43%).
# The paper's joint potential + field loss is kept, so a wrong field (sign, scale) would stop the
# potential from fitting too; the step-wise decay matters (constant rates leave Adam oscillating
# at ~1-2%).
# The configuration is a disc of radius 2 near a corner of the domain, points outside it. Smaller
# sources take far longer under this loss: a radius-1 disc (the paper's) needs ~2500+ steps to pass
# 1% (fourier 0.99%, fc-ilr 1.3% after 2500), radius 0.5 stalls at 6-14% after 2000 steps, and the
# harmonic Fourier variant cannot fit a source surrounded by points at all (a harmonic function on
# the whole box has no dipole singularity inside it).
OVERFIT = {
    "fc-inr": dict(steps=800, learning_rates=(3e-3, 1e-3, 3e-4, 1e-4)),
    "fourier": dict(steps=1600, learning_rates=(3e-3, 1e-3, 3e-4, 1e-4)),
    "fc-ilr": dict(steps=1200, learning_rates=(3e-3, 1e-3, 3e-4, 1e-4), hyperparameters={"width": 128}),
}


@pytest.mark.parametrize("name", OVERFIT)
def test_learned_baselines_overfit_one_configuration(name, datasets):
    settings = OVERFIT[name]
    config = TrainConfig(model=name, dataset=str(datasets["one"]), points="dataset", batch_size=1,
                         validate_every=settings["steps"], validation_samples=2, **settings)
    result = train(config)
    errors = validate(result.model, load(str(datasets["one"]), "train"), LENGTH, 1)
    assert errors["phi_error"] < 1.0, errors
    assert errors["field_error"] < 5.0, errors


# -- Linear: down to its floor -------------------------------------------------------------------------------
def _linear_floor(model, batch) -> tuple[float, float]:
    """(loss of ``model``, minimum of the loss over the Linear model's weights), in float64: the loss
    is quadratic in them, so one Newton step (pseudo-inverse Hessian) from anywhere reaches it."""
    model = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, model)
    params, static = eqx.partition(model, eqx.is_array)
    flat, unravel = ravel_pytree(params)
    batch = tuple(x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x for x in batch)

    def loss(theta):
        return loss_fn(eqx.combine(unravel(theta), static), *batch)

    gradient, hessian = jax.jit(jax.grad(loss))(flat), jax.jit(jax.hessian(loss))(flat)
    best = flat - jnp.linalg.pinv(hessian, hermitian=True) @ gradient
    assert float(jnp.linalg.norm(jax.jit(jax.grad(loss))(best))) < 1e-8 * float(jnp.linalg.norm(gradient))
    value = jax.jit(loss)
    return float(value(flat)), float(value(best))


def test_linear_loss_decreases_to_its_floor(datasets):
    config = TrainConfig(model="linear", dataset=str(datasets["few"]), points="dataset", steps=300,
                         learning_rates=(1e-1, 1e-2, 1e-3), validate_every=50, validation_samples=2)
    split = load(str(datasets["few"]), "train")
    batch = _Data(config, split, (-LENGTH, LENGTH), LENGTH).batch(0)  # the whole split: the loss is deterministic
    initial, floor = _linear_floor(build_model("linear", length_scale=LENGTH, seed=0)[0], batch)
    assert initial > 1.5 * floor > 0  # there is something to learn, and a plane cannot fit a dipole
    result = train(config)
    losses = [record["loss"] for record in result.history]
    final, floor_again = _linear_floor(result.model, batch)
    assert floor_again == pytest.approx(floor, rel=1e-9)
    assert floor <= final < floor * (1 + 1e-6), (final, floor)  # at the floor
    assert losses[-1] < initial and abs(losses[-1] - losses[-2]) < 1e-3 * floor  # and it has plateaued


# -- resume and determinism ------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


def _resume_config(dataset: Path, **changes) -> TrainConfig:
    settings = dict(model="fc-ilr", dataset=str(dataset), steps=8, batch_size=2, points_per_batch=32,
                    learning_rates=(1e-3, 1e-4), validate_every=4, validation_samples=2,
                    hyperparameters={"width": 32, "hypernet_width": 1.0, "hypernet_depth": 1})
    return TrainConfig(**(settings | changes))


def _leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))]


def _identical(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b), strict=True))


@pytest.fixture(scope="module")
def uninterrupted(datasets, tmp_path_factory):
    return train(_resume_config(datasets["few"]), tmp_path_factory.mktemp("uninterrupted") / "run.eqx")


def test_resume_continues_exactly_where_it_stopped(datasets, uninterrupted, tmp_path):
    config = _resume_config(datasets["few"])
    checkpoint = tmp_path / "run.eqx"

    def stop_at_half(done, total, record):
        if done == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, checkpoint, progress=stop_at_half)
    assert checkpoint.is_file()
    seen = []
    resumed = train(config, checkpoint, progress=lambda done, total, record: seen.append(done))
    assert seen == [8]  # steps 5..8 only: it did resume from the checkpoint of step 4
    assert resumed.history == uninterrupted.history
    assert _identical(resumed.model, uninterrupted.model)
    # the checkpoint on disk holds the final model too
    assert checkpoint.read_bytes() == uninterrupted.checkpoint.read_bytes()


@pytest.mark.parametrize("stale", ["opt", "model"])
def test_a_torn_checkpoint_is_refused_not_resumed(datasets, tmp_path, stale):
    """Files of different steps (a crash between the saves) must not resume to other parameters."""
    config = _resume_config(datasets["few"], steps=12)
    checkpoint = tmp_path / "run.eqx"
    kept = {}

    def keep_step_4_then_stop(done, total, record):
        if done == 4:
            kept["opt"] = checkpoint.with_suffix(".opt.eqx").read_bytes()
            kept["model"] = checkpoint.read_bytes(), checkpoint.with_suffix(".json").read_text()
        if done == 8:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, checkpoint, progress=keep_step_4_then_stop)
    if stale == "opt":
        checkpoint.with_suffix(".opt.eqx").write_bytes(kept["opt"])
    else:
        checkpoint.write_bytes(kept["model"][0])
        checkpoint.with_suffix(".json").write_text(kept["model"][1])
    with pytest.raises(ValueError, match="do\\(es\\) not match the training state of step 8"):
        train(config, checkpoint)


def test_resume_refuses_another_configuration(datasets, uninterrupted):
    with pytest.raises(ValueError, match="different configuration"):
        train(_resume_config(datasets["few"], learning_rates=(1e-3,)), uninterrupted.checkpoint)


def test_restart_ignores_the_checkpoint(datasets, uninterrupted, tmp_path):
    seen = []
    again = train(_resume_config(datasets["few"]), uninterrupted.checkpoint, restart=True,
                  progress=lambda done, total, record: seen.append(done))
    assert seen == [4, 8] and _identical(again.model, uninterrupted.model)


def test_same_seed_same_model_other_seed_other_model(datasets, uninterrupted):
    assert _identical(train(_resume_config(datasets["few"])).model, uninterrupted.model)
    other = train(_resume_config(datasets["few"], seed=1)).model
    assert not any(np.array_equal(x, y) for x, y in zip(_leaves(other), _leaves(uninterrupted.model)))


def test_data_of_a_step_depends_only_on_seed_and_step(datasets):
    split = load(str(datasets["few"]), "train")
    data = _Data(_resume_config(datasets["few"]), split, (-LENGTH, LENGTH), LENGTH)
    again = _Data(_resume_config(datasets["few"]), split, (-LENGTH, LENGTH), LENGTH)
    for x, y in zip(data.batch(5), again.batch(5)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(data.batch(5)[2]), np.asarray(data.batch(6)[2]))  # new points each step
    other_seed = _Data(_resume_config(datasets["few"], seed=1), split, (-LENGTH, LENGTH), LENGTH)
    assert not np.array_equal(np.asarray(data.batch(5)[2]), np.asarray(other_seed.batch(5)[2]))


# -- configuration errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"points": "grid"}, "points must be 'shared' or 'dataset'"),
    ({"steps": 0}, "steps must be positive"),
    ({"batch_size": -1}, "batch_size must be positive"),
    ({"points_per_batch": 0}, "points_per_batch must be positive"),
    ({"validate_every": 0}, "validate_every must be positive"),
    ({"learning_rates": ()}, "learning_rates must be positive"),
    ({"learning_rates": (1e-3, -1e-4)}, "learning_rates must be positive"),
])
def test_invalid_configurations_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_schedule_steps_down_at_equal_shares():
    schedule = TrainConfig(steps=100, learning_rates=(1e-3, 1e-4, 1e-5, 1e-6)).schedule()
    assert [float(schedule(s)) for s in (0, 24, 25, 50, 75, 99)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5, 1e-6, 1e-6])


def test_training_errors_are_clear(datasets, tmp_path, make_dataset, disc_configuration):
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        train(TrainConfig(model="nope", dataset=str(datasets["few"]), steps=1))
    with pytest.raises(FileNotFoundError):
        train(TrainConfig(model="linear", dataset=str(tmp_path / "absent"), steps=1))
    make_dataset("no-val", {"train": SplitSpec(disc_configuration(), samples=1, points=8, seed=1)}, root=tmp_path)
    with pytest.raises(ValueError, match="needs 'train' and 'val' splits"):
        train(TrainConfig(model="linear", dataset=str(tmp_path / "no-val"), steps=1))
    with pytest.raises(FloatingPointError, match="diverged"):
        train(TrainConfig(model="linear", dataset=str(datasets["few"]), steps=2, learning_rates=(1e30,),
                          validate_every=1, validation_samples=1))
    assert math.isfinite(train(TrainConfig(model="linear", dataset=str(datasets["few"]), steps=1,
                                           validation_samples=1)).history[-1]["loss"])


# -- fine-tuning -----------------------------------------------------------------------------------------------
def test_fine_tuning_starts_from_the_checkpoint_writes_elsewhere_and_records_it(datasets, uninterrupted, tmp_path):
    import os
    import shutil

    from fieldbench._io import file_sha256
    from fieldbench.models import load_checkpoint

    # The source: a finished checkpoint without training state (as the shipped ones are).
    source = tmp_path / "source.eqx"
    shutil.copyfile(uninterrupted.checkpoint, source)
    shutil.copyfile(uninterrupted.checkpoint.with_suffix(".json"), source.with_suffix(".json"))
    before = source.read_bytes()
    # Adam moves each weight by about the rate per step: at 1e-9 the run must end where it started.
    config = _resume_config(datasets["few"], steps=4, learning_rates=(1e-9,), init_from=str(source))
    tuned = train(config, tmp_path / "tuned.eqx")
    for start, end in zip(_leaves(uninterrupted.model), _leaves(tuned.model), strict=True):
        np.testing.assert_allclose(end, start, rtol=0, atol=1e-7)
    fresh = train(_resume_config(datasets["few"], steps=4, learning_rates=(1e-9,))).model
    assert not _identical(fresh, tuned.model)  # not where the seed's initialisation starts
    _, meta = load_checkpoint(tmp_path / "tuned.eqx", "fc-ilr")
    assert meta["training"]["init_from"] == {"path": str(source), "sha256": file_sha256(source)}
    assert source.read_bytes() == before
    # Never into the source itself, however it is spelt (here: a hard link).
    os.link(source, tmp_path / "alias.eqx")
    for target in (source, tmp_path / "alias.eqx"):
        with pytest.raises(ValueError, match="is the init_from \\(--init-from\\) checkpoint itself"):
            train(config, target)
    assert source.read_bytes() == before
    # Only the same model with the same hyperparameters, each refusal in one line.
    other = _resume_config(datasets["few"], steps=4, init_from=str(source),
                           hyperparameters={"width": 16, "hypernet_width": 1.0, "hypernet_depth": 1})
    with pytest.raises(ValueError, match="other hyperparameters than this run builds \\(width 32 there, 16 here\\)"):
        train(other, tmp_path / "other.eqx")
    with pytest.raises(ValueError, match="belongs to model 'fc-ilr', not 'fc-inr'"):
        train(_resume_config(datasets["few"], model="fc-inr", init_from=str(source), hyperparameters={}),
              tmp_path / "other.eqx")
    assert not (tmp_path / "other.eqx").exists()
    # A fine-tune resumes like any run: interrupted at step 4 of 8, it ends where an uninterrupted one does.
    config = _resume_config(datasets["few"], init_from=str(source))
    whole = train(config, tmp_path / "whole.eqx")

    def stop(done, total, record):
        if done == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, tmp_path / "resumed.eqx", progress=stop)
    assert _identical(train(config, tmp_path / "resumed.eqx").model, whole.model)
    with pytest.raises(ValueError, match="different configuration \\(init_from differ\\)"):
        train(_resume_config(datasets["few"]), tmp_path / "resumed.eqx")  # the same run without its source
