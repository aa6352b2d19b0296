"""The prism: a uniformly magnetised infinite rectangular bar along z, axis-aligned (2D).

The closed form (:func:`prism_near`) is docs/physics.md's face formulas; beyond ``FAR_RATIO``
half-diagonals :func:`prism_pair` switches to the exact multipole series of the face charges.

Values on a face are the mean of the inside and outside limits (the principal value). Exactly at a
corner, phi is finite and exact, but the field diverges like ln(rho), rho the distance to the
corner; the kernel then returns its finite part (not a physical value; the functional layer
refuses such points unless asked for it): the divergent log evaluated as if rho were
L = max(a, b), the largest half-side, and the corner's angle at its mean over directions. That is
the limit rho -> 0 of the field averaged over a circle of radius rho around the corner with
ln(rho) replaced by ln(L); like the field itself it does not change with the unit of length.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ._base import BoxShape
from ._math import angle_of, sign
from ._math import log_ratio as _stable_log_ratio

__all__ = ["Prism", "prism_pair", "prism_near", "prism_multipoles", "multipole_pair", "FAR_RATIO", "MULTIPOLE_ORDER"]

_INV_2PI = 1.0 / (2.0 * math.pi)
_INV_4PI = 1.0 / (4.0 * math.pi)

#: A point is "far" from a prism when |d| > FAR_RATIO * half-diagonal. The closed form (with its
#: stable log ratios) still loses digits slowly with distance, about 1e-11 relative at this ratio
#: and 2e-9 at ten times it; beyond, the multipole series takes over and keeps full precision.
FAR_RATIO = 100.0
#: Order of that series; the truncation error is below FAR_RATIO ** -MULTIPOLE_ORDER = 1e-18.
MULTIPOLE_ORDER = 9

def prism_near(dx, dy, mx, my, a, b):
    """Closed form of an axis-aligned prism with half-sides (a, b): returns (phi, hx, hy).

    docs/physics.md's face formulas, regrouped so that every transcendental is needed once: with
    p = dx -+ a, q = dy -+ b at the four corners, corner weight s = -sgn(cx) sgn(cy), corner angle
    t = atan2(|q|, |p|) and squared corner distances r2(+-a, +-b),
      phi = -(1/2pi) [ (mx (dy L - b Dx) + my (dx L - a Dy)) / 2
                       + sum_c s (mx |p| sgn(q) t + my |q| sgn(p) (pi/2 - t)) ],
      hx = (mx/2pi) S + (my/4pi) L,  hy = (mx/4pi) L + (my/2pi) (W - S),
        S = sum_c s sgn(p) sgn(q) t,  W = (pi/2) sum_c s sgn(p) sgn(q)  (-2pi inside, 0 outside),
        L  = ln(r2(-a,b) r2(a,-b) / (r2(a,b) r2(-a,-b))),   numerator - denominator = 16 a b dx dy,
        Dx = ln(r2(-a,b) r2(-a,-b) / (r2(a,b) r2(a,-b))),   difference = 8 a dx (dx^2 + dy^2 + a^2 + b^2),
        Dy = ln(r2(a,-b) r2(-a,-b) / (r2(a,b) r2(-a,b))),   difference = 8 b dy (dx^2 + dy^2 + a^2 + b^2).
    Knowing the differences exactly, ``_math.log_ratio`` evaluates the logs without the cancellation that
    costs the naive per-corner form two digits per decade of distance. sgn(0) = 0 gives the
    principal value (mean of both sides) on faces.
    """
    xm, xp = dx - a, dx + a
    ym, yp = dy - b, dy + b
    r2_pp = xm * xm + ym * ym  # corner (+a, +b)
    r2_pm = xm * xm + yp * yp  # corner (+a, -b)
    r2_mp = xp * xp + ym * ym  # corner (-a, +b)
    r2_mm = xp * xp + yp * yp  # corner (-a, -b)
    # Exactly at a corner its r2 is 0: the finite part (module docstring) takes it as L^2, and the
    # log ratios then come from the products themselves (the closed-form gaps hold for the true r2).
    at_corner = (r2_pp == 0.0) | (r2_pm == 0.0) | (r2_mp == 0.0) | (r2_mm == 0.0)
    size2 = jnp.maximum(a, b) ** 2
    r2_pp, r2_pm, r2_mp, r2_mm = (jnp.where(r2 > 0.0, r2, size2) for r2 in (r2_pp, r2_pm, r2_mp, r2_mm))
    spread = 8.0 * (dx * dx + dy * dy + a * a + b * b)

    def log_ratio(gap, r2_a, r2_b):
        return _stable_log_ratio(jnp.where(at_corner, r2_a - r2_b, gap), r2_a, r2_b)

    log_l = log_ratio(16.0 * a * b * dx * dy, r2_mp * r2_pm, r2_pp * r2_mm)
    log_dx = log_ratio(spread * a * dx, r2_mp * r2_mm, r2_pp * r2_pm)
    log_dy = log_ratio(spread * b * dy, r2_pm * r2_mm, r2_pp * r2_mp)

    ax_m, ax_p, ay_m, ay_p = jnp.abs(xm), jnp.abs(xp), jnp.abs(ym), jnp.abs(yp)
    sx_m, sx_p, sy_m, sy_p = sign(xm), sign(xp), sign(ym), sign(yp)
    angles = 0.0
    s_sum = 0.0
    w_sum = 0.0
    for abs_p, abs_q, sp, sq, weight in (
        (ax_m, ay_m, sx_m, sy_m, -1.0),  # (+a, +b)
        (ax_m, ay_p, sx_m, sy_p, 1.0),  # (+a, -b)
        (ax_p, ay_m, sx_p, sy_m, 1.0),  # (-a, +b)
        (ax_p, ay_p, sx_p, sy_p, -1.0),  # (-a, -b)
    ):
        t = angle_of(abs_q, abs_p)
        angles = angles + weight * (mx * abs_p * sq * t + my * abs_q * sp * (0.5 * math.pi - t))
        spq = weight * sp * sq
        s_sum = s_sum + spq * t
        w_sum = w_sum + spq
    logs = 0.5 * (mx * (dy * log_l - b * log_dx) + my * (dx * log_l - a * log_dy))
    winding = 0.5 * math.pi * w_sum
    phi = -_INV_2PI * (logs + angles)
    hx = _INV_2PI * mx * s_sum + _INV_4PI * my * log_l
    hy = _INV_4PI * mx * log_l + _INV_2PI * my * (winding - s_sum)
    return phi, hx, hy


def prism_multipoles(mx, my, a, b, order: int = MULTIPOLE_ORDER):
    """Complex multipole coefficients Q_k, k = 1..order, of a prism: shape (..., order).

    phi = (1/2pi) Re sum_k Q_k / (k z^k) and hx - i hy = (1/2pi) sum_k Q_k / z^(k+1), z = dx + i dy,
    with Q_k = sum_faces sigma_f e_f (z2^(k+1) - z1^(k+1)) / (k+1) (e_f = |z2-z1|/(z2-z1)), exact
    integrals of the face charges. Q_1 = 4ab (mx + i my) is the dipole moment.
    """
    a = jnp.asarray(a)[..., None]
    b = jnp.asarray(b)[..., None]
    mx = jnp.asarray(mx)[..., None]
    my = jnp.asarray(my)[..., None]
    k = jnp.arange(1, order + 1, dtype=jnp.float64)
    corners = {
        "pp": a + 1j * b, "pm": a - 1j * b, "mp": -a + 1j * b, "mm": -a - 1j * b,
    }

    def face(sigma, z1, z2):
        edge = z2 - z1
        unit = jnp.abs(edge) / edge
        return sigma * unit * (z2 ** (k + 1) - z1 ** (k + 1)) / (k + 1)

    return (
        face(mx, corners["pm"], corners["pp"])  # x = +a, charge +mx
        + face(-mx, corners["mp"], corners["mm"])  # x = -a, charge -mx
        + face(my, corners["pp"], corners["mp"])  # y = +b, charge +my
        + face(-my, corners["mm"], corners["pm"])  # y = -b, charge -my
    )


def multipole_pair(dx, dy, coefficients):
    """Far-field series of a 2D source from its multipole coefficients (..., order): (phi, hx, hy).

    Horner in w = 1/z over the (static) order, so a pair costs about 8 * order flops.
    """
    z = dx + 1j * dy
    w = 1.0 / z
    order = coefficients.shape[-1]
    potential_series = 0.0
    field_series = 0.0
    for k in range(order, 0, -1):
        q = coefficients[..., k - 1]
        potential_series = (potential_series + q / k) * w
        field_series = (field_series + q) * w
    field_series = field_series * w
    phi = _INV_2PI * jnp.real(potential_series)
    hx = _INV_2PI * jnp.real(field_series)
    hy = -_INV_2PI * jnp.imag(field_series)
    return phi, hx, hy


def prism_pair(dx, dy, mx, my, a, b, coefficients, any_far=True):
    """Prism of half-sides (a, b): the closed form near the source, the multipole series far away.

    ``coefficients`` are :func:`prism_multipoles` of the same source. ``any_far=False`` (a static
    promise that no pair is far) skips the series.
    """
    near = prism_near(dx, dy, mx, my, a, b)
    if not any_far:
        return near
    far = dx * dx + dy * dy > (FAR_RATIO * FAR_RATIO) * (a * a + b * b)
    safe_dx = jnp.where(far, dx, 1.0)
    safe_dy = jnp.where(far, dy, 0.0)
    series = multipole_pair(safe_dx, safe_dy, coefficients)
    return tuple(jnp.where(far, s, n) for s, n in zip(series, near))


class Prism(BoxShape):
    name = "prism"
    code = 1
    dim = 2
    constructor = "prisms"
    far_ratio = FAR_RATIO
    singular_set = "a corner of a prism"

    def prepare(self, magnetisations, half_sizes):
        mx, my = magnetisations[..., 0], magnetisations[..., 1]
        a, b = half_sizes[..., 0], half_sizes[..., 1]
        return mx, my, a, b, prism_multipoles(mx, my, a, b)

    def pair(self, dx, dy, mx, my, a, b, coefficients, any_far=True):
        return prism_pair(dx, dy, mx, my, a, b, coefficients, any_far=any_far)

    # -- references: a long cuboid along z --------------------------------------------------------
    def reference_radius(self, sizes):
        return np.hypot(sizes[:, 0], sizes[:, 1]) / 2

    def reference_hazard(self, offsets, sizes):
        """Squared distance to the nearest corner: the long magnet's rounding grows like
        eps (L / rho)^2 there."""
        half = sizes / 2
        rho2 = np.full(offsets.shape[0], np.inf)
        for sx in (1.0, -1.0):
            for sy in (1.0, -1.0):
                rho2 = np.minimum(rho2, (offsets[:, 0] - sx * half[:, 0]) ** 2 + (offsets[:, 1] - sy * half[:, 1]) ** 2)
        return rho2

    def magpylib_field(self, func, observers, sizes, polarisations, lengths):
        dims = np.column_stack([sizes[:, 0], sizes[:, 1], lengths])
        return func.cuboid_field("H", observers, dims, polarisations, squeeze=False)

    def magpylib_magnet(self, magnet, size, magnetisation, length):
        return magnet.Cuboid(dimension=(size[0], size[1], length), magnetization=magnetisation)

    def magtense_sides(self, size, length):
        return [float(size[0]), float(size[1]), float(length)]
