"""The configuration spec and the seeded samplers of source configurations and evaluation points
(fieldbench.sources._configuration, ._sampling; pairwise_overlaps from ._geometry).

Overlap policies are checked against brute-force tests written independently of the sampler:
an exact pairwise predicate per family pair, and dense point clouds counting how many sources
contain each point.
"""

import numpy as np
import pytest

from fieldbench.sources import (
    ConfigurationSpec,
    Family,
    SourceBatch,
    Sources,
    as_points,
    pairwise_overlaps,
    sample_configurations,
    sample_points,
    sample_sources,
)

ROUND = tuple(int(f) for f in Family if f.is_round)


# -- independent brute-force helpers -------------------------------------------------------------
def brute_overlap(fa, ca, sa, fb, cb, sb) -> bool:
    """Exact interior-intersection test for one pair, written without the sampler's code."""
    ca, sa, cb, sb = (np.asarray(x, dtype=float) for x in (ca, sa, cb, sb))
    round_a, round_b = int(fa) in ROUND, int(fb) in ROUND
    if round_a and round_b:
        return float(np.linalg.norm(ca - cb)) < sa[0] / 2 + sb[0] / 2
    if not round_a and not round_b:
        return all(abs(ca[k] - cb[k]) < (sa[k] + sb[k]) / 2 for k in range(len(ca)))
    if round_b:  # make a the round one
        ca, sa, cb, sb = cb, sb, ca, sa
    nearest = np.clip(ca, cb - sb / 2, cb + sb / 2)  # closest point of the closed box
    return float(np.linalg.norm(ca - nearest)) < sa[0] / 2


def brute_pairs(sources: Sources) -> np.ndarray:
    k = len(sources)
    out = np.zeros((k, k), dtype=bool)
    for i in range(k):
        for j in range(k):
            if i != j:
                out[i, j] = brute_overlap(sources.family[i], sources.centers[i], sources.sizes[i],
                                          sources.family[j], sources.centers[j], sources.sizes[j])
    return out


def inside_count(sources: Sources, points: np.ndarray) -> np.ndarray:
    """How many sources (open interiors) contain each point, by explicit loops over sources."""
    count = np.zeros(len(points), dtype=int)
    for f, c, s in zip(sources.family, sources.centers, sources.sizes):
        if int(f) in ROUND:
            count += np.sum((points - c) ** 2, axis=1) < (s[0] / 2) ** 2
        else:
            count += np.all(np.abs(points - c) < s / 2, axis=1)
    return count


def same(a: Sources, b: Sources) -> bool:
    return (len(a) == len(b) and np.array_equal(a.family, b.family) and np.array_equal(a.centers, b.centers)
            and np.array_equal(a.sizes, b.sizes) and np.array_equal(a.magnetisations, b.magnetisations))


def radii_or_sides(s: Sources):
    round_ = np.isin(s.family, ROUND)
    return s.sizes[round_, 0] / 2, s.sizes[~round_]


# -- overlap policies ------------------------------------------------------------------------------
@pytest.mark.parametrize("families", [("disc",), ("prism",), ("disc", "prism"), ("sphere", "cuboid")])
def test_none_policy_has_no_overlapping_pair(families):
    spec = ConfigurationSpec(families=families, sources=(3, 8), domain=1.5, size=(0.2, 0.6), overlap="none")
    rng = np.random.default_rng(1)
    cloud_rng = np.random.default_rng(99)
    for sample in sample_configurations(spec, 100, rng):
        assert not brute_pairs(sample).any()
        assert not pairwise_overlaps(sample).any()
        points = cloud_rng.uniform(-2.0, 2.0, size=(20_000, spec.dim))
        assert inside_count(sample, points).max() <= 1


def test_none_policy_dense_discs_of_fixed_radius():
    # Circles of radius 1, as many as comfortably fit: all diameters are exactly 2, none overlap.
    spec = ConfigurationSpec(families=("disc",), sources=5, domain=4.0, size=1.0, overlap="none")
    for sample in sample_configurations(spec, 30, np.random.default_rng(2)):
        assert np.array_equal(sample.sizes, np.full((5, 2), 2.0))
        distances = np.linalg.norm(sample.centers[:, None] - sample.centers[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        assert distances.min() >= 2.0


@pytest.mark.parametrize("families", [("disc",), ("prism",), ("disc", "prism"), ("sphere",), ("cuboid", "sphere")])
def test_forced_policy_every_source_overlaps_another(families):
    spec = ConfigurationSpec(families=families, sources=(2, 6), domain=2.0, size=(0.1, 0.4), overlap="forced")
    for sample in sample_configurations(spec, 60, np.random.default_rng(3)):
        pairs = brute_pairs(sample)
        assert pairs.any(axis=1).all(), "a source overlaps no other"
        np.testing.assert_array_equal(pairwise_overlaps(sample), pairs)
        assert np.all(np.abs(sample.centers) <= 2.0)


def test_forced_overlap_with_normal_centres_follows_an_anchor_outside_the_domain():
    # Normal centres may leave the domain; a forced partner is drawn around its anchor, wherever
    # that is (clipping the partner into the domain made it miss a far-out anchor and fail).
    spec = ConfigurationSpec(families=("disc",), sources=4, domain=1.0, size=0.2, overlap="forced",
                             centres="normal", max_attempts=64)
    samples = sample_configurations(spec, 300, np.random.default_rng(5))
    assert any(np.abs(sample.centers).max() > 1.0 for sample in samples)  # some anchors left the domain
    for sample in samples:
        assert brute_pairs(sample).any(axis=1).all(), "a source overlaps no other"


def test_forced_discs_pairwise_distances():
    spec = ConfigurationSpec(families=("disc",), sources=4, domain=1.0, size=(0.2, 0.3), overlap="forced")
    for sample in sample_configurations(spec, 50, np.random.default_rng(4)):
        r = sample.sizes[:, 0] / 2
        distance = np.linalg.norm(sample.centers[:, None] - sample.centers[None], axis=-1)
        close = distance < r[:, None] + r[None]
        np.fill_diagonal(close, False)
        assert close.any(axis=1).all()


def test_allowed_policy_places_independently_and_does_overlap():
    spec = ConfigurationSpec(families=("disc",), sources=10, domain=1.0, size=(0.4, 0.5), overlap="allowed")
    samples = sample_configurations(spec, 20, np.random.default_rng(5))
    # ten discs of radius >= 0.4 with centres in [-1, 1]^2 cannot all be apart: overlaps must occur
    assert all(brute_pairs(s).any() for s in samples)


def test_pairwise_overlaps_matches_brute_force_and_touching_is_not_overlap():
    spec = ConfigurationSpec(families=("disc", "prism"), sources=12, domain=1.0, size=(0.1, 0.5), overlap="allowed")
    for sample in sample_configurations(spec, 30, np.random.default_rng(6)):
        np.testing.assert_array_equal(pairwise_overlaps(sample), brute_pairs(sample))
    m = np.zeros((2, 2))
    touching = [
        Sources.discs([[0, 0], [2, 0]], m, [1, 1]),
        Sources.prisms([[0, 0], [2, 0.5]], m, [[2, 2], [2, 2]]),
        Sources.concat([Sources.discs([[0, 0]], m[:1], [1]), Sources.prisms([[2, 0]], m[:1], [[2, 2]])]),
        # touching at a corner
        Sources.concat([Sources.discs([[4, 5]], m[:1], [5.0]), Sources.prisms([[0, 0]], m[:1], [[2, 2]])]),
    ]
    for pair in touching:
        assert not pairwise_overlaps(pair).any()
    # a disc near a box corner: inside the bounding box of the Minkowski sum but not overlapping
    corner = Sources.concat([Sources.discs([[1.8, 1.8]], m[:1], [1.0]), Sources.prisms([[0, 0]], m[:1], [[2, 2]])])
    assert not pairwise_overlaps(corner).any()
    np.testing.assert_array_equal(pairwise_overlaps(Sources.discs([[0, 0], [1.99, 0]], m, [1, 1])),
                                  [[False, True], [True, False]])


# -- impossible requests ------------------------------------------------------------------------------
def test_impossible_none_request_fails_up_front():
    with pytest.raises(ValueError, match=r"cannot fit 8 non-overlapping disc.*\[-1, 1\]\^2.*Reduce sources"):
        ConfigurationSpec(families=("disc",), sources=8, domain=1.0, size=1.0, overlap="none")
    with pytest.raises(ValueError, match=r"cannot fit 30 .*total volume"):
        ConfigurationSpec(families=("cuboid",), sources=(1, 30), domain=1.0, size=(1.0, 2.0), overlap="none")
    # the same request is fine when overlap is allowed
    ConfigurationSpec(families=("disc",), sources=8, domain=1.0, size=1.0, overlap="allowed")


def test_unlikely_none_request_fails_with_advice_in_bounded_time():
    # 4 unit circles with centres in [-1, 1]^2 fit only with centres exactly on the corners
    spec = ConfigurationSpec(families=("disc",), sources=4, domain=1.0, size=1.0, overlap="none",
                             max_attempts=200, max_restarts=20)
    with pytest.raises(ValueError, match=r"could not place 4 non-overlapping sources.*enlarge domain"):
        sample_sources(spec, np.random.default_rng(7))


def test_forced_with_a_single_source_is_rejected():
    with pytest.raises(ValueError, match=r"forced.*at least 2 sources"):
        ConfigurationSpec(sources=1, overlap="forced")
    with pytest.raises(ValueError, match=r"can draw K = 1.*sources=\(2, 4\)"):
        ConfigurationSpec(sources=(1, 4), overlap="forced")


# -- determinism -----------------------------------------------------------------------------------
@pytest.mark.parametrize("overlap", ["none", "allowed", "forced"])
def test_same_seed_same_configurations_different_seed_different(overlap):
    spec = ConfigurationSpec(families=("disc", "prism"), sources=(2, 5), domain=2.0, size=(0.1, 0.4), overlap=overlap)
    a = sample_configurations(spec, 10, np.random.default_rng(123))
    b = sample_configurations(spec, 10, np.random.default_rng(123))
    c = sample_configurations(spec, 10, np.random.default_rng(124))
    assert all(same(x, y) for x, y in zip(a, b))
    assert not all(same(x, y) for x, y in zip(a, c))
    # sample_configurations is exactly repeated sample_sources on one generator
    rng = np.random.default_rng(123)
    assert all(same(x, sample_sources(spec, rng)) for x in a)


def test_points_are_deterministic():
    sources = Sources.discs([[0, 0]], [[1, 0]], [0.5])
    a = sample_points(np.random.default_rng(8), 100, dim=2, domain=1.0, exclude=sources)
    b = sample_points(np.random.default_rng(8), 100, dim=2, domain=1.0, exclude=sources)
    c = sample_points(np.random.default_rng(9), 100, dim=2, domain=1.0, exclude=sources)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# -- ranges ----------------------------------------------------------------------------------------
def test_counts_sizes_and_centres_within_ranges():
    spec = ConfigurationSpec(families=("disc", "prism"), sources=(2, 6), domain=(0.0, 5.0), size=(0.2, 0.7),
                             overlap="none")
    samples = sample_configurations(spec, 200, np.random.default_rng(10))
    counts = [len(s) for s in samples]
    assert set(counts) == {2, 3, 4, 5, 6}
    for s in samples:
        radii, sides = radii_or_sides(s)
        assert np.all((radii >= 0.2) & (radii <= 0.7))
        assert np.all((sides >= 0.2) & (sides <= 0.7))
        assert np.all((s.centers >= 0.0) & (s.centers <= 5.0))
        Sources.from_arrays(s.family, s.centers, s.magnetisations, s.sizes)  # a valid collection
    all_families = np.concatenate([s.family for s in samples])
    assert 0.4 < np.mean(all_families == int(Family.DISC)) < 0.6
    batch = SourceBatch.pad(samples, max_sources=spec.sources[1])
    assert batch.mask.shape == (200, 6) and batch.mask.sum() == sum(counts)


def test_half_width_domain_convention_and_3d():
    spec = ConfigurationSpec(families=("sphere", "cuboid"), sources=4, domain=0.5, size=(0.05, 0.1), overlap="allowed")
    assert spec.domain == (-0.5, 0.5) and spec.dim == 3 and spec.sources == (4, 4)
    for s in sample_configurations(spec, 50, np.random.default_rng(11)):
        assert s.centers.shape == (4, 3) and np.all(np.abs(s.centers) <= 0.5)


def test_square_aspect_gives_equal_sides_and_free_does_not():
    square = ConfigurationSpec(families=("prism",), sources=3, domain=2.0, size=(0.1, 0.5), aspect="square")
    cubes = ConfigurationSpec(families=("cuboid",), sources=3, domain=2.0, size=(0.1, 0.5), aspect="square")
    free = ConfigurationSpec(families=("prism",), sources=3, domain=2.0, size=(0.1, 0.5), aspect="free")
    for spec in (square, cubes):
        for s in sample_configurations(spec, 30, np.random.default_rng(12)):
            assert np.all(s.sizes == s.sizes[:, :1])
    sides = np.concatenate([s.sizes for s in sample_configurations(free, 30, np.random.default_rng(12))])
    assert np.all(sides[:, 0] != sides[:, 1])
    assert np.all((sides >= 0.1) & (sides <= 0.5))


def test_round_sources_store_the_diameter_on_every_axis():
    spec = ConfigurationSpec(families=("sphere",), sources=3, domain=2.0, size=(0.3, 0.4))
    for s in sample_configurations(spec, 20, np.random.default_rng(13)):
        assert np.all(s.sizes == s.sizes[:, :1])
        assert np.all((s.radii >= 0.3) & (s.radii <= 0.4))


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_magnetisation_components_are_normal_with_given_std(scale):
    spec = ConfigurationSpec(families=("disc",), sources=5, domain=1.0, size=0.1, overlap="allowed",
                             magnetisation=scale)
    m = np.concatenate([s.magnetisations for s in sample_configurations(spec, 1000, np.random.default_rng(14))])
    assert m.shape == (5000, 2)
    assert np.all(np.abs(m.mean(axis=0)) < 0.06 * scale)
    assert np.all(np.abs(m.std(axis=0) / scale - 1) < 0.05)
    assert abs(np.corrcoef(m.T)[0, 1]) < 0.06


# -- evaluation points -------------------------------------------------------------------------------
def test_uniform_points_in_domain():
    points = sample_points(np.random.default_rng(15), 5000, dim=3, domain=(1.0, 2.0))
    assert points.shape == (5000, 3)
    assert np.all((points >= 1.0) & (points <= 2.0))
    assert np.all(np.abs(points.mean(axis=0) - 1.5) < 0.02)


@pytest.mark.parametrize("dim, n", [(2, 10), (3, 4)])
def test_grid_points_form_a_regular_grid(dim, n):
    points = sample_points(None, n**dim, dim=dim, domain=1.0, method="grid")
    assert points.shape == (n**dim, dim)
    assert len(np.unique(points, axis=0)) == n**dim
    expected = -1.0 + (np.arange(n) + 0.5) * (2.0 / n)
    for k in range(dim):
        np.testing.assert_allclose(np.unique(points[:, k]), expected, rtol=0, atol=1e-12)
    grid = points.reshape((n,) * dim + (dim,))
    np.testing.assert_allclose(grid[(1,) + (0,) * (dim - 1)] - grid[(0,) * dim], [2.0 / n] + [0.0] * (dim - 1))


def test_grid_count_must_be_a_perfect_power():
    with pytest.raises(ValueError, match=r"50 is not a perfect square.*49 \(n=7\) or 64 \(n=8\)"):
        sample_points(None, 50, dim=2, domain=1.0, method="grid")
    with pytest.raises(ValueError, match=r"28 is not a perfect cube.*27 \(n=3\) or 64 \(n=4\)"):
        sample_points(None, 28, dim=3, domain=1.0, method="grid")


def test_excluded_points_are_outside_every_source():
    spec = ConfigurationSpec(families=("disc", "prism"), sources=6, domain=1.0, size=(0.2, 0.5), overlap="allowed")
    rng = np.random.default_rng(16)
    for sources in sample_configurations(spec, 10, rng):
        points = sample_points(rng, 2000, dim=2, domain=1.0, exclude=sources)
        assert points.shape == (2000, 2)
        assert inside_count(sources, points).max() == 0
        assert not sources.contains(points, strict=False).any()  # not even on a boundary
    # 3D as well
    cubes = Sources.cuboids([[0, 0, 0]], [[0, 0, 1]], [[1.5, 1.5, 1.5]])
    points = sample_points(rng, 500, dim=3, domain=1.0, exclude=cubes)
    assert np.all(np.max(np.abs(points), axis=1) > 0.75)


def test_exclusion_that_covers_the_domain_fails_clearly():
    big = Sources.discs([[0, 0]], [[1, 0]], [10.0])
    with pytest.raises(ValueError, match="cover"):
        sample_points(np.random.default_rng(17), 10, dim=2, domain=1.0, exclude=big)


def test_grid_with_exclude():
    n = 4  # cell centres at +-0.25, +-0.75
    clear = Sources.discs([[0, 0]], [[1, 0]], [0.3])  # holds no grid point
    points = sample_points(None, n * n, dim=2, domain=1.0, method="grid", exclude=clear)
    assert points.shape == (16, 2)
    hit = Sources.discs([[0, 0]], [[1, 0]], [0.5])
    with pytest.raises(ValueError, match=r"4 of the 16 grid points lie inside.*would change the count"):
        sample_points(None, 16, dim=2, domain=1.0, method="grid", exclude=hit)


def test_as_points_validates():
    np.testing.assert_array_equal(as_points([[0, 1], [2, 3]], 2), [[0.0, 1.0], [2.0, 3.0]])
    assert as_points(np.zeros((0, 3)), 3).shape == (0, 3)
    with pytest.raises(ValueError, match=r"single point; pass shape \(1, 2\)"):
        as_points([0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        as_points(np.zeros((4, 2)), 3)
    with pytest.raises(ValueError, match="non-finite.*index \\(1, 0\\)"):
        as_points([[0, 0], [np.nan, 0]], 2)
    with pytest.raises(ValueError, match="dim must be 2"):
        as_points([[0, 0]], 4)


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(families=()), "families is empty"),
        (dict(families=("disc", "sphere")), "mixes 2D and 3D"),
        (dict(families=("disc", "discs")), "twice"),
        (dict(families=("torus",)), "unknown family"),
        (dict(sources=0), "1 <= k_min <= k_max"),
        (dict(sources=(5, 2)), "1 <= k_min <= k_max"),
        (dict(sources=2.5), "sources must be an int"),
        (dict(sources=True), "sources must be an int"),
        (dict(domain=-1.0), "positive half-width"),
        (dict(domain=(1.0, 1.0)), "lo < hi"),
        (dict(domain="big"), "domain must be"),
        (dict(size=(0.5, 0.1)), r"0 < lo <= hi"),
        (dict(size=(0.0, 0.1)), r"0 < lo <= hi"),
        (dict(size=(0.1, 0.2, 0.3)), "size must be a range"),
        (dict(aspect="round"), "aspect must be"),
        (dict(overlap="sometimes"), "overlap must be one of"),
        (dict(magnetisation=0.0), "standard deviation"),
        (dict(max_attempts=0), "max_attempts must be a positive int"),
    ],
)
def test_bad_specs_are_rejected_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConfigurationSpec(**kwargs)


def test_spec_is_canonical_frozen_and_hashable():
    a = ConfigurationSpec(families="disc", sources=3, domain=2, size=0.5)
    b = ConfigurationSpec(families=(Family.DISC,), sources=(3, 3), domain=(-2.0, 2.0), size=(0.5, 0.5))
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.sources = 4  # type: ignore[misc]


def test_bad_arguments_to_samplers():
    spec = ConfigurationSpec()
    with pytest.raises(TypeError, match="default_rng"):
        sample_sources(spec, 42)
    with pytest.raises(ValueError, match="count must be a non-negative int"):
        sample_configurations(spec, -1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="dim must be 2"):
        sample_points(np.random.default_rng(0), 10, dim=1, domain=1.0)
    with pytest.raises(ValueError, match="method must be"):
        sample_points(np.random.default_rng(0), 10, dim=2, domain=1.0, method="sobol")
    with pytest.raises(ValueError, match="3D sources but dim=2"):
        sample_points(np.random.default_rng(0), 10, dim=2, domain=1.0,
                      exclude=Sources.spheres([[0, 0, 0]], [[0, 0, 1]], [0.1]))
    assert sample_configurations(spec, 0, np.random.default_rng(0)) == []
