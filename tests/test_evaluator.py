"""The evaluator's labels and bins against brute force written here: "inside" means inside at least
one source (overlaps included), and the signed distance of Fig. 5b is min over sources."""

from __future__ import annotations

import numpy as np
import pytest

from fieldbench.evaluation import boundary_distance
from fieldbench.sources import ConfigurationSpec, SourceBatch, Sources, sample_configurations


def _brute_force(sources: Sources, points: np.ndarray) -> np.ndarray:
    """Per point: min over sources of (signed distance to that source's boundary) / its size."""
    out = np.full(len(points), np.inf)
    for k in range(len(sources)):
        centre, size, family = sources.centers[k], sources.sizes[k], int(sources.family[k])
        for i, p in enumerate(points):
            d = p - centre
            if family in (0, 3):  # disc, sphere: sizes are full extents (diameters)
                value = np.linalg.norm(d) - size[0] / 2
            else:
                excess = np.abs(d) - size / 2
                value = np.linalg.norm(np.maximum(excess, 0)) if (excess > 0).any() else excess.max()
            out[i] = min(out[i], value / size.max())
    return out


def test_a_point_inside_one_source_but_near_another_is_inside():
    # Disc A (radius 1 at the origin) overlaps disc B (radius 1 at x = 1.5). The point (0.6, 0) is
    # inside both; (-0.7, 0) is inside A only, 0.3 from A's rim but 2.2 from B's rim ... and
    # (0.6, 0.75) is inside A only but nearer to B's boundary than to A's.
    discs = Sources.discs(centers=[[0, 0], [1.5, 0]], magnetisations=[[1, 0], [0, 1]], radii=[1.0, 1.0])
    points = np.array([[-0.7, 0.0], [0.6, 0.0], [0.2, 0.9], [3.0, 0.0]])
    batch = SourceBatch.pad([discs])
    got = boundary_distance(batch.family, batch.centers, batch.sizes, batch.mask, points[None])[0]
    inside = discs.contains(points).any(axis=1)
    assert list(got < 0) == list(inside) == [True, True, True, False]
    np.testing.assert_allclose(got, _brute_force(discs, points), rtol=1e-12)


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
