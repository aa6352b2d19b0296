"""The FMM baseline (pyfmmlib): both variants against the exact solver, and their edge cases."""

import sys

import numpy as np
import pytest

import fieldbench as fb
from fieldbench import Sources
from fieldbench.physics import fmm_available, fmm_potential_and_field
from fieldbench.physics.fmm import _loading, _neighbours, _rings

pytestmark = pytest.mark.skipif(not fmm_available(), reason="pyfmmlib (the fmm extra) is not installed")

RNG_SEED = 20261124
#: Accepted error per iprec, relative to the largest |H| (or |phi|) of the configuration: the
#: FMM's own error is relative to the field of the sources around a point, not to the value there.
MAX_ERROR = {1: 5e-3, 4: 1e-10}
#: And per point, the median relative error.
MEDIAN_ERROR = {1: 1e-4, 4: 1e-12}


def discs(count=30, seed=RNG_SEED):
    rng = np.random.default_rng(seed)
    return Sources.discs(rng.uniform(-2, 2, (count, 2)), rng.normal(size=(count, 2)), rng.uniform(0.1, 0.3, count))


def prisms(count=30, seed=RNG_SEED + 1):
    rng = np.random.default_rng(seed)
    return Sources.prisms(rng.uniform(-2, 2, (count, 2)), rng.normal(size=(count, 2)),
                          rng.uniform(0.1, 0.5, (count, 2)))


CONFIGS = {"disc": discs, "prism": prisms, "mixed": lambda: Sources.concat([discs(15), prisms(15)])}


def errors(approx, exact):
    """(max error / max |value|, median relative error) of phi or H."""
    approx, exact = np.asarray(approx), np.asarray(exact)
    if exact.ndim == 2:
        diff, size = np.linalg.norm(approx - exact, axis=1), np.linalg.norm(exact, axis=1)
    else:
        diff, size = np.abs(approx - exact), np.abs(exact)
    return diff.max() / size.max(), float(np.median(diff / size))


def assert_close(approx, exact, iprec, what):
    worst, median = errors(approx, exact)
    assert worst < MAX_ERROR[iprec], f"{what}: max error {worst:.2e} (scaled) at iprec {iprec}"
    assert median < MEDIAN_ERROR[iprec], f"{what}: median relative error {median:.2e} at iprec {iprec}"


def dipole_sum(sources, points):
    """Direct sum of the point dipoles (the pure variant's model), excluding exact coincidences."""
    moments = sources.moments()
    moment = moments[:, 0] + 1j * moments[:, 1]
    z = (points[:, None, 0] - sources.centers[None, :, 0]) + 1j * (points[:, None, 1] - sources.centers[None, :, 1])
    hit = z == 0
    inv = 1.0 / np.where(hit, 1.0, z)
    f0 = np.where(hit, 0.0, moment * inv / (2 * np.pi))
    f1 = -f0 * inv
    phi = f0.real.sum(axis=1)
    f1 = f1.sum(axis=1)
    return phi, np.stack([-f1.real, f1.imag], axis=1)


def distance_to_sources(sources, points):
    """Distance from each point to the nearest source (0 inside), (N,)."""
    d = np.abs(points[:, None, :] - sources.centers[None]) - sources.sizes[None] / 2
    box = np.hypot(np.maximum(d[..., 0], 0), np.maximum(d[..., 1], 0))
    centre_distance = np.linalg.norm(points[:, None, :] - sources.centers[None], axis=-1)
    disc = np.maximum(centre_distance - sources.sizes[None, :, 0] / 2, 0)
    return np.where(np.asarray(sources.family)[None] == fb.Family.DISC, disc, box).min(axis=1)


def hard_points(sources, rng, count=1500):
    """Random points over the domain plus centres, near-centre points, points near every prism
    corner (1e-3 of the size away, inside and outside) and just inside/outside disc rims."""
    centers, half = sources.centers, sources.sizes / 2
    parts = [rng.uniform(-2.8, 2.8, (count, 2)), centers, centers + 1e-9, centers + [2e-3, -1e-3]]
    is_prism = np.asarray(sources.family) == fb.Family.PRISM
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        corner = centers[is_prism] + half[is_prism] * [sx, sy]
        step = 1e-3 * sources.sizes[is_prism].max(axis=1, keepdims=True)
        parts += [corner + step * [sx, sy], corner - step * [sx, sy], corner + step * [sx, -sy]]
    disc = ~is_prism
    angle = rng.uniform(0, 2 * np.pi, disc.sum())
    unit = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    for scale in (0.999, 1.001):
        parts.append(centers[disc] + scale * half[disc, :1] * unit)
    return np.concatenate(parts)


# -- (1) the pure variant ------------------------------------------------------------------------

@pytest.mark.parametrize("iprec", [1, 4])
@pytest.mark.parametrize("family", ["disc", "prism"])
def test_pure_is_the_point_dipole_sum(family, iprec):
    sources = CONFIGS[family]()
    points = np.random.default_rng(RNG_SEED).uniform(-2.8, 2.8, (2000, 2))
    phi, field = fmm_potential_and_field(sources, points, iprec=iprec, variant="pure")
    reference = dipole_sum(sources, points)
    assert_close(phi, reference[0], iprec, "phi")
    assert_close(field, reference[1], iprec, "H")


@pytest.mark.parametrize("iprec", [1, 4])
def test_pure_is_exact_outside_discs_even_at_the_rim(iprec):
    sources = discs()
    rng = np.random.default_rng(RNG_SEED)
    points = hard_points(sources, rng)
    points = points[~sources.contains(points, strict=False).any(axis=1)]
    assert points.shape[0] > 1000
    phi, field = fmm_potential_and_field(sources, points, iprec=iprec, variant="pure")
    exact = fb.potential_and_field(sources, points)
    assert_close(phi, exact[0], iprec, "phi")
    assert_close(field, exact[1], iprec, "H")


def test_pure_prisms_far_away_err_only_by_their_higher_multipoles():
    """A prism is a point dipole only to leading order: far from the prisms (> 3 sizes) the pure
    FMM agrees with the exact field to within the next multipole, ~(half-diagonal / d)^2."""
    sources = prisms(count=8)
    rng = np.random.default_rng(RNG_SEED)
    points = rng.uniform(-12, 12, (4000, 2))
    gap = distance_to_sources(sources, points)
    points = points[gap > 3 * sources.sizes.max()]
    phi, field = fmm_potential_and_field(sources, points, iprec=4, variant="pure")
    exact_phi, exact_field = fb.potential_and_field(sources, points)
    error = np.linalg.norm(field - exact_field, axis=1) / np.linalg.norm(exact_field, axis=1)
    assert np.median(error) < 2e-2
    assert np.median(error) > 1e-6  # and it is not exact: this is what the corrected variant fixes
    corrected = fmm_potential_and_field(sources, points, iprec=4)
    assert_close(corrected[1], exact_field, 4, "corrected H far away")


# -- (2) the corrected variant -------------------------------------------------------------------

@pytest.mark.parametrize("iprec", [1, 4])
@pytest.mark.parametrize("family", ["disc", "prism", "mixed"])
def test_corrected_matches_the_exact_solver_everywhere(family, iprec):
    sources = CONFIGS[family]()
    points = hard_points(sources, np.random.default_rng(RNG_SEED))
    phi, field = fmm_potential_and_field(sources, points, iprec=iprec)
    exact_phi, exact_field = fb.potential_and_field(sources, points)
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(field))
    assert_close(phi, exact_phi, iprec, "phi")
    assert_close(field, exact_field, iprec, "H")
    inside = sources.contains(points).any(axis=1)
    assert inside.sum() > 100
    assert_close(field[inside], exact_field[inside], iprec, "H inside sources")


def test_corrected_at_centres_of_overlapping_and_coincident_sources():
    base = discs(count=12)
    centers = np.concatenate([base.centers, base.centers[:3]])  # three pairs share a centre
    rng = np.random.default_rng(RNG_SEED)
    sources = Sources.concat([
        Sources.discs(centers[:12], base.magnetisations, base.radii),
        Sources.prisms(centers[12:], rng.normal(size=(3, 2)), rng.uniform(0.1, 0.5, (3, 2))),
    ])
    points = np.concatenate([sources.centers, sources.centers + 1e-12, sources.centers + 3e-5])
    phi, field = fmm_potential_and_field(sources, points, iprec=4)
    exact = fb.potential_and_field(sources, points)
    assert_close(phi, exact[0], 4, "phi")
    worst, _ = errors(field, exact[1])
    assert worst < 1e-7  # within SNAP_RADIUS of a centre: Taylor step, ~(r / d)^2


def test_paper_style_point_dipole_correction_is_exact_only_near_the_prism():
    """prism_order=1 hands the FMM point dipoles only (the paper's FMM): exact within the near zone
    of a lone prism, and off by its octupole just beyond."""
    sources = Sources.prisms([[0.2, -0.1]], [[1.0, 0.4]], [[0.6, 0.2]])
    points = np.random.default_rng(RNG_SEED).uniform(-3, 3, (2000, 2))
    distance = np.linalg.norm(points - sources.centers, axis=1)
    near_zone = np.hypot(0.3, 0.1) + 1.0 * 0.6
    phi, field = fmm_potential_and_field(sources, points, iprec=4, prism_order=1)
    exact = fb.potential_and_field(sources, points)
    error = np.linalg.norm(field - exact[1], axis=1) / np.linalg.norm(exact[1], axis=1)
    assert np.max(error[distance < near_zone]) < 1e-9
    assert np.max(error[distance > near_zone]) > 1e-3
    automatic = fmm_potential_and_field(sources, points, iprec=4)
    assert_close(automatic[1], exact[1], 4, "H with automatic multipoles")


def test_point_on_an_internal_ring_dipole_falls_back_to_the_exact_sum(monkeypatch):
    sources = prisms(count=5)
    _, positions, _ = _rings.prism_ring(sources.centers, sources.magnetisations, sources.sizes / 2, 12)
    points = np.stack([positions[:, 0].real, positions[:, 0].imag], axis=1)
    calls = []
    exact_solver = fb.physics.potential_and_field
    monkeypatch.setattr(fb.physics, "potential_and_field", lambda *a, **k: calls.append(1) or exact_solver(*a, **k))
    phi, field = fmm_potential_and_field(sources, points, iprec=1, prism_order=11)  # a ring of 12
    assert calls  # the FMM met a singular ring dipole: those points were recomputed exactly
    exact = exact_solver(sources, points)
    assert np.all(np.isfinite(field))
    assert errors(field, exact[1])[0] < 1e-12


def test_neighbour_search_finds_exactly_the_pairs_within_reach():
    rng = np.random.default_rng(RNG_SEED)
    points = np.concatenate([rng.uniform(-3, 3, (700, 2)), [[0.0, 0.0], [0.5, 0.0]]])
    centers = np.concatenate([rng.uniform(-3, 3, (300, 2)), [[0.0, 0.0]]])
    reach = np.concatenate([rng.uniform(0.0, 0.4, 300), [0.5]])  # includes a pair exactly at reach
    reach[:5] = 0.0
    found = set(zip(*_neighbours.near_pairs(points, centers, reach)))
    distance = np.linalg.norm(points[:, None] - centers[None], axis=-1)
    expected = set(zip(*np.nonzero(distance <= reach[None])))
    assert found == expected and (701, 300) in found


# -- (3) the correction matters ------------------------------------------------------------------

def test_pure_is_wrong_inside_a_disc():
    sources = Sources.discs([[0.0, 0.0], [3.0, 0.5]], [[1.0, 0.3], [-0.5, 0.8]], [0.5, 0.2])
    angle = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    points = 0.5 * 0.5 * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # at half the radius
    pure = fmm_potential_and_field(sources, points, variant="pure")
    corrected = fmm_potential_and_field(sources, points)
    exact = fb.potential_and_field(sources, points)
    pure_error = np.linalg.norm(pure[1] - exact[1], axis=1) / np.linalg.norm(exact[1], axis=1)
    assert np.min(pure_error) > 0.1
    assert errors(corrected[1], exact[1])[0] < 1e-4
    # At the centre the pure variant drops the singular self term (documented), finite but wrong.
    at_centre = fmm_potential_and_field(sources, sources.centers[:1], variant="pure")
    exact_centre = fb.potential_and_field(sources, sources.centers[:1])
    assert np.all(np.isfinite(at_centre[1]))
    np.testing.assert_allclose(at_centre[1], dipole_sum(sources, sources.centers[:1])[1], rtol=1e-4)
    assert np.linalg.norm(at_centre[1] - exact_centre[1]) > 0.4  # misses -M/2 of the disc itself


# -- (4) linearity -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["pure", "corrected"])
def test_linear_in_the_magnetisations(variant):
    sources = CONFIGS["mixed"]()
    rng = np.random.default_rng(RNG_SEED)
    points = hard_points(sources, rng, count=500)
    other = rng.normal(size=sources.magnetisations.shape)
    combined = sources.with_magnetisations(2.0 * sources.magnetisations - 0.5 * other)
    first = fmm_potential_and_field(sources, points, iprec=4, variant=variant)
    second = fmm_potential_and_field(sources.with_magnetisations(other), points, iprec=4, variant=variant)
    both = fmm_potential_and_field(combined, points, iprec=4, variant=variant)
    scale = np.abs(both[1]).max()
    np.testing.assert_allclose(both[0], 2.0 * first[0] - 0.5 * second[0], atol=1e-11 * np.abs(both[0]).max())
    np.testing.assert_allclose(both[1], 2.0 * first[1] - 0.5 * second[1], atol=1e-11 * scale)


def test_superposition_of_collections():
    a, b = discs(count=10), prisms(count=10)
    points = np.random.default_rng(RNG_SEED).uniform(-2.5, 2.5, (800, 2))
    together = fmm_potential_and_field(Sources.concat([a, b]), points, iprec=4)
    apart = [fmm_potential_and_field(s, points, iprec=4) for s in (a, b)]
    np.testing.assert_allclose(together[0], apart[0][0] + apart[1][0], atol=1e-10 * np.abs(together[0]).max())
    np.testing.assert_allclose(together[1], apart[0][1] + apart[1][1], atol=1e-10 * np.abs(together[1]).max())


def test_threads_do_not_change_the_result():
    sources = discs()
    points = np.random.default_rng(RNG_SEED).uniform(-2, 2, (500, 2))
    one = fmm_potential_and_field(sources, points, iprec=2, threads=1)
    default = fmm_potential_and_field(sources, points, iprec=2)
    np.testing.assert_allclose(one[1], default[1], rtol=1e-12, atol=1e-12)


# -- (5) validation and edge cases ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"iprec": 6}, "iprec"), ({"iprec": -3}, "iprec"), ({"iprec": True}, "iprec"), ({"iprec": 1.0}, "iprec"),
    ({"variant": "exact"}, "variant"), ({"near": 0.0}, "near"), ({"near": float("nan")}, "near"),
    ({"threads": 0}, "threads"), ({"prism_order": 0}, "prism_order"), ({"corners": "ignore"}, "corners"),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fmm_potential_and_field(discs(count=3), np.zeros((2, 2)), **kwargs)


def test_bad_inputs_raise():
    sources = discs(count=3)
    with pytest.raises(ValueError, match="2D only"):
        fmm_potential_and_field(Sources.spheres([[0, 0, 0]], [[1, 0, 0]], [1.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        fmm_potential_and_field(sources, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        fmm_potential_and_field(sources, np.zeros(2))
    with pytest.raises(ValueError, match="non-finite"):
        fmm_potential_and_field(sources, [[0.0, np.nan]])
    with pytest.raises(TypeError, match="Sources"):
        fmm_potential_and_field(sources.centers, np.zeros((2, 2)))


def test_prism_corner_raises_unless_finite_part_is_asked_for():
    sources = Sources.prisms([[0.0, 0.0]], [[1.0, 0.5]], [[1.0, 0.6]])
    corner = np.array([[0.5, 0.3], [0.1, 0.1]])
    with pytest.raises(ValueError, match="corner"):
        fmm_potential_and_field(sources, corner)
    phi, field = fmm_potential_and_field(sources, corner, corners="finite-part")
    exact = fb.potential_and_field(sources, corner, corners="finite-part")
    np.testing.assert_allclose(phi, exact[0], rtol=1e-6)
    np.testing.assert_allclose(field, exact[1], rtol=1e-4)


def test_empty_sources_or_points():
    empty = Sources.from_arrays(np.zeros(0, np.int8), np.zeros((0, 2)), np.zeros((0, 2)), np.ones((0, 2)))
    phi, field = fmm_potential_and_field(empty, np.ones((4, 2)))
    assert phi.shape == (4,) and field.shape == (4, 2) and not phi.any() and not field.any()
    phi, field = fmm_potential_and_field(discs(count=3), np.zeros((0, 2)), variant="pure")
    assert phi.shape == (0,) and field.shape == (0, 2)


def test_pure_refuses_to_overflow_silently():
    sources = Sources.discs([[0.0, 0.0], [1.0, 0.5]], [[1.0, 0.2], [0.3, 0.1]], [0.3, 0.2])
    point = np.array([[1e-160, 0.0]])  # a point dipole's field overflows this close
    with pytest.raises(FloatingPointError, match="corrected"):
        fmm_potential_and_field(sources, point, variant="pure")
    phi, field = fmm_potential_and_field(sources, point)
    np.testing.assert_allclose(field, fb.potential_and_field(sources, point)[1], rtol=1e-8)


def test_missing_pyfmmlib_names_the_extra(monkeypatch):
    _loading.require_pyfmmlib.cache_clear()
    monkeypatch.setitem(sys.modules, "pyfmmlib._internal", None)
    try:
        assert not fmm_available()
        with pytest.raises(ImportError, match=r"pip install 'fieldbench\[fmm\]'"):
            fmm_potential_and_field(discs(count=3), np.ones((2, 2)))
    finally:
        _loading.require_pyfmmlib.cache_clear()
