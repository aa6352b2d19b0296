"""Closed-form pair kernels of the 2D families: one source, one point, elementwise.

Every kernel takes the offset of the point from the source centre, (dx, dy), the magnetisation
(mx, my) and the source's size, all broadcastable float64 arrays, and returns the potential phi
and the field (hx, hy) with H = -grad(phi) (PHYSICS.md conventions: H in the units of M). The
kernels are pure ``jax.numpy`` so that XLA fuses them into the direct sum of ``_direct``.

Values on a boundary (a disc's rim, a prism's face) are the mean of the inside and outside limits,
i.e. the principal value. Exactly at a prism corner, phi is finite and exact, but the field
diverges logarithmically; the kernel then drops the divergent log of that corner (a finite part,
not a physical value) and the functional layer refuses such points unless asked not to.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

__all__ = ["disc_pair", "prism_pair", "prism_multipoles", "FAR_RATIO", "MULTIPOLE_ORDER"]

_INV_2PI = 1.0 / (2.0 * math.pi)
_INV_4PI = 1.0 / (4.0 * math.pi)

#: A point is "far" from a prism when |d| > FAR_RATIO * half-diagonal; there the closed form's face
#: terms cancel (about two digits lost per decade) and the multipole series is used instead.
FAR_RATIO = 6.0
#: Order of that series; the truncation error is below FAR_RATIO ** -MULTIPOLE_ORDER ~ 1e-17.
MULTIPOLE_ORDER = 22


def disc_pair(dx, dy, mx, my, radius):
    """Disc of radius R (an infinite cylinder): returns (phi, hx, hy).

    Outside: phi = R^2 (M.d) / (2|d|^2), a 2D dipole of moment pi R^2 M; inside: phi = (M.d)/2 and
    H = -M/2. On the rim |d| = R the field is the mean of both limits.
    """
    d2 = dx * dx + dy * dy
    r2 = radius * radius
    inside = d2 < r2
    on_rim = d2 == r2
    md = mx * dx + my * dy
    # Guarded reciprocal: the inside branch never divides, so no inf/NaN reaches autodiff.
    inv_d2 = 1.0 / jnp.where(inside, 1.0, d2)
    scale = jnp.where(inside, 1.0, r2 * inv_d2)  # R^2/|d|^2 outside, 1 inside
    phi = 0.5 * md * scale
    radial = jnp.where(inside, 0.0, jnp.where(on_rim, 0.5, 1.0) * scale * md * inv_d2)
    hx = radial * dx - 0.5 * scale * mx
    hy = radial * dy - 0.5 * scale * my
    return phi, hx, hy


def _sign(v):
    return jnp.sign(v)


def prism_near(dx, dy, mx, my, a, b):
    """Closed form of an axis-aligned prism with half-sides (a, b): returns (phi, hx, hy).

    Written over the four corners c = (+-a, +-b) with p = dx - cx, q = dy - cy and the corner
    weight s_c = -sign(cx) sign(cy), so that each corner needs one log and one atan2:
      phi = -(1/2pi) sum_c s_c [ mx G_I + my G_J ],
        G_I = (q/2) ln(p^2+q^2) + |p| sgn(q) t,   G_J = (p/2) ln(p^2+q^2) + |q| sgn(p) (pi/2 - t),
        t = atan2(|q|, |p|);
      hx = (mx/2pi) S + (my/4pi) L,   hy = (mx/4pi) L + (my/2pi) (W - S),
        S = sum_c s_c sgn(p) sgn(q) t,  W = (pi/2) sum_c s_c sgn(p) sgn(q)  (-2pi inside, 0 outside),
        L = sum_c s_c ln(p^2+q^2), evaluated as log1p(16 a b dx dy / (r2(a,b) r2(-a,-b))) where
        that is stable (the four logs cancel far from the source).
    These are PHYSICS.md's face formulas regrouped by corner; sgn(0) = 0 gives the principal value
    on faces.
    """
    phi = 0.0
    s_sum = 0.0
    w_sum = 0.0
    log_sum = 0.0
    r2_pp = r2_mm = None
    for cx, cy, weight in ((1.0, 1.0, -1.0), (1.0, -1.0, 1.0), (-1.0, 1.0, 1.0), (-1.0, -1.0, -1.0)):
        p = dx - cx * a
        q = dy - cy * b
        r2 = p * p + q * q
        at_corner = r2 == 0.0
        log_r2 = jnp.log(jnp.where(at_corner, 1.0, r2))
        abs_p, abs_q = jnp.abs(p), jnp.abs(q)
        t = jnp.arctan2(abs_q, abs_p)
        sp, sq = _sign(p), _sign(q)
        g_i = 0.5 * q * log_r2 + abs_p * sq * t
        g_j = 0.5 * p * log_r2 + abs_q * sp * (0.5 * math.pi - t)
        phi = phi + weight * (mx * g_i + my * g_j)
        spq = weight * sp * sq
        s_sum = s_sum + spq * t
        w_sum = w_sum + spq
        log_sum = log_sum + weight * log_r2
        if weight < 0 and cx > 0:
            r2_pp = r2
        elif weight < 0:
            r2_mm = r2
    den = r2_pp * r2_mm
    ratio = 16.0 * a * b * dx * dy / jnp.where(den == 0.0, 1.0, den)
    stable = (jnp.abs(ratio) < 0.5) & (den != 0.0)
    log_term = jnp.where(stable, jnp.log1p(jnp.where(stable, ratio, 0.0)), log_sum)
    winding = 0.5 * math.pi * w_sum
    phi = -_INV_2PI * phi
    hx = _INV_2PI * mx * s_sum + _INV_4PI * my * log_term
    hy = _INV_4PI * mx * log_term + _INV_2PI * my * (winding - s_sum)
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
