"""The evaluator (fieldbench.evaluation.evaluate) against brute force written here.

"Inside" means inside at least one source (overlaps included), and the signed distance of Fig. 5b
is min over sources of (signed distance to that source's boundary) / its size. The metrics are
checked on a tiny generated dataset scored by a toy predictor whose per-point relative errors are
set by the test, so every median, percentile, count and bin has a value computed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fieldbench.metrics
from fieldbench.datasets import load
from fieldbench.evaluation import DISTANCE_BINS, InvalidPrediction, boundary_distance, evaluate
from fieldbench.models import Predictor
from fieldbench.pipeline import SplitSpec
from fieldbench.sources import ConfigurationSpec, SourceBatch, Sources, sample_configurations


def _per_source(sources: Sources, points: np.ndarray) -> np.ndarray:
    """(K, N): the signed distance of each point to each source's boundary over that source's size."""
    out = np.empty((len(sources), len(points)))
    for k in range(len(sources)):
        centre, size, family = sources.centers[k], sources.sizes[k], int(sources.family[k])
        for i, p in enumerate(points):
            d = p - centre
            if family in (0, 3):  # disc, sphere: sizes are full extents (diameters)
                value = np.linalg.norm(d) - size[0] / 2
            else:
                excess = np.abs(d) - size / 2
                value = np.linalg.norm(np.maximum(excess, 0)) if (excess > 0).any() else excess.max()
            out[k, i] = value / size.max()
    return out


def _brute_force(sources: Sources, points: np.ndarray) -> np.ndarray:
    """Per point: min over sources of (signed distance to that source's boundary) / its size."""
    return _per_source(sources, points).min(axis=0)


def _inside(sources: Sources, points: np.ndarray) -> np.ndarray:
    """Per point: strictly inside at least one source (disc: within its radius; box: within every half side)."""
    inside = np.zeros(len(points), bool)
    for k in range(len(sources)):
        d = points - sources.centers[k]
        if int(sources.family[k]) in (0, 3):
            inside |= np.linalg.norm(d, axis=1) < sources.sizes[k][0] / 2
        else:
            inside |= (np.abs(d) < sources.sizes[k] / 2).all(axis=1)
    return inside


def _old_rule(sources: Sources, points: np.ndarray) -> np.ndarray:
    """The rule the evaluator had before: the signed distance to the nearest (size-normalised)
    boundary of any source, so its sign follows whichever boundary is closest."""
    per_source = _per_source(sources, points)
    return per_source[np.argmin(np.abs(per_source), axis=0), np.arange(len(points))]


def test_a_point_inside_one_source_but_near_another_is_inside():
    # Disc A (radius 1 at the origin) overlaps disc B (radius 1 at x = 1.5). (0.45, 0) is inside A
    # only, 0.55 deep in A but 0.05 outside B's rim: the nearest boundary is B's, so the old rule
    # called it outside. (-0.7, 0) is inside A only and nearest to A's rim; (0.6, 0) is inside both;
    # (3, 0) is outside both, nearest to B.
    discs = Sources.discs(centers=[[0, 0], [1.5, 0]], magnetisations=[[1, 0], [0, 1]], radii=[1.0, 1.0])
    points = np.array([[0.45, 0.0], [-0.7, 0.0], [0.6, 0.0], [3.0, 0.0]])
    batch = SourceBatch.pad([discs])
    got = boundary_distance(batch.family, batch.centers, batch.sizes, batch.mask, points[None])[0]
    assert list(got < 0) == list(_inside(discs, points)) == [True, True, True, False]
    # By hand (sizes are diameters, 2): minus the deepest depth inside, else the nearest rim, over 2.
    np.testing.assert_allclose(got, [-0.55 / 2, -0.3 / 2, -0.4 / 2, 0.5 / 2], rtol=1e-12)
    np.testing.assert_allclose(got, _brute_force(discs, points), rtol=1e-12)
    # The case this test exists for: the old nearest-boundary rule puts (0.45, 0) outside.
    old = _old_rule(discs, points)
    assert old[0] == pytest.approx(0.05 / 2) and old[0] > 0 > got[0]


@pytest.mark.parametrize("families", [("disc",), ("prism",)])
def test_inside_and_distance_match_brute_force_on_overlapping_samples(families):
    spec = ConfigurationSpec(families=families, sources=(2, 6), domain=1.0, size=(0.2, 0.8), overlap="forced")
    rng = np.random.default_rng(7)
    samples = sample_configurations(spec, 12, rng)
    batch = SourceBatch.pad(samples)
    points = rng.uniform(-1.5, 1.5, size=(12, 300, 2))
    got = boundary_distance(batch.family, batch.centers, batch.sizes, batch.mask, points)
    labelled_inside = 0
    for s, sources in enumerate(samples):
        inside = sources.contains(points[s]).any(axis=1)
        assert np.array_equal(got[s] < 0, inside)
        np.testing.assert_allclose(got[s], _brute_force(sources, points[s]), rtol=1e-12, atol=1e-15)
        labelled_inside += inside.sum()
    assert labelled_inside > 100  # the case that was wrong: plenty of points inside overlapping sources


# -- evaluate() on a tiny generated dataset, with errors set by the test ---------------------------------------------

SPLIT = "test_overlap"


@pytest.fixture(scope="module")
def overlapping(make_dataset) -> Path:
    """12 samples of 2-4 overlapping discs and rectangles, 200 points each in [-2, 2]^2 (many inside,
    some several sizes away, so every distance bin but the deepest is populated)."""
    configuration = ConfigurationSpec(families=("disc", "prism"), sources=(2, 4), domain=1.0, size=(0.3, 0.8),
                                      overlap="forced")
    return make_dataset("overlapping", {SPLIT: SplitSpec(configuration, samples=12, points=200, point_domain=2.0,
                                                         seed=3)})


class _Scaled(Predictor):
    """The stored solution times (1 + factor) per point, so each point's relative error is exactly
    |factor| for phi and for H. Samples are found by their points, whatever the evaluator's batching."""

    name = "scaled"

    def __init__(self, data, factor):
        self.row = {data.points[s].tobytes(): s for s in range(len(data))}
        self.phi = data.phi.astype(np.float64) * (1 + factor)
        self.field = data.field.astype(np.float64) * (1 + factor)[..., None]

    def encode(self, batch):
        return None

    def evaluate(self, code, points):
        rows = [self.row[np.asarray(p).tobytes()] for p in points]
        return self.phi[rows], self.field[rows]


def _geometry(data):
    """Brute-force distances and inside labels of every point, (S, N) each."""
    points = data.points.astype(np.float64)
    distance = np.stack([_brute_force(data.sources(s), points[s]) for s in range(len(data))])
    inside = np.stack([_inside(data.sources(s), points[s]) for s in range(len(data))])
    return distance, inside


def _factor(data, inside):
    """Errors set so that the pooled and the per-sample medians are far apart: in 7 samples 60% of
    the points have 1% error and the rest 10%, in the other 5 every point has 10%; so most samples
    have a median of 1% but most points an error of 10% (times 0.9-1.1 per point, x 3 inside a
    source, random signs)."""
    rng = np.random.default_rng(11)
    samples, points = data.phi.shape
    small = (np.arange(samples) < 7)[:, None] & (rng.permuted(np.tile(np.arange(points), (samples, 1)), axis=1)
                                                 < 0.6 * points)
    magnitude = np.where(small, 0.01, 0.1) * rng.uniform(0.9, 1.1, (samples, points))
    return np.where(inside, 3.0, 1.0) * magnitude * rng.choice([-1.0, 1.0], (samples, points))


def _usable(data, tiny):
    """Eq. 10's denominators: the true magnitude above ``tiny`` x its median over the split's points."""
    phi = np.abs(data.phi.astype(np.float64))
    field = np.linalg.norm(data.field.astype(np.float64), axis=-1)
    return phi > tiny * np.median(phi), field > tiny * np.median(field)


def _median(values):
    return 100 * float(np.median(values)) if values.size else float("nan")


def _p90(values):
    """The 90th percentile with linear interpolation between order statistics, by hand."""
    ordered = np.sort(values)
    position = 0.9 * (len(ordered) - 1)
    low = int(np.floor(position))
    return ordered[low] + (position - low) * (ordered[min(low + 1, len(ordered) - 1)] - ordered[low])


def _check_against_brute_force(result, data, factor, tiny):
    distance, inside = _geometry(data)
    error = np.abs(factor)
    phi_ok, field_ok = _usable(data, tiny)
    assert result.samples == len(data) and result.points == data.phi.size
    assert result.excluded == {"phi": int((~phi_ok).sum()), "field": int((~field_ok).sum())}
    assert result.phi_error == pytest.approx(_median(error[phi_ok]), rel=1e-9)
    assert result.field_error == pytest.approx(_median(error[field_ok]), rel=1e-9)
    for key, ok in (("phi", phi_ok), ("field", field_ok)):
        medians = np.array([_median(error[s][ok[s]]) for s in range(len(data))])
        assert result.per_sample[key]["median"] == pytest.approx(float(np.median(medians)), rel=1e-9)
        assert result.per_sample[key]["p90"] == pytest.approx(_p90(medians), rel=1e-9)
    for label, where in (("inside", inside), ("outside", ~inside)):
        got = getattr(result, label)
        assert got["points"] == int(where.sum())
        assert got["phi_error"] == pytest.approx(_median(error[where & phi_ok]), rel=1e-9)
        assert got["field_error"] == pytest.approx(_median(error[where & field_ok]), rel=1e-9)
    assert [(b["from"], b["to"]) for b in result.by_distance] == list(zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]))
    for b in result.by_distance:
        where = (distance >= b["from"]) & (distance < b["to"])
        assert b["points"] == int(where.sum()), b
        np.testing.assert_allclose([b["phi_error"], b["field_error"]],
                                   [_median(error[where & phi_ok]), _median(error[where & field_ok])], rtol=1e-9)
    assert sum(b["points"] for b in result.by_distance) == data.phi.size  # the bins cover every point once
    return distance, inside


def test_evaluate_matches_brute_force_metrics_on_overlapping_sources(overlapping):
    data = load(str(overlapping), SPLIT)
    _, inside = _geometry(data)
    factor = _factor(data, inside)
    result = evaluate(_Scaled(data, factor), str(overlapping), SPLIT, batch_size=5)  # a short last batch
    distance, inside = _check_against_brute_force(result, data, factor, fieldbench.metrics.TINY)
    # The data exercise what is checked: overlaps, points inside, several bins, and the two medians
    # far apart (a swap of pooled and per-sample would fail above).
    assert inside.sum() > 200 and (~inside).sum() > 1000
    assert sum(b["points"] > 0 for b in result.by_distance) >= 7
    assert result.phi_error > 3 * result.per_sample["phi"]["median"]
    assert result.inside["phi_error"] > 2 * result.outside["phi_error"]
    # Points the old nearest-boundary rule put outside although they lie inside a source.
    points = data.points.astype(np.float64)
    old = np.stack([_old_rule(data.sources(s), points[s]) for s in range(len(data))])
    assert ((old >= 0) & inside).sum() > 10


def test_points_with_a_tiny_true_value_are_excluded_and_counted(overlapping, monkeypatch):
    # Eq. 10 is undefined where the true value vanishes. No point here is below the real TINY
    # (1e-9 of the median), so raise the threshold to exclude many and check that they are left
    # out of every median and counted.
    monkeypatch.setattr(fieldbench.metrics, "TINY", 0.3)
    data = load(str(overlapping), SPLIT)
    _, inside = _geometry(data)
    factor = _factor(data, inside)
    result = evaluate(_Scaled(data, factor), str(overlapping), SPLIT)
    phi_ok, field_ok = _usable(data, 0.3)
    assert 50 < result.excluded["phi"] == (~phi_ok).sum() and 10 < result.excluded["field"] == (~field_ok).sum()
    _check_against_brute_force(result, data, factor, 0.3)


class _Broken(_Scaled):
    """Returns what ``spoil`` makes of the correct (phi, H) of a batch."""

    def __init__(self, data, spoil):
        super().__init__(data, np.zeros(data.phi.shape))
        self.spoil = spoil

    def evaluate(self, code, points):
        return self.spoil(*super().evaluate(code, points), [self.row[np.asarray(p).tobytes()] for p in points])


def _nan_in_sample_7(phi, field, rows):
    field = field.copy()
    field[[i for i, r in enumerate(rows) if r == 7], 3, 1] = np.nan
    return phi, field


@pytest.mark.parametrize("spoil, message", [
    (lambda phi, field, rows: (phi[:, :-1], field), r"phi of shape \(\d+, 199\) for samples \d+\.\.; expected"),
    (lambda phi, field, rows: (phi, field[..., :1]), r"the field of shape \(\d+, 200, 1\)"),
    (lambda phi, field, rows: (np.round(phi).astype(np.int64), field), "phi of dtype int64; expected floating point"),
    (lambda phi, field, rows: (phi, (field > 0).astype(np.int32)), "the field of dtype int32"),
    (_nan_in_sample_7, r"NaN or inf in the field for sample 7 \(1 value"),
    (lambda phi, field, rows: (phi * np.inf, field), "NaN or inf in phi for sample 0"),
], ids=["phi-shape", "field-shape", "phi-int", "field-int", "nan", "inf"])
def test_a_bad_prediction_is_rejected_naming_the_problem(overlapping, spoil, message):
    data = load(str(overlapping), SPLIT)
    with pytest.raises(InvalidPrediction, match=message):
        evaluate(_Broken(data, spoil), str(overlapping), SPLIT, batch_size=4)
