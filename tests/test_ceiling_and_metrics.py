"""The rank-L ceiling (fieldbench.evaluation.ceiling) against an SVD written here, Eq. 10's
relative errors and the global relative L2 metric on cases worked by hand, and the circles2d-paper
variant's centre distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _helpers import STANDARD

from fieldbench.datasets import load, registry_entries
from fieldbench.evaluation import ceiling
from fieldbench.metrics import TINY, median_relative_error, relative_errors, relative_l2_error
from fieldbench.physics import potential_and_field_batched
from fieldbench.pipeline import DatasetSpec, SplitSpec
from fieldbench.pipeline._spec import _configuration_to_dict
from fieldbench.sources import ConfigurationSpec, sample_configurations


@pytest.fixture(scope="module")
def discs(make_dataset, disc_configuration) -> Path:
    return make_dataset("discs", {"train": SplitSpec(disc_configuration(), samples=300, points=8, seed=1),
                                  "test_multi": SplitSpec(disc_configuration(sources=(2, 4)), samples=20, points=8,
                                                          seed=2)})


def test_relative_errors_of_scalars_by_hand():
    target = np.array([[2.0, -4.0], [0.5, 1e-12]])
    predicted = np.array([[2.2, -3.0], [0.5, 7.0]])
    errors, usable = relative_errors(predicted, target, vector=False)
    # Flat; the last point's |phi| is far below TINY x the median |phi| (1.25): excluded, NaN.
    assert usable.tolist() == [True, True, True, False]
    np.testing.assert_allclose(errors[:3], [0.1, 0.25, 0.0], rtol=1e-12)
    assert np.isnan(errors[3])
    # The median of the usable three, in percent, and the count of the excluded.
    assert median_relative_error(predicted, target, vector=False) == (pytest.approx(10.0), 1)


def test_relative_errors_of_vectors_use_norms():
    target = np.array([[3.0, 4.0], [0.0, 1.0], [1.0, 0.0]])
    predicted = np.array([[3.0, 4.5], [0.6, 1.8], [0.0, 0.0]])
    errors, usable = relative_errors(predicted, target, vector=True)
    assert usable.all()
    np.testing.assert_allclose(errors, [0.1, 1.0, 1.0], rtol=1e-12)  # ||(0, .5)||/5, ||(.6, .8)||/1, 1/1
    assert median_relative_error(predicted, target, vector=True) == (pytest.approx(100.0), 0)


def test_the_tiny_threshold_is_relative_to_the_median_and_strict():
    # Exactly TINY x the median magnitude is excluded (> is the rule), twice that is kept.
    target = np.array([1.0, 1.0, 1.0, TINY, 2 * TINY])
    errors, usable = relative_errors(target * 1.5, target, vector=False)
    assert usable.tolist() == [True, True, True, False, True]
    assert errors[4] == pytest.approx(0.5)
    # The threshold scales with the data: uniformly tiny magnitudes are all usable ...
    small = np.array([1e-30, 2e-30, 3e-30])
    assert relative_errors(small * 1.1, small, vector=False)[1].all()
    assert median_relative_error(small * 1.1, small, vector=False) == (pytest.approx(10.0), 0)
    # ... and a vanishing target leaves nothing to take a median of: NaN, every point counted.
    value, excluded = median_relative_error(np.ones((2, 3)), np.zeros((2, 3)), vector=False)
    assert np.isnan(value) and excluded == 6
    value, excluded = median_relative_error(np.ones((4, 2)), np.zeros((4, 2)), vector=True)
    assert np.isnan(value) and excluded == 4


def test_relative_l2_error_by_hand():
    target = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert relative_l2_error(target + np.array([[0.0, 0.5], [0.0, 0.0]]), target) == pytest.approx(10.0)
    assert relative_l2_error(target, target) == 0.0
    assert np.isnan(relative_l2_error(np.ones(3), np.zeros(3)))


def test_the_ceiling_matches_a_direct_svd(discs):
    result = ceiling(str(discs), "test_multi", ranks=(4, 16, 64), points=200, train_sources=300, seed=5)
    # Independently: the same points, an SVD of the training potentials, projections of the sums.
    rng = np.random.default_rng(5)
    where = rng.uniform(-3, 3, size=(200, 2))
    train, test = load(str(discs), "train"), load(str(discs), "test_multi")
    exact = lambda s: np.asarray(potential_and_field_batched(s.batch, where)[0])  # noqa: E731
    _, _, vt = np.linalg.svd(exact(train), full_matrices=False)
    target = exact(test)
    for rank, got, got_l2 in zip(result.ranks, result.phi_error, result.phi_relative_l2):
        basis = vt[:rank]
        projection = target @ basis.T @ basis
        assert got == pytest.approx(median_relative_error(projection, target, vector=False)[0], rel=1e-6)
        assert got_l2 == pytest.approx(100 * np.linalg.norm(projection - target) / np.linalg.norm(target), rel=1e-6)
    assert result.phi_error[0] > result.phi_error[1] > result.phi_error[2]  # more rank, better


def test_the_field_ceiling_matches_a_direct_svd_of_potential_and_field(discs):
    """field=True: the best rank-L space for the stacked (phi, H) vectors (each block scaled by its
    RMS over the training sources), from an SVD written here; the potential-only figures are
    unchanged."""
    result = ceiling(str(discs), "test_multi", ranks=(4, 16, 64), points=200, train_sources=300, seed=5, field=True)
    alone = ceiling(str(discs), "test_multi", ranks=(4, 16, 64), points=200, train_sources=300, seed=5)
    assert result.phi_error == alone.phi_error and alone.field_error is None
    rng = np.random.default_rng(5)
    where = rng.uniform(-3, 3, size=(200, 2))
    train, test = load(str(discs), "train"), load(str(discs), "test_multi")
    phi, field = (np.asarray(v, np.float64) for v in potential_and_field_batched(train.batch, where))
    s_phi, s_field = np.sqrt(np.mean(phi ** 2)), np.sqrt(np.mean(field ** 2))
    _, _, vt = np.linalg.svd(np.hstack([phi / s_phi, field.reshape(len(field), -1) / s_field]), full_matrices=False)
    target_phi, target_field = (np.asarray(v, np.float64) for v in potential_and_field_batched(test.batch, where))
    target = np.hstack([target_phi / s_phi, target_field.reshape(len(target_field), -1) / s_field])
    for index, rank in enumerate(result.ranks):
        projection = target @ vt[:rank].T @ vt[:rank]
        h = projection[:, 200:].reshape(target_field.shape) * s_field
        assert result.field_error[index] == pytest.approx(median_relative_error(h, target_field, vector=True)[0],
                                                          rel=1e-6)
        assert result.field_relative_l2[index] == pytest.approx(
            100 * np.linalg.norm(h - target_field) / np.linalg.norm(target_field), rel=1e-6)
        assert result.joint_phi_error[index] == pytest.approx(
            median_relative_error(projection[:, :200] * s_phi, target_phi, vector=False)[0], rel=1e-6)
    assert result.field_error[0] > result.field_error[1] > result.field_error[2]


def test_the_ceiling_refuses_a_rank_beyond_its_data(discs):
    with pytest.raises(ValueError, match="rank 500"):
        ceiling(str(discs), "test_multi", ranks=(500,), points=200, train_sources=300)


def test_normal_centres_follow_the_public_codes_distribution(rng):
    spec = ConfigurationSpec(families=("disc",), sources=1, domain=3.0, size=1.0, centres="normal")
    centres = np.concatenate([s.centers for s in sample_configurations(spec, 4000, rng)])
    assert np.abs(centres.mean(0)).max() < 0.06 and np.abs(centres.std(0) - 1.0).max() < 0.05
    assert (np.abs(centres) > 3).any()  # not clipped to the domain
    with pytest.raises(ValueError, match="centres"):
        ConfigurationSpec(centres="gaussian")


def test_uniform_centres_keep_old_specs_and_their_checksums():
    # The new field is implicit at its default, so every card written before it still matches.
    assert "centres" not in _configuration_to_dict(ConfigurationSpec())
    assert _configuration_to_dict(ConfigurationSpec(centres="normal"))["centres"] == "normal"
    paper = registry_entries("circles2d-paper")
    assert paper["content_sha256"] != registry_entries("circles2d")["content_sha256"]


def test_the_paper_variant_is_what_the_public_code_draws():
    spec = DatasetSpec.from_dict(__import__("json").loads(
        (STANDARD / "circles2d-paper.json").read_text()))
    multi = spec.splits["test_multi"].configuration
    assert multi.sources == (4, 4) and multi.overlap == "allowed" and multi.centres == "normal"
    assert spec.splits["train"].configuration.centres == "normal" and spec.splits["train"].samples == 10000
