"""The training recipes (fieldbench.models.fit, run_recipe): the two-stage recipe beats end-to-end
Adam at equal budget, its pieces are exact (whitening folds into the head, the closed-form head is
the least-squares optimum), checkpoints are never replaced silently, an interrupted fit resumes
after its basis stage, and every baseline has a default recipe.

The dataset is generated into a temporary directory: 64 single discs of radius 1 in [-3, 3]^2
(the circles2d distribution, small), and a validation split with its own seed.
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fieldbench.datasets import load, open_dataset
from fieldbench.evaluation import evaluate
from fieldbench.models import (
    DATASET_OVERRIDES,
    RECIPES,
    FitConfig,
    TrainConfig,
    build_model,
    fit,
    load_checkpoint,
    recipe_config,
    recipe_name,
    run_recipe,
    train,
)
from fieldbench.models._fit import (
    _fold, _relative_targets, _scenes, _solve_head, _Targets, _whitened_targets, _whitening, code_head,
)
from fieldbench.pipeline import SplitSpec
from fieldbench.sources import ConfigurationSpec, Sources, boundary_distance, pairwise_overlaps

SMALL = {"width": 64, "depth": 2, "hypernet_width": 1.0, "hypernet_depth": 2}


def _disc_splits(single: ConfigurationSpec, multi: ConfigurationSpec, samples: int) -> dict[str, SplitSpec]:
    return {"train": SplitSpec(single, samples=samples, points=16, seed=1),
            "val": SplitSpec(single, samples=16, points=256, seed=2),
            "test_multi": SplitSpec(multi, samples=16, points=256, seed=3)}


@pytest.fixture(scope="module")
def discs(make_dataset, disc_configuration) -> Path:
    """2,000 single discs (the fit computes its own targets; the stored 16 points do not matter)."""
    return make_dataset("discs", _disc_splits(disc_configuration(), disc_configuration(sources=(2, 4)), 2000))


@pytest.fixture(scope="module")
def few(make_dataset, disc_configuration) -> Path:
    return make_dataset("few", _disc_splits(disc_configuration(), disc_configuration(sources=(2, 4)), 200))


def _two_stage(dataset, model="fc-ilr-bilinear", **changes) -> FitConfig:
    settings = dict(model=model, dataset=str(dataset), preset="quick", hyperparameters=SMALL, basis_steps=60,
                    basis_sources=16, basis_points=192, fit_points=384, epochs=20, batch_size=32,
                    relative_epochs=10, relative_points=128, validation_samples=16)
    return FitConfig(**(settings | changes))


def _tiny(dataset, **changes) -> FitConfig:
    return _two_stage(dataset, **({"basis_steps": 8, "epochs": 3, "relative_epochs": 2} | changes))


@pytest.fixture(scope="module")
def fitted(discs, tmp_path_factory):
    return fit(_two_stage(discs), tmp_path_factory.mktemp("fitted") / "model.eqx")


@pytest.fixture(scope="module")
def tiny(few, tmp_path_factory):
    return fit(_tiny(few), tmp_path_factory.mktemp("tiny") / "model.eqx")


def test_two_stage_beats_end_to_end_adam_on_the_same_model(discs, fitted):
    # The old default recipe (end-to-end Adam, step-wise rates) in about the same time: 800 steps
    # of 32 samples x 256 points. Measured: two-stage 14% phi on test_multi, Adam 40%.
    adam = train(TrainConfig(model="fc-ilr-bilinear", dataset=str(discs), preset="quick", hyperparameters=SMALL,
                             steps=800, batch_size=32, points_per_batch=256, learning_rates=(3e-3, 1e-3, 3e-4, 1e-4),
                             validate_every=800, validation_samples=16))
    ours = evaluate(fitted.model, str(discs), "test_multi").phi_error
    theirs = evaluate(adam.model, str(discs), "test_multi").phi_error
    assert ours < 25.0 < theirs, (ours, theirs)


def test_the_checkpoint_scores_what_the_fit_reported(discs, fitted):
    model, meta = load_checkpoint(fitted.checkpoint)
    assert meta["training"]["recipe"] == "two-stage" and meta["model"] == "fc-ilr-bilinear"
    assert [record["stage"] for record in meta["history"]][-1] == "relative fine-tune"
    val = evaluate(model, str(discs), "val")  # the split's own points, not the fit's
    assert val.phi_error == pytest.approx(meta["validation"]["phi_error"], rel=0.35)
    assert meta["properties"]["parameters"] == sum(x.size for x in jax.tree_util.tree_leaves(
        eqx.filter(model, eqx.is_array)))


def test_folding_the_whitening_into_the_head_is_exact():
    model = build_model("fc-ilr-bilinear", preset="quick", length_scale=3.0, **SMALL)[0]
    code = code_head(model)(model).weight.shape[0] // 2
    rank = 7
    whiten = jax.random.normal(jax.random.PRNGKey(0), (code, rank))
    small = eqx.tree_at(lambda m: (code_head(m)(m).weight, code_head(m)(m).bias), model,
                        (code_head(model)(model).weight[:2 * rank], code_head(model)(model).bias[:2 * rank]))
    features = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
    expected = small.encode_sources(features) @ whiten.T
    folded = _fold(small, whiten).encode_sources(features)
    np.testing.assert_allclose(folded, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("model", ["fc-ilr", "fc-ilr-bilinear"])
def test_the_closed_form_head_is_the_least_squares_optimum(model):
    net = build_model(model, preset="quick", length_scale=3.0, **SMALL)[0]
    features = jax.random.normal(jax.random.PRNGKey(2), (300, 8))
    targets = jax.random.normal(jax.random.PRNGKey(3), (300, 49))
    weights = jnp.ones(300)
    solved = _solve_head(net, features, targets, weights, ridge=1e-12)

    def loss(m):
        return float(jnp.sum((m.encode_sources(features) - targets) ** 2))

    where = code_head(solved)
    head = where(solved)
    # Any perturbation of the head raises the loss: it is the minimum (a quadratic in the head).
    for seed in range(3):
        key = jax.random.PRNGKey(10 + seed)
        nudged = eqx.tree_at(lambda m: where(m).weight, solved,
                             head.weight + 1e-3 * jax.random.normal(key, head.weight.shape))
        assert loss(nudged) > loss(solved)


def test_an_existing_checkpoint_is_never_replaced_without_restart(few, tiny):
    before = tiny.checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match="restart"):
        fit(_tiny(few), tiny.checkpoint)
    with pytest.raises(FileExistsError, match="restart"):  # and the Adam recipe: no state file to resume
        train(TrainConfig(model="fc-ilr", dataset=str(few), steps=2, hyperparameters=SMALL), tiny.checkpoint)
    assert tiny.checkpoint.read_bytes() == before


class Interrupted(Exception):
    pass


def _stop_in_hypernetwork_stage(record):
    if record["stage"] == "hypernetwork":
        raise Interrupted


def test_an_interrupted_fit_resumes_after_its_basis_stage(few, tiny, tmp_path):
    checkpoint = tmp_path / "again.eqx"
    with pytest.raises(Interrupted):
        fit(_tiny(few), checkpoint, progress=_stop_in_hypernetwork_stage)
    assert checkpoint.with_suffix(".basis.eqx").is_file() and not checkpoint.exists()
    stages = []
    again = fit(_tiny(few), checkpoint, progress=lambda record: stages.append(record))
    assert stages[0] == {"stage": "basis", "resumed": str(checkpoint.with_suffix(".basis.eqx"))}
    assert not any(record["stage"] == "basis" and "step" in record for record in stages)
    assert not checkpoint.with_suffix(".basis.eqx").exists()  # cleaned up once saved
    assert checkpoint.read_bytes() == tiny.checkpoint.read_bytes()  # the same model as an uninterrupted fit
    assert again.history == tiny.history


def test_a_changed_configuration_does_not_resume_a_saved_basis(few, tmp_path):
    checkpoint = tmp_path / "changed.eqx"
    with pytest.raises(Interrupted):
        fit(_tiny(few), checkpoint, progress=_stop_in_hypernetwork_stage)
    stages = []
    fit(_tiny(few, basis_steps=9), checkpoint, progress=lambda record: stages.append(record))
    assert stages[0]["stage"] == "basis" and "resumed" not in stages[0]


def test_the_fit_is_deterministic(few, tiny):
    again = fit(_tiny(few))
    leaves = lambda m: jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array))  # noqa: E731
    assert all(np.array_equal(a, b) for a, b in zip(leaves(again.model), leaves(tiny.model), strict=True))


def test_linear_reaches_its_least_squares_optimum_in_closed_form(few):
    result = fit(_two_stage(few, model="linear", basis_steps=0, epochs=1, relative_epochs=0, hyperparameters={}))
    assert result.history[-1]["stage"] == "closed-form head"
    assert 40 < result.history[-1]["phi_error"] < 110  # a plane per source: the paper's ~70% floor


def test_every_baseline_has_a_default_recipe():
    from fieldbench.models._registry import LEARNED

    assert sorted(RECIPES) == sorted(LEARNED)
    assert recipe_name("fc-inr") == "adam" and recipe_name("fc-ilr") == "two-stage"
    assert isinstance(recipe_config("fc-inr", "circles2d"), TrainConfig)
    config = recipe_config("fourier", "circles2d", seed=2, epochs=3)
    assert isinstance(config, FitConfig) and config.epochs == 3 and config.seed == 2


def test_the_two_stage_recipe_refuses_a_model_not_linear_in_its_code(few):
    with pytest.raises(ValueError, match="linear in its code"):
        run_recipe(FitConfig(model="fc-inr", dataset=str(few)), None)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("ridge", float("nan")), ("learning_rate", -1.0),
                                          ("basis_steps", -1), ("relative_epochs", -2), ("joint_epochs", -1),
                                          ("near_weight", -1.0), ("near_scale", 0.0), ("near_weight", float("inf")),
                                          ("target_floor", -0.1), ("target_points", 0),
                                          ("robust_scale", -0.05), ("robust_scale", float("nan"))])
def test_bad_fit_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        FitConfig(**{field: value})


def test_near_weights_count_inside_and_near_the_boundary_more(few, rng):
    split = load(str(few), "train")
    data = _Targets(split, (-3.0, 3.0), 1.0)
    rows = np.arange(8)
    points = data.uniform(rng, 2000)
    weights = data.near_weights(rows, points, weight=4.0, scale=0.3)
    distance = boundary_distance(split.family[rows], split.centers[rows], split.sizes[rows], split.mask[rows],
                                 np.broadcast_to(points, (8,) + points.shape))
    inside = distance < 0
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(weights[inside], 5.0, rtol=1e-6)  # every inside point: 1 + weight
    outside = weights[~inside]
    assert np.all((outside > 1.0) & (outside <= 5.0))
    order = np.argsort(distance[~inside])  # outside, the weight only falls with the distance
    assert np.all(np.diff(outside[order]) <= 1e-6)
    assert np.array_equal(data.near_weights(rows, points, weight=0.0, scale=0.3), np.ones_like(weights))


def test_validation_scenes_hold_non_overlapping_sources(few):
    split = load(str(few), "train")
    rows = np.arange(len(split))
    scene = _scenes(split, rows, most=6)
    sizes = np.bincount(scene)
    assert sizes.max() <= 6 and (sizes >= 2).sum() >= len(sizes) // 2  # mostly scenes of several sources
    for number in np.flatnonzero(sizes >= 2):
        members = rows[scene == number]
        sources = Sources(split.family[members, 0], split.centers[members, 0], split.magnetisations[members, 0],
                          split.sizes[members, 0])
        assert not pairwise_overlaps(sources).any()


def test_the_joint_fine_tune_trains_the_basis_and_keeps_the_architecture(few, tmp_path):
    from fieldbench.models._fit import _load_basis

    config = _tiny(few, joint_epochs=3, near_weight=4.0)
    built = build_model("fc-ilr-bilinear", preset="quick", length_scale=3.0, **SMALL)[0]
    saved = {}

    def keep_the_basis(record):  # the basis stage's result, saved until the fit ends
        if record["stage"] == "joint fine-tune" and not saved:
            saved["basis"] = _load_basis(built, tmp_path / "joint.eqx", config)[0]

    joint = fit(config, tmp_path / "joint.eqx", progress=keep_the_basis)
    assert [record["stage"] for record in joint.history][-1] == "joint fine-tune"
    shapes = lambda m: [x.shape for x in jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array))]  # noqa: E731
    assert shapes(joint.model) == shapes(built)
    points = jnp.linspace(-2.5, 2.5, 50)[:, None] * jnp.ones((1, 2))
    before, after = saved["basis"].basis_and_gradient(points)[0], joint.model.basis_and_gradient(points)[0]
    assert not np.allclose(before, after)  # the basis moved (the relative stages alone never move it)
    model, meta = load_checkpoint(joint.checkpoint)
    assert meta["training"]["joint_epochs"] == 3 and meta["training"]["near_weight"] == 4.0
    val = evaluate(model, str(few), "val")
    assert val.phi_error == pytest.approx(meta["validation"]["phi_error"], rel=0.35)


def test_dataset_overrides_refine_a_recipe_only_on_their_dataset():
    assert recipe_config("fc-ilr", "prisms2d").ridge == DATASET_OVERRIDES[("fc-ilr", "prisms2d")]["ridge"] == 1e-4
    assert recipe_config("fc-ilr", "circles2d").ridge == FitConfig.ridge  # circles2d's checkpoints stay reproducible
    assert recipe_config("fc-ilr", "prisms2d", ridge=1e-6).ridge == 1e-6  # an explicit option still wins
    assert recipe_config("fc-ilr", "prisms2d").epochs == 600 != RECIPES["fc-ilr"][1]["epochs"]  # prisms: 600 + 400
    assert recipe_config("fc-ilr", "circles2d").epochs == RECIPES["fc-ilr"][1]["epochs"] == 1800
    # the rest is the model's
    assert recipe_config("fc-ilr", "prisms2d").basis_steps == RECIPES["fc-ilr"][1]["basis_steps"]


def test_relative_targets_minimise_each_sources_relative_error(few):
    # target_floor: the whitened stage regresses on the code that minimises each source's relative
    # error (the fine-tune's loss), not on z*, which minimises its plain error. Both are exact
    # solves, so per source the relative loss of the first is at most that of the second.
    split = load(str(few), "train")
    domain = open_dataset(str(few)).spec.splits["train"].configuration.domain
    data = _Targets(split, domain, 1.0)
    model = build_model("fc-ilr-bilinear", preset="quick", length_scale=3.0, **SMALL)[0]
    points = data.uniform(np.random.default_rng(0), 256)
    matrix, whiten = _whitening(model, data, points, FitConfig())
    projector = matrix @ whiten
    plain, _, values = _whitened_targets(data, np.arange(60), points, projector)
    relative = _relative_targets(values, projector, 2, 0.1, 256)
    weights = _Targets.relative_weights(values.astype(np.float64), 2, 0.1)

    def loss(z):
        residual = z @ projector.T - values
        return np.sum(weights * residual ** 2, 1) / np.sum(weights * values ** 2, 1)

    assert np.all(loss(relative) <= loss(plain) * 1.01 + 1e-7)
    assert np.mean(loss(relative)) < 0.8 * np.mean(loss(plain)), (np.mean(loss(relative)), np.mean(loss(plain)))


def test_a_fit_with_relative_targets_trains_and_validates(few):
    result = fit(_tiny(few, target_floor=0.1), None)
    assert result.history[-1]["stage"] == "relative fine-tune"
    assert np.isfinite(result.history[-1]["phi_error"]) and np.isfinite(result.history[-1]["field_error"])


def _rows_with_errors(rng, errors):
    """y and predictions laid out like ``_Targets.weighted`` (one source, d = 2, 64 points) whose
    phi rows carry the given relative errors (point 0 gets ``errors[0]``, ...), the field exact."""
    n = 64
    y = rng.normal(size=(1, 3 * n))
    weights = _Targets.relative_weights(y, 2, 0.1)
    scale = np.mean(weights[:, :n] * y[:, :n] ** 2)
    predicted = y.copy()
    for point, error in enumerate(errors):  # w r^2 / mean(w y^2) = error^2
        predicted[0, point] += error * np.sqrt(scale / weights[0, point])
    return jnp.asarray(predicted), jnp.asarray(y), jnp.asarray(weights)


def test_the_robust_loss_is_the_squared_one_at_zero_and_bounds_a_hopeless_points_pull(rng):
    tau = 0.05
    predicted, y, weights = _rows_with_errors(rng, [0.01, 0.03])
    squared = _Targets.relative_loss(predicted, y, weights, 2)
    expected = np.sum(weights * (predicted - y) ** 2) / np.sum(weights * y ** 2)
    assert float(squared) == pytest.approx(float(expected), rel=1e-6)  # robust_scale 0: unchanged
    # the relative errors the Cauchy loss sees are the ones planted: log(1 + e^2 / tau^2) per
    # (point, quantity), averaged over 64 points x 2 quantities
    robust = _Targets.relative_loss(predicted, y, weights, 2, tau)
    planted = np.log1p((0.01 / tau) ** 2) + np.log1p((0.03 / tau) ** 2)
    assert float(robust) == pytest.approx(planted / 128, rel=1e-4)

    def pull(error, robust_scale):  # |d loss / d prediction| at the point with this error
        predicted, y, weights = _rows_with_errors(np.random.default_rng(1), [error])
        grad = jax.grad(lambda p: _Targets.relative_loss(p, y, weights, 2, robust_scale))(predicted)
        return float(jnp.abs(grad[0, 0]))

    # squared: a point 10x worse pulls 10x harder; Cauchy: a point at 10 tau pulls a fifth as hard
    # as one at tau (2e / (tau^2 + e^2)), so the points the median counts keep the gradient
    assert pull(10 * tau, 0.0) / pull(tau, 0.0) == pytest.approx(10.0, rel=1e-3)
    assert pull(10 * tau, tau) / pull(tau, tau) == pytest.approx(20 / 101, rel=1e-3)


def test_a_fit_with_the_robust_loss_trains_validates_and_records_it(few):
    result = fit(_tiny(few, robust_scale=0.05), None)
    assert result.history[-1]["stage"] == "relative fine-tune"
    assert np.isfinite(result.history[-1]["phi_error"]) and np.isfinite(result.history[-1]["field_error"])
    assert FitConfig(robust_scale=0.05).to_dict()["robust_scale"] == 0.05
