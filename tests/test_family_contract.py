"""The contract every registered source family satisfies: a new family is tested by being added.

Parametrised over ``fieldbench.families.DEFINITIONS``: geometry consistent with itself (measure,
contains, signed distance, surface points), and the physics identities of its kernel and of the
solver built on it: H = -grad(phi) by autodiff, div H = curl H = 0 away from the boundary,
the jumps of normal H (by M.n) and the continuity of tangential H across the boundary (with the
mean of both limits on it), superposition, the dipole far field of its moment, a cancelling pair,
finite values on every special point, and agreement with magpylib.

Kept fast (CI is at its time limit): the divergence is checked on the Jacobian of the kernel's
closed-form H by forward-mode autodiff (together with H = -grad(phi), that is the Laplacian of phi)
rather than on the second-order autodiff Hessian of phi, whose compilation alone took 174 s for
cuboids; every identity is evaluated in one vectorised call per family.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fieldbench import Family, Sources
from fieldbench.families import DEFINITIONS
from fieldbench.physics import potential_and_field, reference_field
from fieldbench.sources import boundary_distance, pairwise_overlaps

RNG_SEED = 20261124

pytestmark = pytest.mark.parametrize("family", DEFINITIONS, ids=[d.name for d in DEFINITIONS])


def random_sources(family, count: int, rng, *, spread: float = 1.5) -> Sources:
    """``count`` sources of one family, centres uniform in [-spread, spread]^d, radii in [0.2, 0.6]
    or sides in [0.2, 1.0]."""
    dim = family.dim
    size = (0.2, 0.6) if family.is_round else (0.2, 1.0)
    centers = rng.uniform(-spread, spread, (count, dim))
    magnetisations = rng.normal(size=(count, dim))
    sizes = family.sizes_from_draws(rng.uniform(*size, (count, dim)), "free")
    return Sources.from_arrays(np.full(count, family.code, np.int8), centers, magnetisations, sizes)


def kernel(family, source: Sources):
    """The family's pair kernel for one source at the origin, as a function of a point (d,):
    (phi, H (d,)), with the far-field series off (points stay well inside the switch)."""
    params = family.prepare(jnp.asarray(source.magnetisations), jnp.asarray(source.sizes) / 2)
    params = [p[0] for p in params]
    options = {"any_far": False} if family.far_ratio is not None else {}

    def evaluate(point):
        phi, *field = family.pair(*point, *params, **options)
        return phi, jnp.stack(field)

    return evaluate


def near_points(family, source: Sources, rng, count: int) -> np.ndarray:
    """Points inside and around a source at the origin, within 2.5 largest half-sides per axis
    (inside the far-field switch of every family with one)."""
    points = rng.uniform(-2.5, 2.5, (count, family.dim)) * np.max(source.sizes) / 2
    if family.far_ratio is not None:
        reach = np.linalg.norm(points, axis=1) / np.linalg.norm(source.sizes[0] / 2)
        assert np.all(reach < family.far_ratio)
    return points


# -- the registration ------------------------------------------------------------------------------

def test_registration(family):
    member = Family(family.code)
    assert member.name == family.name.upper() and member.definition is family
    assert Family.parse(family.name) is member and Family.parse(family.name + "s") is member
    assert member.dim == family.dim in (2, 3) and member.is_round == family.is_round
    assert family.constructor is None or callable(getattr(Sources, family.constructor))  # it is optional


# -- geometry --------------------------------------------------------------------------------------

def test_geometry_is_consistent(family):
    rng = np.random.default_rng(RNG_SEED)
    source = random_sources(family, 1, rng, spread=0.0)
    sizes = source.sizes
    # the measure is the volume that contains() covers (Monte Carlo in the bounding box)
    points = rng.uniform(-0.5, 0.5, (200_000, family.dim)) * sizes[0]
    inside = family.contains(points, sizes, strict=True)
    fraction = family.measure(sizes)[0] / np.prod(sizes[0])
    assert np.mean(inside) == pytest.approx(fraction, abs=5 * np.sqrt(fraction * (1 - fraction) / len(points)))
    np.testing.assert_allclose(source.moments()[0], source.magnetisations[0] * family.measure(sizes)[0], rtol=1e-15)
    # the signed distance is negative exactly inside, and a distance (1-Lipschitz)
    distance = family.signed_distance(points, sizes)
    np.testing.assert_array_equal(distance < 0, inside | (distance < 0) & family.contains(points, sizes, strict=False))
    assert np.all((distance < 0) <= family.contains(points, sizes, strict=False))
    assert np.all(inside <= (distance <= 0))
    # surface points lie on the boundary, their normals point outwards
    on, normals = family.surface_points(np.repeat(sizes, 50, axis=0), rng.random((50, family.dim)))
    np.testing.assert_allclose(family.signed_distance(on, sizes), 0.0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, rtol=1e-14)
    assert np.all(family.signed_distance(on + 1e-6 * normals, sizes) > 0)
    assert np.all(family.signed_distance(on - 1e-6 * normals, sizes) < 0)
    # the size-normalised distance of the sources layer agrees
    normalised = boundary_distance(source.family[None], source.centers[None], sizes[None], np.ones((1, 1), bool),
                                   points[None, :100])[0]
    np.testing.assert_array_equal(normalised, distance[:100] / np.max(sizes))


def test_overlap_test_matches_the_definition(family):
    """Two sources overlap iff some point lies strictly inside both (brute force on a fine sample)."""
    rng = np.random.default_rng(RNG_SEED)
    for other in DEFINITIONS:
        if other.dim != family.dim:
            continue
        pairs = [Sources.concat([random_sources(family, 1, rng, spread=0.3), random_sources(other, 1, rng, spread=0.3)])
                 for _ in range(20)]
        points = rng.uniform(-1.0, 1.0, (50_000, family.dim))
        for pair in pairs:
            both = pair.contains(points).all(axis=1).any()
            if both:  # a sampled common point proves overlap; the converse needs a margin
                assert pairwise_overlaps(pair)[0, 1]


# -- physics of the kernel -------------------------------------------------------------------------

def test_field_is_minus_gradient_of_potential(family):
    rng = np.random.default_rng(RNG_SEED)
    source = random_sources(family, 1, rng, spread=0.0)
    evaluate = kernel(family, source)
    gradient = jax.jit(jax.vmap(jax.grad(lambda p: evaluate(p)[0])))
    points = near_points(family, source, rng, 40)  # inside and outside
    _, field = potential_and_field(source, points)
    np.testing.assert_allclose(-np.asarray(gradient(jnp.asarray(points))), field, rtol=1e-9, atol=1e-11)


def test_field_is_divergence_and_curl_free_away_from_boundaries(family):
    rng = np.random.default_rng(RNG_SEED)
    source = random_sources(family, 1, rng, spread=0.0)
    evaluate = kernel(family, source)
    jacobian = jax.jit(jax.vmap(jax.jacfwd(lambda p: evaluate(p)[1])))  # dH_i / dx_j = -Hess(phi)
    points = near_points(family, source, rng, 60)
    points = points[np.abs(family.signed_distance(points, source.sizes)) > 0.05]
    assert len(points) > 30
    for jac in np.asarray(jacobian(jnp.asarray(points))):
        scale = np.abs(jac).max() + 1e-12
        assert abs(np.trace(jac)) < 1e-8 * scale  # div H = -lap(phi) = 0 (inside too: M is uniform)
        np.testing.assert_allclose(jac, jac.T, atol=1e-10 * scale)  # curl H = 0


def test_normal_field_jumps_by_m_dot_n_and_tangential_is_continuous(family):
    rng = np.random.default_rng(RNG_SEED)
    eps = 1e-7
    source = random_sources(family, 1, rng, spread=0.0)
    m = source.magnetisations[0]
    on, normals = family.surface_points(np.repeat(source.sizes, 12, axis=0), rng.random((12, family.dim)))
    # and the boundary points on the axes, exactly on it in floating point: +-(size / 2) e_i
    axes = np.concatenate([np.eye(family.dim), -np.eye(family.dim)])
    exact = axes * source.sizes[0] / 2
    closed, open_ = (family.contains(exact, source.sizes, strict=s) for s in (False, True))
    assert np.all(closed & ~open_)
    on, normals = np.concatenate([on, exact]), np.concatenate([normals, axes])
    _, h_out = potential_and_field(source, on + eps * normals)
    _, h_in = potential_and_field(source, on - eps * normals)
    jump = h_out - h_in
    np.testing.assert_allclose(np.sum(jump * normals, axis=1), normals @ m, atol=1e-5)
    tangential = jump - np.sum(jump * normals, axis=1, keepdims=True) * normals
    np.testing.assert_allclose(tangential, 0.0, atol=1e-5)
    _, h_on = potential_and_field(source, exact)  # exactly on the boundary: the mean of both limits
    np.testing.assert_allclose(h_on, (h_out + h_in)[-len(exact):] / 2, atol=1e-5)


# -- physics of the solver -------------------------------------------------------------------------

def test_superposition_including_overlaps(family):
    rng = np.random.default_rng(RNG_SEED)
    first = random_sources(family, 3, rng, spread=0.4)  # tightly packed: they overlap
    second = random_sources(family, 2, rng, spread=0.4)
    points = rng.uniform(-1.5, 1.5, (300, family.dim))
    phi_a, h_a = potential_and_field(first, points)
    phi_b, h_b = potential_and_field(second, points)
    phi, h = potential_and_field(Sources.concat([first, second]), points)
    np.testing.assert_allclose(phi, phi_a + phi_b, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h, h_a + h_b, rtol=1e-12, atol=1e-13)


def test_far_field_is_the_dipole_of_the_moment(family):
    rng = np.random.default_rng(RNG_SEED)
    source = random_sources(family, 1, rng, spread=0.0)
    moment = source.moments()[0]
    direction = rng.normal(size=family.dim)
    direction /= np.linalg.norm(direction)
    # Far enough for the multipole series of boxes (prisms and cuboids) and plain dipoles otherwise.
    distance = 1e4 if family.dim == 2 else 100.0
    point = distance * direction
    phi, _ = potential_and_field(source, point[None])
    solid_angle = 2 * np.pi if family.dim == 2 else 4 * np.pi
    dipole = moment @ point / (solid_angle * distance ** family.dim)
    # The next multipole order is down by (size / distance)^2 (even orders vanish by symmetry).
    assert phi[0] == pytest.approx(dipole, rel=3 * (source.sizes.max() / distance) ** 2)


def test_cancelling_pair_gives_zero(family):
    rng = np.random.default_rng(RNG_SEED)
    source = random_sources(family, 1, rng)
    pair = Sources.concat([source, source.with_magnetisations(-source.magnetisations)])
    phi, field = potential_and_field(pair, rng.uniform(-2, 2, (100, family.dim)))
    single_phi, single_field = potential_and_field(source, rng.uniform(-2, 2, (100, family.dim)))
    assert np.abs(phi).max() <= 1e-14 * np.abs(single_phi).max()
    assert np.abs(field).max() <= 1e-14 * np.abs(single_field).max()


def test_no_nan_anywhere_on_sources(family):
    """Centres, faces, rims, edges, corners and their extensions: always finite values."""
    source = random_sources(family, 1, np.random.default_rng(RNG_SEED), spread=0.0)
    half = source.sizes[0] / 2
    dim = family.dim
    steps = np.array(np.meshgrid(*[np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])] * dim)).reshape(dim, -1).T
    points = steps * half
    phi, field = potential_and_field(source, points, corners="finite-part")
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(field))
    singular = family.on_singular_set(points - source.centers[0], half)
    assert (family.singular_set is None) == (not np.any(singular))
    if np.any(singular):
        with pytest.raises(ValueError, match="diverges"):
            potential_and_field(source, points[singular][:1])


def test_agrees_with_magpylib(family):
    rng = np.random.default_rng(RNG_SEED)
    sources = random_sources(family, 3, rng, spread=1.0)
    points = rng.uniform(-2.0, 2.0, (60, family.dim))
    distance = boundary_distance(sources.family[None], sources.centers[None], sources.sizes[None],
                                 np.ones((1, 3), bool), points[None])[0]
    points = points[np.abs(distance) > 0.05][:20]
    _, field = potential_and_field(sources, points)
    reference = reference_field(sources, points, backend="magpylib")
    error = np.linalg.norm(field - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert error.max() < 1e-8  # test_references.py: per-family tables down to 1e-13
