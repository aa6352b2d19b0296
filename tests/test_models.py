"""Models (fieldbench.models): superposition, harmonicity, field = -grad(phi), the exact and FMM
references, checkpoints, model names and user models, and the paper's model sizes.

Every property is checked against an independent computation (autodiff instead of the model's
field path, the exact solver, a second evaluation path, a rebuilt model), and each has a
counterpart showing that the check can fail: FC INR is not additive, the paper's Fourier form is
not harmonic, a corrupted checkpoint is refused.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fieldbench
from fieldbench import SourceBatch, Sources
from fieldbench.models import (
    ExactPredictor,
    FMMPredictor,
    LinearBasisModel,
    SourceFieldModel,
    TrainConfig,
    build_model,
    build_reference,
    load_checkpoint,
    load_predictor,
    model_class,
    save_checkpoint,
    train,
)
from fieldbench.pipeline import SplitSpec

ROOT = Path(__file__).resolve().parents[1]
USER_MODEL = ROOT / "examples" / "my_model.py"
USER_SPEC = f"{USER_MODEL}:MyModel"
LENGTH = 3.0  # the length scale of the sources below (centres in [-3, 3]^2)
ADDITIVE = ("fourier", "fourier-harmonic", "fc-ilr", "linear", USER_SPEC)
LEARNED = ADDITIVE + ("fc-inr",)
IDS = {USER_SPEC: "user-model"}


def _id(name: str) -> str:
    return IDS.get(name, name)


@functools.cache
def built(name: str) -> tuple[SourceFieldModel, dict]:
    """A randomly initialised model of the quick preset (seed 1) and its hyperparameters, built once."""
    return build_model(name, length_scale=LENGTH, preset="quick", seed=1)


def model(name: str) -> SourceFieldModel:
    return built(name)[0]


@eqx.filter_jit
def predict(m, batch, points):
    """``m.predict`` (encode, then evaluate), compiled once per model instead of run op by op."""
    return m.evaluate(m.encode(batch), points)


def relative(difference, scale) -> float:
    return float(np.max(np.abs(np.asarray(difference))) / np.max(np.abs(np.asarray(scale))))


# -- sources: A, and B overlapping A (a prism over a disc, a disc over another) -------------------
RNG = np.random.default_rng(20240607)
A = Sources.discs(RNG.uniform(-2.0, 2.0, (3, 2)), RNG.normal(size=(3, 2)), RNG.uniform(0.3, 1.0, 3))
B = Sources.concat([
    Sources.prisms(A.centers[:1] + 0.2, RNG.normal(size=(1, 2)), [[1.0, 0.7]]),
    Sources.discs(A.centers[1:2] - 0.3, RNG.normal(size=(1, 2)), [0.8]),
])
UNION = Sources.concat([A, B])
POINTS = RNG.uniform(-3.0, 3.0, (200, 2))


def test_the_sources_overlap():
    """The superposition tests below include overlapping sources (else they would prove less)."""
    assert np.any(A.contains(B.centers)) and np.any(B.contains(A.centers))


# -- superposition -----------------------------------------------------------------------------------
def _superposition_errors(predictor, phi=None, field=None) -> tuple[float, float]:
    if phi is None:
        phi, field = predictor.predict(SourceBatch.pad([A, B, UNION]), POINTS)  # rows: A, B, A u B
    phi_scale = np.max(np.abs(phi[0])) + np.max(np.abs(phi[1]))
    field_scale = np.max(np.abs(field[0])) + np.max(np.abs(field[1]))
    assert phi_scale > 0 and field_scale > 0
    return (float(np.max(np.abs(phi[2] - phi[0] - phi[1])) / phi_scale),
            float(np.max(np.abs(field[2] - field[0] - field[1])) / field_scale))


@pytest.mark.parametrize("name", ADDITIVE, ids=_id)
def test_additive_models_superpose_to_float32_precision(name):
    m = model(name)
    assert m.additive
    phi_error, field_error = _superposition_errors(m, *map(np.asarray, predict(m, SourceBatch.pad([A, B, UNION]),
                                                                               POINTS)))
    assert phi_error < 1e-5 and field_error < 1e-5, (phi_error, field_error)


def test_superposition_also_holds_sample_by_sample():
    """The same through the public predict, one call per collection (no padding in common)."""
    m = model("linear")
    (phi_a, field_a), (phi_b, field_b), (phi_u, field_u) = (m.predict(s, POINTS) for s in (A, B, UNION))
    assert relative(phi_u - phi_a - phi_b, np.abs(phi_a) + np.abs(phi_b)) < 1e-5
    assert relative(field_u - field_a - field_b, np.abs(field_a) + np.abs(field_b)) < 1e-5


def test_exact_predictor_superposes_and_agrees_with_the_solver():
    predictor = ExactPredictor()
    assert predictor.additive and predictor.harmonic
    batch = SourceBatch.pad([A, B, UNION])
    phi, field = predictor.predict(batch, POINTS)
    phi_error, field_error = _superposition_errors(predictor, phi, field)
    assert phi_error < 1e-12 and field_error < 1e-12
    expected_phi, expected_field = fieldbench.potential_and_field(UNION, POINTS)
    np.testing.assert_allclose(phi[2], expected_phi, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected_phi)))
    np.testing.assert_allclose(field[2], expected_field, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected_field)))
    # per-sample points: each sample its own permutation of the points
    orders = [np.random.default_rng(seed).permutation(len(POINTS)) for seed in range(3)]
    phi_each, field_each = predictor.predict(batch, np.stack([POINTS[order] for order in orders]))
    for index, order in enumerate(orders):
        np.testing.assert_allclose(phi_each[index], phi[index][order], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(field_each[index], field[index][order], rtol=1e-12, atol=1e-15)
    assert build_reference("exact").name == "exact" and isinstance(load_predictor("exact"), ExactPredictor)


def test_fc_inr_is_not_additive():
    """The documented counterpart: a sum of FC INR codes is not a sum of fields."""
    m = model("fc-inr")
    assert not m.additive
    phi_error, field_error = _superposition_errors(m, *map(np.asarray, predict(m, SourceBatch.pad([A, B, UNION]),
                                                                               POINTS)))
    assert phi_error > 0.05 and field_error > 0.05, (phi_error, field_error)


# -- harmonicity ---------------------------------------------------------------------------------------
def _as_float64(m):
    return jax.tree_util.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, m)


def _laplacian_ratios(m, dtype) -> np.ndarray:
    """|Laplacian of phi| / (|phi_xx| + |phi_yy|) at 64 points, the Hessian by autodiff of the potential."""
    code = m.encode(SourceBatch.pad([A]))[0].astype(dtype)
    points = jnp.asarray(np.random.default_rng(5).uniform(-3.0, 3.0, (64, 2)), dtype)

    @jax.jit
    def hessians(points):
        return jax.vmap(jax.hessian(lambda p: m.potential(code, p[None])[0]))(points)

    h = np.asarray(hessians(points), np.float64)
    laplacian = h[:, 0, 0] + h[:, 1, 1]
    scale = np.abs(h[:, 0, 0]) + np.abs(h[:, 1, 1])
    assert np.all(scale > 0)
    return np.abs(laplacian) / scale


def test_harmonic_fourier_variant_solves_laplace():
    m = model("fourier-harmonic")
    assert m.harmonic
    assert np.max(_laplacian_ratios(m, jnp.float32)) < 1e-4  # float32 rounding
    assert np.max(_laplacian_ratios(_as_float64(m), jnp.float64)) < 1e-10  # exact up to float64 rounding


def test_paper_fourier_variant_is_not_harmonic():
    """Eq. 11's separable products have Laplacian -(k_n^2 + k_m^2) times each term: not ~0."""
    m = model("fourier")
    assert not m.harmonic
    assert np.median(_laplacian_ratios(m, jnp.float32)) > 0.1


# -- field = -grad(phi); shared and per-sample points ----------------------------------------------------
@eqx.filter_jit
def _paths(m, batch, points):
    """The model's own paths (shared points, per-sample points) and autodiff of its potential."""
    codes = m.encode(batch)

    def autodiff(code, pts):
        phi = jax.vmap(lambda p: m.potential(code, p[None])[0])(pts)
        field = -jax.vmap(jax.grad(lambda p: m.potential(code, p[None])[0]))(pts)
        return phi, field

    per_sample = m.evaluate(codes, points)
    shared = m.evaluate(codes, points[0])
    shared_as_per_sample = m.evaluate(codes, jnp.broadcast_to(points[0], points.shape))
    return per_sample, shared, shared_as_per_sample, jax.vmap(autodiff)(codes, points)


@pytest.mark.parametrize("name", LEARNED, ids=_id)
def test_field_is_minus_gradient_of_potential(name):
    m = model(name)
    batch = SourceBatch.pad([A, B])
    points = jnp.asarray(np.random.default_rng(6).uniform(-3.0, 3.0, (2, 96, 2)), jnp.float32)
    (phi, field), shared, shared_as_per_sample, (auto_phi, auto_field) = _paths(m, batch, points)
    assert phi.shape == (2, 96) and field.shape == (2, 96, 2)
    assert relative(phi - auto_phi, auto_phi) < 2e-5
    assert relative(field - auto_field, auto_field) < 2e-5
    # the shared-points path (for linear-in-code models: the basis once per batch) is the
    # per-sample path with the same points; sample 0 has the shared points, so also autodiff
    assert relative(shared[0] - shared_as_per_sample[0], shared[0]) < 2e-5
    assert relative(shared[1] - shared_as_per_sample[1], shared[1]) < 2e-5
    assert relative(shared[0][0] - auto_phi[0], auto_phi[0]) < 2e-5
    assert relative(shared[1][0] - auto_field[0], auto_field[0]) < 2e-5
    # and different points per sample really give different values (the paths are not trivial)
    assert relative(phi[1] - shared[0][1], shared[0][1]) > 1e-2


# -- references -------------------------------------------------------------------------------------------
def _fmm_or_skip():
    try:
        from fieldbench.physics import fmm
    except ImportError:
        pytest.skip("fieldbench.physics.fmm is not there")
    if not fmm.fmm_available():
        pytest.skip("pyfmmlib is not installed")
    return fmm


@pytest.mark.parametrize("variant", ["corrected", "pure"])
def test_fmm_predictor_agrees_with_exact_outside_sources(variant):
    """Outside discs both variants are exact dipole sums, so only the FMM's iprec limits them; the
    corrected variant is also exact near and inside prisms."""
    fmm = _fmm_or_skip()
    rng = np.random.default_rng(7)
    discs = Sources.discs(rng.uniform(-2, 2, (4, 2)), rng.normal(size=(4, 2)), rng.uniform(0.2, 0.6, 4))
    prisms = Sources.prisms(rng.uniform(-2, 2, (3, 2)), rng.normal(size=(3, 2)), rng.uniform(0.2, 0.8, (3, 2)))
    sources = Sources.concat([discs, prisms]) if variant == "corrected" else discs
    points = rng.uniform(-3, 3, (400, 2))
    points = points[~sources.contains(points, strict=False).any(axis=1)]
    exact_phi, exact_field = fieldbench.potential_and_field(sources, points)
    errors = {}
    for iprec in (1, 2):
        phi, field = FMMPredictor(variant, iprec=iprec).predict(sources, points)
        errors[iprec] = (relative(phi[0] - exact_phi, exact_phi), relative(field[0] - exact_field, exact_field))
        tolerance = fmm.IPREC_TOLERANCE[iprec]
        assert max(errors[iprec]) < tolerance, (iprec, errors[iprec], tolerance)
    assert max(errors[2]) < max(errors[1]) / 100  # the precision flag does something


def test_fmm_dipole_is_the_corrected_fmm_with_a_point_dipole_per_prism():
    """``fmm-dipole`` (the paper's corrected FMM): exact near and inside every source like ``fmm``, but
    beyond a prism's near zone its point dipole only, so on prisms its error sits between ``fmm``'s
    (a ring of dipoles per prism) and ``fmm-pure``'s (wrong inside and near them): worst error over
    the largest |phi|, each at least 10x apart. On discs (dipole exact outside) it is ``fmm``."""
    _fmm_or_skip()
    from fieldbench.models._registry import REFERENCE

    assert all(build_reference(name).name == name for name in REFERENCE)
    rng = np.random.default_rng(3)
    discs = Sources.discs(rng.uniform(-2, 2, (6, 2)), rng.normal(size=(6, 2)), rng.uniform(0.2, 0.5, 6))
    points = rng.uniform(-3, 3, (500, 2))
    with_ring, dipole = build_reference("fmm"), build_reference("fmm-dipole")
    for a, b in zip(with_ring.predict(discs, points), dipole.predict(discs, points)):
        np.testing.assert_array_equal(a, b)
    prisms = Sources.prisms(rng.uniform(-2, 2, (6, 2)), rng.normal(size=(6, 2)), rng.uniform(0.3, 0.8, (6, 2)))
    exact_phi, _ = fieldbench.potential_and_field(prisms, points)
    error = {name: np.max(np.abs(build_reference(name).predict(prisms, points)[0][0] - exact_phi))
             / np.max(np.abs(exact_phi)) for name in ("fmm", "fmm-dipole", "fmm-pure")}
    assert error["fmm"] < error["fmm-dipole"] / 10 and error["fmm-dipole"] < error["fmm-pure"] / 10, error
    with pytest.raises(ValueError, match="prism_order applies to the corrected variant only"):
        FMMPredictor("pure", prism_order=1)
    for bad in (0, True, 2.0):  # refused when built, not at the first prediction (True would read as 1)
        with pytest.raises(ValueError, match="prism_order must be None"):
            FMMPredictor("corrected", prism_order=bad)
    with pytest.raises(ValueError, match="'fmm-dipole' is a reference method .*learned baselines: fourier"):
        build_model("fmm-dipole")


# -- checkpoints -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LEARNED, ids=_id)
def test_checkpoint_round_trip_is_identical(name, tmp_path):
    original, hyperparameters = built(name)
    path = save_checkpoint(tmp_path / "model.eqx", original, {"model": name, "hyperparameters": hyperparameters})
    restored, meta = load_checkpoint(path)
    assert type(restored).__name__ == type(original).__name__ and meta["model"] == name
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(original)
    for a, b in zip(jax.tree_util.tree_leaves(original), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    batch = SourceBatch.pad([A, B, UNION])
    for x, y in zip(predict(original, batch, POINTS), predict(load_predictor(name, path), batch, POINTS)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_checkpoint_of_another_model_gives_other_outputs(tmp_path):
    """The counterpart of the round trip: a model of another seed does not reproduce them."""
    original, hyperparameters = built("fc-ilr")
    other = build_model("fc-ilr", length_scale=LENGTH, preset="quick", seed=4)[0]
    path = save_checkpoint(tmp_path / "other.eqx", other, {"model": "fc-ilr", "hyperparameters": hyperparameters})
    batch = SourceBatch.pad([A, B, UNION])
    assert not np.array_equal(np.asarray(predict(load_predictor("fc-ilr", path), batch, POINTS)[0]),
                              np.asarray(predict(original, batch, POINTS)[0]))


def test_corrupted_checkpoint_is_refused(tmp_path):
    m, hyperparameters = build_model("linear", length_scale=LENGTH)
    path = save_checkpoint(tmp_path / "model.eqx", m, {"model": "linear", "hyperparameters": hyperparameters})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="checkpoint"):
        load_predictor("fc-ilr")  # a learned model needs its checkpoint


def test_checkpoint_metadata_must_be_intact_and_name_its_model(tmp_path):
    m, hyperparameters = build_model("linear", length_scale=LENGTH)
    path = save_checkpoint(tmp_path / "model.eqx", m, {"model": "linear", "hyperparameters": hyperparameters})
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    with pytest.raises(ValueError, match="belongs to model 'linear', not 'fc-ilr'"):
        load_checkpoint(path, "fc-ilr")  # not a cryptic equinox error
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "checkpoint_sha256"}))
    with pytest.raises(ValueError, match="records no checkpoint_sha256"):
        load_checkpoint(path)  # an unchecked checkpoint is never scored
    meta_path.write_text(json.dumps(meta)[:-5])
    with pytest.raises(ValueError, match=f"{meta_path.name} is not valid JSON"):
        load_checkpoint(path)


@pytest.mark.parametrize("rates", [(float("nan"),), (1e-3, float("inf")), (0.0,)])
def test_non_finite_learning_rates_are_refused_before_training(rates):
    with pytest.raises(ValueError, match="learning_rates must be positive numbers"):
        TrainConfig(learning_rates=rates)


# -- names and user models ------------------------------------------------------------------------------------
def test_unknown_names_give_clear_errors():
    with pytest.raises(ValueError, match=r"unknown model 'resnet'.*fc-ilr.*file\.py:ClassName"):
        build_model("resnet")
    with pytest.raises(ValueError, match="unknown model"):
        model_class("weights.txt:Model")
    with pytest.raises(ValueError, match=r"unknown preset 'huge'"):
        build_model("fc-ilr", preset="huge")
    with pytest.raises(ValueError, match="not a reference"):
        build_reference("fc-ilr")


BAD_USER_MODELS = {
    "missing-class": ("class Other:\n    pass\n", "Missing", ValueError, r"defines no 'Missing'.*Other"),
    "not-a-model": ("class NotAModel:\n    pass\n", "NotAModel", TypeError,
                    "subclass of fieldbench.models.SourceFieldModel"),
    "no-create": ("from fieldbench.models import LinearBasisModel\n\nclass NoCreate(LinearBasisModel):\n"
                  "    def encode_sources(self, features):\n        return features\n\n"
                  "    def basis(self, points):\n        return points\n", "NoCreate", TypeError, "create"),
}


@pytest.mark.parametrize("case", BAD_USER_MODELS)
def test_bad_user_model_specs_give_clear_errors(case, tmp_path):
    source, class_name, error, message = BAD_USER_MODELS[case]
    path = tmp_path / "user.py"
    path.write_text(source)
    with pytest.raises(error, match=message):
        build_model(f"{path}:{class_name}")


def test_missing_user_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        build_model(f"{tmp_path}/absent.py:MyModel")


def test_user_model_builds_from_a_relative_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    m, hyperparameters = build_model("examples/my_model.py:MyModel", length_scale=LENGTH, n_centers=25)
    assert isinstance(m, LinearBasisModel) and m.additive and not m.harmonic
    assert m.centers.shape == (25, 2) and hyperparameters["n_centers"] == 25
    assert type(m).create.__doc__ and type(m).__doc__ and "create" in (USER_MODEL.read_text())


@pytest.fixture(scope="module")
def tiny_dataset(make_dataset, disc_configuration) -> Path:
    configuration = disc_configuration()
    return make_dataset("models-tiny", {"train": SplitSpec(configuration, samples=2, points=32, seed=31),
                                        "val": SplitSpec(configuration, samples=1, points=32, seed=32)})


def test_user_model_trains_checkpoints_and_evaluates(tiny_dataset, tmp_path):
    config = TrainConfig(model=USER_SPEC, dataset=str(tiny_dataset), steps=4, batch_size=2, points="dataset",
                         learning_rates=(3e-3,), validate_every=2, validation_samples=1,
                         hyperparameters={"n_centers": 16, "hypernet_width": 16})
    result = train(config, tmp_path / "user.eqx")
    assert [record["step"] for record in result.history] == [2, 4]
    assert all(math.isfinite(record[key]) for record in result.history for key in ("loss", "phi_error", "field_error"))
    meta = json.loads(result.checkpoint.with_suffix(".json").read_text())
    assert meta["model"] == USER_SPEC and meta["code"]["module"] == str(USER_MODEL)
    assert meta["properties"]["additive"] is True and meta["properties"]["harmonic"] is False
    predictor = load_predictor(USER_SPEC, result.checkpoint)
    assert type(predictor) is type(result.model)  # one class per file: the same pytree type
    phi, field = predict(predictor, SourceBatch.pad([A, B]), POINTS[:32])
    assert phi.shape == (2, 32) and field.shape == (2, 32, 2) and np.all(np.isfinite(field))
    np.testing.assert_array_equal(np.asarray(phi), np.asarray(predict(result.model, SourceBatch.pad([A, B]),
                                                                      POINTS[:32])[0]))


# -- the paper's sizes (Table 3), without building the weights -------------------------------------------------
def _parameter_count(name: str, preset: str) -> int:
    shapes = eqx.filter_eval_shape(lambda: build_model(name, preset=preset, length_scale=LENGTH)[0])
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)
               if isinstance(leaf, jax.ShapeDtypeStruct))


def test_parameter_counts_without_weights_match_a_built_model():
    count = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model("fc-ilr"), eqx.is_array)))
    assert _parameter_count("fc-ilr", "quick") == count


@pytest.mark.parametrize("name, low, high", [("fourier", 6.0e6, 6.6e6),  # Table 3: 6.3M
                                              ("fc-ilr", 1.25e6, 1.55e6),  # 1.5M (1.29M with a 400-wide basis)
                                              ("fc-inr", 1.6e6, 1.8e6)])  # 1.7M
def test_paper_presets_match_table_3(name, low, high):
    assert low <= _parameter_count(name, "paper") <= high
