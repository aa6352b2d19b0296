"""Physics of the exact solvers: closed-form anchors, symmetries, mixed families, singular points.

The identities every family satisfies (H = -grad(phi), div and curl, jump conditions,
superposition, dipole limit, ...) are in test_family_contract.py, parametrised over the registry;
cross-checks against independent libraries (magpylib, MagTense) in test_references.py.
"""

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import fieldbench as fb
from fieldbench import Family, SourceBatch, Sources
from fieldbench.physics import direct_sum, potential_and_field, potential_and_field_batched

RNG_SEED = 20261124


def random_sources(family: Family, count: int, rng, *, spread: float = 1.5) -> Sources:
    dim = family.dim
    centers = rng.uniform(-spread, spread, (count, dim))
    magnetisations = rng.normal(size=(count, dim))
    if family.is_round:
        return Sources.of(family, centers, magnetisations, rng.uniform(0.2, 0.6, count))
    return Sources.of(family, centers, magnetisations, rng.uniform(0.2, 1.0, (count, dim)))


# -- closed-form anchors -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "sources, inside_field",
    [
        (Sources.discs([[0.3, -0.2]], [[1.2, -0.7]], [0.8]), -0.5),
        (Sources.prisms([[0.3, -0.2]], [[1.2, -0.7]], [[1.0, 1.0]]), -0.5),
        (Sources.spheres([[0.3, -0.2, 0.1]], [[1.2, -0.7, 0.4]], [0.8]), -1 / 3),
        (Sources.cuboids([[0.3, -0.2, 0.1]], [[1.2, -0.7, 0.4]], [[1.0, 1.0, 1.0]]), -1 / 3),
    ],
    ids=["disc", "square", "sphere", "cube"],
)
def test_demagnetising_field_at_the_centre(sources, inside_field):
    _, field = potential_and_field(sources, sources.centers)
    np.testing.assert_allclose(field[0], inside_field * sources.magnetisations[0], rtol=1e-13, atol=1e-15)


def test_disc_matches_physics_md_closed_form():
    rng = np.random.default_rng(RNG_SEED)
    m, radius = np.array([0.4, -1.1]), 0.7
    sources = Sources.discs([[0.0, 0.0]], [m], [radius])
    points = rng.uniform(-2, 2, (500, 2))
    phi, field = potential_and_field(sources, points)
    d2 = np.sum(points ** 2, axis=1)
    md = points @ m
    outside = d2 > radius ** 2
    expected_phi = np.where(outside, radius ** 2 * md / (2 * d2), md / 2)
    expected_h = np.where(outside[:, None],
                          radius ** 2 / 2 * (2 * md[:, None] * points / d2[:, None] ** 2 - m / d2[:, None]),
                          -m / 2)
    np.testing.assert_allclose(phi, expected_phi, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(field, expected_h, rtol=1e-12, atol=1e-14)


# -- identities ----------------------------------------------------------------------------------

def test_mixed_families_add_up():
    rng = np.random.default_rng(RNG_SEED)
    discs, prisms = random_sources(Family.DISC, 3, rng), random_sources(Family.PRISM, 3, rng)
    points = rng.uniform(-2, 2, (200, 2))
    total = potential_and_field(Sources.concat([discs, prisms]), points)
    parts = [potential_and_field(s, points) for s in (discs, prisms)]
    np.testing.assert_allclose(total[0], parts[0][0] + parts[1][0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(total[1], parts[0][1] + parts[1][1], rtol=1e-12, atol=1e-13)


def test_prism_far_field_keeps_precision_against_40_digit_arithmetic():
    """The naive face formula loses ~2 digits per decade. The stable closed form keeps 1e-11 up to
    the switch at 100 half-diagonals (|r| = 38.08 here; measured over 27 angles: phi 8.5e-12, H 2.0e-12
    at |r| = 38, 4.5e-12 and 9.7e-13 at 30), and the multipole series beyond it 5e-15 (measured
    2.1e-15 at 39-1e8), the tolerances below (README, "Accuracy far away")."""
    mpmath.mp.dps = 40
    a, b = mpmath.mpf("0.15"), mpmath.mpf("0.35")
    mx, my = mpmath.mpf("0.8"), mpmath.mpf("-1.3")

    def exact_phi(x, y):
        def f(u, v):
            term = u / 2 * mpmath.log(u * u + v * v) if u != 0 else mpmath.mpf(0)
            return term - u + abs(v) * mpmath.atan2(u, abs(v))

        def i_(v):
            return f(y + b, v) - f(y - b, v)

        def j_(v):
            return f(x + a, v) - f(x - a, v)

        return -(mx * (i_(x - a) - i_(x + a)) + my * (j_(y - b) - j_(y + b))) / (2 * mpmath.pi)

    def exact_field(x, y):
        return [-mpmath.diff(lambda s: exact_phi(s, y), x), -mpmath.diff(lambda s: exact_phi(x, s), y)]

    sources = Sources.prisms([[0.0, 0.0]], [[0.8, -1.3]], [[0.3, 0.7]])
    switch = 100 * np.hypot(0.15, 0.35)
    assert 38.0 < switch < 39.0
    for radius, tolerance in ((0.9, 1e-14), (3.0, 1e-12), (30.0, 1e-11), (38.0, 1e-11), (39.0, 5e-15), (100.0, 5e-15),
                              (1e4, 5e-15), (1e8, 5e-15)):
        for angle in (0.3, 1.9, 4.0):
            x, y = radius * np.cos(angle), radius * np.sin(angle)
            phi, field = potential_and_field(sources, [[x, y]])
            reference_phi = float(exact_phi(mpmath.mpf(x), mpmath.mpf(y)))
            reference_field = np.array([float(v) for v in exact_field(mpmath.mpf(x), mpmath.mpf(y))])
            assert abs(phi[0] - reference_phi) <= tolerance * abs(reference_phi), (radius, angle)
            assert np.linalg.norm(field[0] - reference_field) <= tolerance * np.linalg.norm(reference_field)


def test_rotating_a_disc_configuration_rotates_the_field():
    rng = np.random.default_rng(RNG_SEED)
    sources = random_sources(Family.DISC, 4, rng)
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = Sources.discs(sources.centers @ rotation.T, sources.magnetisations @ rotation.T, sources.radii)
    points = rng.uniform(-2, 2, (200, 2))
    phi, field = potential_and_field(sources, points)
    phi_r, field_r = potential_and_field(rotated, points @ rotation.T)
    np.testing.assert_allclose(phi_r, phi, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(field_r, field @ rotation.T, rtol=1e-11, atol=1e-12)


def test_quarter_turn_of_a_prism_rotates_the_field():
    rng = np.random.default_rng(RNG_SEED)
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    sources = random_sources(Family.PRISM, 3, rng)
    turned = Sources.prisms(sources.centers @ rotation.T, sources.magnetisations @ rotation.T, sources.sizes[:, ::-1])
    points = rng.uniform(-2, 2, (200, 2))
    phi, field = potential_and_field(sources, points)
    phi_t, field_t = potential_and_field(turned, points @ rotation.T)
    np.testing.assert_allclose(phi_t, phi, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(field_t, field @ rotation.T, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("dim", [2, 3])
def test_two_abutting_boxes_equal_one_box(dim):
    rng = np.random.default_rng(RNG_SEED)
    m = rng.normal(size=dim)
    maker = Sources.prisms if dim == 2 else Sources.cuboids
    whole_sides = np.array([[1.0, 0.6, 0.8][:dim]])
    half_sides = whole_sides * np.r_[0.5, np.ones(dim - 1)]
    offset = np.r_[0.25, np.zeros(dim - 1)]
    halves = maker(np.stack([-offset, offset]), np.stack([m, m]), np.repeat(half_sides, 2, axis=0))
    whole = maker(np.zeros((1, dim)), m[None], whole_sides)
    points = rng.uniform(-1.5, 1.5, (300, dim))
    points = points[np.abs(points[:, 0]) > 1e-3]  # not on the shared face, where each half has its mean
    phi_h, field_h = potential_and_field(halves, points)
    phi_w, field_w = potential_and_field(whole, points)
    np.testing.assert_allclose(phi_h, phi_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(field_h, field_w, rtol=1e-9, atol=1e-10)


# -- singular points -----------------------------------------------------------------------------

def test_points_on_corners_raise_or_give_the_documented_finite_part():
    prism = Sources.prisms([[0.25, 0.5]], [[1.0, 0.5]], [[0.5, 0.75]])  # binary fractions: exact corners
    corner = np.array([[0.5, 0.875]])
    with pytest.raises(ValueError, match="corner"):
        potential_and_field(prism, corner)
    phi, field = potential_and_field(prism, corner, corners="finite-part")
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(field))
    # The potential is continuous at a corner: the finite-part value is its limit.
    near_phi, _ = potential_and_field(prism, corner + 1e-9)
    assert phi[0] == pytest.approx(near_phi[0], abs=1e-7)
    cube = Sources.cuboids([[0.0, 0.0, 0.0]], [[1.0, 0.5, 0.2]], [[0.5, 0.75, 1.0]])
    with pytest.raises(ValueError, match="corner"):
        potential_and_field(cube, [[0.25, -0.375, 0.5]])


# -- batched raw core ----------------------------------------------------------------------------

def test_batched_core_matches_the_functional_layer_and_padding_adds_nothing():
    rng = np.random.default_rng(RNG_SEED)
    samples = [Sources.concat([random_sources(Family.DISC, k, rng), random_sources(Family.PRISM, 4 - k, rng)])
               for k in (1, 2, 3)] + [random_sources(Family.DISC, 1, rng)]
    batch = SourceBatch.pad(samples, max_sources=6)
    per_sample_points = rng.uniform(-2, 2, (len(samples), 64, 2))
    phi, field = potential_and_field_batched(batch, per_sample_points)
    shared = rng.uniform(-2, 2, (50, 2))
    phi_shared, _ = potential_and_field_batched(batch, shared)
    for index, sample in enumerate(samples):
        expected_phi, expected_field = potential_and_field(sample, per_sample_points[index])
        np.testing.assert_allclose(phi[index], expected_phi, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(field[index], expected_field, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(phi_shared[index], potential_and_field(sample, shared)[0], rtol=1e-12, atol=1e-13)
        assert batch.sample(index).centers.shape == sample.centers.shape
    # slicing a batch keeps whole, padded samples
    part = batch[1:3]
    assert len(part) == 2 and part.centers.shape[1] == 6
    np.testing.assert_array_equal(part.sample(1).centers, samples[2].centers)
    assert len(batch[-1]) == 1 and len(batch[[0, 3]]) == 2
    np.testing.assert_array_equal(batch[3].sample(0).sizes, samples[3].sizes)


def test_masked_sources_contribute_exactly_zero_even_with_garbage():
    rng = np.random.default_rng(RNG_SEED)
    points = jnp.asarray(rng.uniform(-1, 1, (40, 2)))
    centers = jnp.asarray([[0.0, 0.0], [0.5, 0.5]])
    magnetisations = jnp.asarray([[1.0, 0.0], [3.0, 4.0]])
    sizes = jnp.asarray([[0.4, 0.4], [0.0, -1.0]])  # the masked one is degenerate
    for family in (Family.DISC, Family.PRISM):
        masked = direct_sum(points, centers, magnetisations, sizes, jnp.asarray([True, False]), family=family)
        alone = direct_sum(points, centers[:1], magnetisations[:1], sizes[:1], jnp.asarray([True]), family=family)
        for got, want in zip(masked, alone):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_functional_layer_rejects_bad_points():
    discs = Sources.discs([[0.0, 0.0]], [[1.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match=r"points must have shape \(N, d\) with d = 2"):
        fb.potential(discs, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="single point"):
        fb.field(discs, [0.0, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        fb.potential(discs, [[0.0, np.nan]])
    with pytest.raises(TypeError, match="fieldbench.Sources"):
        fb.potential({"centers": [[0, 0]]}, [[0.0, 1.0]])


def test_the_potential_is_returned_at_a_prism_corner_and_is_continuous_there():
    import fieldbench as fb

    prism = fb.Sources.prisms(centers=[[0.25, -0.5]], magnetisations=[[0.7, -1.1]], sides=[[0.5, 1.0]])
    corner = np.array([[0.5, 0.0]])  # exactly representable
    at_corner = fb.potential(prism, corner)  # finite there: no error (the field still raises)
    nearby = fb.potential(prism, corner + np.array([[1e-9, -2e-9]]))
    # continuous: |phi(corner + d) - phi(corner)| ~ |d| log(1/|d|) (the field diverges like log)
    assert np.isfinite(at_corner).all() and at_corner == pytest.approx(nearby, abs=1e-7)
    with pytest.raises(ValueError, match="corner"):
        fb.field(prism, corner)


@pytest.mark.parametrize("field, value, message", [
    ("sizes", [[np.nan, 1.0]], "non-finite"), ("sizes", [[-1.0, 1.0]], "must be positive"),
    ("centers", [[np.inf, 0.0]], "non-finite"), ("magnetisations", [[1.0]], "shape"),
])
def test_raw_sources_are_validated_by_the_functional_layer(field, value, message):
    import fieldbench as fb
    from fieldbench.sources import Family, Sources

    arrays = {"family": np.array([int(Family.PRISM)], np.int8), "centers": np.zeros((1, 2)),
              "magnetisations": np.ones((1, 2)), "sizes": np.ones((1, 2))}
    arrays[field] = np.array(value)
    with pytest.raises(ValueError, match=message):
        fb.potential(Sources(**arrays), np.array([[2.0, 2.0]]))
