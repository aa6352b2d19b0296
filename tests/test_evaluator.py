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
from fieldbench.pipeline import DatasetSpec, SplitSpec, generate
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
