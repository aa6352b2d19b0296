"""Which points the public API refuses as singular: exactly those on a prism corner or a cuboid
edge or corner, by the exact rule |point - centre| == size / 2 on at least two axes, none outside
(``fieldbench.physics._api.on_edge_or_corner``), whatever the check's implementation.

The check looks up face planes instead of comparing every (point, box) pair; these tests hold
it to the every-pair rule on points built to sit on, or one rounding off, edges, corners and
faces, at scales and offsets where rounding decides, and to the error it raised before.
"""

import itertools

import numpy as np
import pytest

from fieldbench import Family, SourceBatch, Sources
from fieldbench.physics import potential_and_field, potential_and_field_batched
from fieldbench.physics._api import edge_and_corner_hits, on_edge_or_corner

RNG_SEED = 20261201

# Binary fractions: corners, edges and faces are exactly representable.
PRISM = Sources.prisms([[0.125, -0.25], [1.5, 0.75]], [[1.0, -0.6], [0.3, 0.2]], [[1.0, 0.625], [0.5, 0.25]])
DISC = Sources.discs([[-1.0, 1.0]], [[0.4, 0.1]], [0.25])
CUBOID = Sources.cuboids([[0.125, -0.25, 0.375], [1.5, 0.75, -1.0]], [[1.0, 0.5, -0.7], [0.2, 0.1, 0.3]],
                         [[1.0, 0.625, 0.75], [0.5, 0.25, 0.5]])
SPHERE = Sources.spheres([[-1.0, 1.0, 0.5]], [[0.4, 0.1, -0.2]], [0.25])
MIXED_2D = Sources.concat([DISC, PRISM])
MIXED_3D = Sources.concat([SPHERE, CUBOID])


def every_pair_hits(sources: Sources, points: np.ndarray) -> np.ndarray:
    """The rule itself: every (point, box) pair through on_edge_or_corner."""
    boxes = np.isin(sources.family, [int(Family.PRISM), int(Family.CUBOID)])
    if not np.any(boxes):
        return np.zeros(0, dtype=int)
    offsets = points[:, None, :] - np.asarray(sources.centers)[boxes][None]
    return np.flatnonzero(np.any(on_edge_or_corner(offsets, np.asarray(sources.sizes)[boxes][None] / 2), axis=1))


def box_points(sources: Sources, steps=(-1.0, -0.5, 0.0, 0.5, 1.0)) -> np.ndarray:
    """For every box, centre + step x half-size on each axis: corners, edges, faces, inside."""
    boxes = np.isin(sources.family, [int(Family.PRISM), int(Family.CUBOID)])
    centers, half = np.asarray(sources.centers)[boxes], np.asarray(sources.sizes)[boxes] / 2
    steps = np.array(list(itertools.product(steps, repeat=sources.dim)))
    return (centers[:, None, :] + steps[None] * half[:, None, :]).reshape(-1, sources.dim)


def corners_and_edges(sources: Sources) -> np.ndarray:
    """Box points on at least two face planes (corners in 2D; edges and corners in 3D)."""
    points = box_points(sources)
    return points[np.isin(np.arange(len(points)), every_pair_hits(sources, points))]


def hair_away(points: np.ndarray) -> np.ndarray:
    """Each point moved by one float64 step on each axis in turn, both ways."""
    moved = []
    for axis, direction in itertools.product(range(points.shape[1]), (-np.inf, np.inf)):
        shifted = points.copy()
        shifted[:, axis] = np.nextafter(points[:, axis], direction)
        moved.append(shifted)
    return np.concatenate(moved)


def scaled(sources: Sources, scale: float, offset: float) -> Sources:
    """Scaled and shifted; the shift is rounded, so corners are no longer exact binary fractions."""
    return Sources(family=sources.family, centers=np.asarray(sources.centers) * scale + offset,
                   magnetisations=sources.magnetisations, sizes=np.asarray(sources.sizes) * scale)


# -- the check decides exactly as the every-pair rule ------------------------------------------


def near_planes(sources: Sources, ulps: int = 2) -> np.ndarray:
    """For every box, the points whose coordinates are each the centre or within ``ulps`` float64
    steps of a face plane fl(c +- h): after rounding, some of them are exactly on edges (when any
    float64 point is), the others a step or two off."""
    boxes = np.isin(sources.family, [int(Family.PRISM), int(Family.CUBOID)])
    points = []
    for centre, half in zip(np.asarray(sources.centers)[boxes], np.asarray(sources.sizes)[boxes] / 2):
        per_axis = []
        for c, h in zip(centre, half):
            values = [c]
            for plane in (c - h, c + h):
                below = above = plane
                for _ in range(ulps):
                    below, above = np.nextafter(below, -np.inf), np.nextafter(above, np.inf)
                    values += [below, above]
                values.append(plane)
            per_axis.append(values)
        points += list(itertools.product(*per_axis))
    return np.array(points)


@pytest.mark.parametrize("sources", [MIXED_2D, MIXED_3D], ids=["2d", "3d"])
@pytest.mark.parametrize("scale, offset, exact_hits_exist", [
    (1.0, 0.0, True), (2.0 ** -600, 0.0, True), (2.0 ** 600, 0.0, True), (1.0, 0.1, True), (3.0, -1e15, True),
    (1e-280, 1e-290, True),
    (1e-3, 1e6, False),  # h is no multiple of ulp(c) there: no float64 point is on an edge
], ids=["unit", "2^-600", "2^600", "shifted", "3x-shifted-1e15", "1e-280", "1e-3-shifted-1e6"])
def test_the_hits_are_those_of_the_every_pair_rule(sources, scale, offset, exact_hits_exist):
    sources = scaled(sources, scale, offset)
    rng = np.random.default_rng(RNG_SEED)
    # on and next to edges and corners; coordinates shuffled across points (a coordinate on one
    # box's plane with another's); random points around the boxes
    points = np.concatenate([box_points(sources), near_planes(sources)])
    shuffled = np.stack([rng.permutation(points[:, axis]) for axis in range(sources.dim)], axis=1)
    spread = np.ptp(np.asarray(sources.centers), axis=0) + np.asarray(sources.sizes).max(axis=0)
    random = np.asarray(sources.centers).min(axis=0) + rng.uniform(-1, 2, (200, sources.dim)) * spread
    points = np.concatenate([points, shuffled, random])
    expected = every_pair_hits(sources, points)
    assert (expected.size > 0) == exact_hits_exist
    np.testing.assert_array_equal(edge_and_corner_hits(sources, points), expected)


def test_the_hits_are_those_of_the_every_pair_rule_on_many_random_grid_aligned_boxes():
    """Boxes on a coarse grid share face planes; points on the grid lines of every box."""
    rng = np.random.default_rng(RNG_SEED)
    for dim, family in ((2, Family.PRISM), (3, Family.CUBOID)):
        count = 60
        centers = rng.integers(-8, 8, (count, dim)) / 8
        sizes = rng.integers(1, 6, (count, dim)) / 8
        sources = Sources(family=np.full(count, int(family), np.int8), centers=centers,
                          magnetisations=np.ones((count, dim)), sizes=sizes)
        points = np.concatenate([box_points(sources), rng.integers(-24, 24, (3000, dim)) / 16])
        points = np.concatenate([points, hair_away(points[:500])])
        np.testing.assert_array_equal(edge_and_corner_hits(sources, points), every_pair_hits(sources, points))


def test_no_boxes_and_no_points_give_no_hits():
    assert edge_and_corner_hits(Sources.concat([DISC, DISC]), np.zeros((5, 2))).size == 0
    assert edge_and_corner_hits(PRISM, np.zeros((0, 2))).size == 0


# -- the public API raises exactly there, with the same message ---------------------------------


@pytest.mark.parametrize("sources, where",
                         [(MIXED_2D, ("prism corner",)), (MIXED_3D, ("cuboid edge", "cuboid corner"))],
                         ids=["2d", "3d"])
def test_every_corner_and_edge_raises_in_a_mixed_collection(sources, where):
    for point in corners_and_edges(sources):
        with pytest.raises(ValueError, match=r"^1 point\(s\) lie exactly on an edge or corner of a prism/cuboid "
                                             r"\(first: index 0, .*, on a (" + "|".join(where) + r")\), where the "
                                             r"field diverges logarithmically; move them, or pass "
                                             r"corners='finite-part'"):
            potential_and_field(sources, point[None])


def test_the_message_counts_the_points_and_names_the_first_and_where_it_is():
    edge = CUBOID.centers[0] + np.array([0.25, 1.0, -1.0]) * CUBOID.sizes[0] / 2
    corner = CUBOID.centers[1] + np.array([1.0, 1.0, -1.0]) * CUBOID.sizes[1] / 2
    points = np.stack([CUBOID.centers[0], corner, edge, SPHERE.centers[0], corner])
    with pytest.raises(ValueError, match=r"^3 point\(s\) .* \(first: index 1, \[1\.75, 0\.875, -1\.25\], on a cuboid "
                                         r"corner\)"):
        potential_and_field(MIXED_3D, points)
    with pytest.raises(ValueError, match=r"^1 point\(s\) .* \(first: index 0, .* on a cuboid edge\)"):
        potential_and_field(MIXED_3D, np.stack([edge, SPHERE.centers[0]]))
    first = r"\(first: index 2, \[0\.625, 0\.0625\], on a prism corner\)"
    with pytest.raises(ValueError, match=r"^2 point\(s\) .* " + first):
        potential_and_field(MIXED_2D, np.stack([DISC.centers[0], PRISM.centers[1], [0.625, 0.0625], [1.75, 0.625]]))


def off_every_plane(points: np.ndarray, distance: float = 2.0 ** -48) -> np.ndarray:
    """Each point moved by ``distance`` (16 float64 steps at 1, more than rounding can undo; one
    step is not always enough: |x - c| can round back onto h) on every axis, in the 2^d directions."""
    return np.concatenate([points + np.array(signs) * distance
                           for signs in itertools.product((-1.0, 1.0), repeat=points.shape[1])])


def with_steps(sources: Sources, keep) -> np.ndarray:
    """Box points centre + step x half-size, steps in {0, +-0.5, +-1, +-1.5}^d chosen by ``keep``
    (a predicate on the step vector): +-1 is on a face plane, +-1.5 outside the box."""
    boxes = np.isin(sources.family, [int(Family.PRISM), int(Family.CUBOID)])
    steps = np.array([step for step in itertools.product((-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5), repeat=sources.dim)
                      if keep(np.abs(np.array(step)))])
    centers, half = np.asarray(sources.centers)[boxes], np.asarray(sources.sizes)[boxes] / 2
    return (centers[:, None, :] + steps[None] * half[:, None, :]).reshape(-1, sources.dim)


@pytest.mark.parametrize("sources", [MIXED_2D, MIXED_3D], ids=["2d", "3d"])
def test_points_a_hair_away_on_faces_beyond_edges_or_on_round_sources_do_not_raise(sources):
    hair = off_every_plane(corners_and_edges(sources))
    on_faces = with_steps(sources, lambda step: np.sum(step == 1.0) == 1 and np.all(step <= 1.0))
    # on face planes (in 3D on the lines of edges too), but outside the box
    beyond = with_steps(sources, lambda step: np.sum(step == 1.0) >= 1 and np.any(step == 1.5))
    round_ = np.isin(sources.family, [int(Family.DISC), int(Family.SPHERE)])
    signs = np.array(list(itertools.product((-1.0, 0.0, 1.0), repeat=sources.dim)))
    rims = np.asarray(sources.centers)[round_][:, None, :] + signs[None] * sources.radii[round_, None, None]
    points = np.concatenate([hair, on_faces, beyond, rims.reshape(-1, sources.dim)])
    assert every_pair_hits(sources, points).size == 0  # the rule: none of them is singular
    phi, field = potential_and_field(sources, points)
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(field))


# -- batched calls: documented not to check; they return the finite part --------------------------


@pytest.mark.parametrize("sources", [MIXED_2D, MIXED_3D], ids=["2d", "3d"])
def test_batched_calls_return_the_finite_part_on_corners_and_edges(sources):
    on = corners_and_edges(sources)
    boxes_only = sources[np.isin(sources.family, [int(Family.PRISM), int(Family.CUBOID)])]
    batch = SourceBatch.pad([sources, boxes_only])
    phi, field = potential_and_field_batched(batch, on)  # no error: pipelines' points are random
    for index, sample in enumerate((sources, boxes_only)):
        expected_phi, expected_field = potential_and_field(sample, on, corners="finite-part")
        assert np.all(np.isfinite(expected_phi)) and np.all(np.isfinite(expected_field))
        np.testing.assert_allclose(np.asarray(phi[index]), expected_phi, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(field[index]), expected_field, rtol=1e-12, atol=1e-13)
