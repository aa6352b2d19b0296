"""The cuboid: a uniformly magnetised axis-aligned box (3D).

The potential of the face charges sigma = M.n, integrated in closed form. With offsets
U, V, W from the point to a corner (U = sx a - x, ...), corner sign s = sx sy sz and r = |(U,V,W)|,
    phi = (1/4pi) sum_corners s [ mx Phi(V, W; U) + my Phi(U, W; V) + mz Phi(U, V; W) ],
    Phi(P, Q; N) = P ln(Q + r) + Q ln(P + r) - N atan(P Q / (N r)),
and H = -grad(phi) in closed form (the demagnetisation tensor of Aharoni 1998, symmetric):
    hx = (1/4pi) sum s [ -mx atan(V W / (U r)) + my ln(W + r) + mz ln(V + r) ]   (and cyclically).
Terms that do not depend on one of the in-plane offsets cancel in the alternating sum, so each
log may be replaced by a rearranged one: ln(Q + r) = ln(P^2 + N^2) - ln(r - Q) for Q < 0 avoids
the cancellation of r and -Q. On a face the atan term is taken as 0 (the mean of both sides).
On an edge (and at a corner) H diverges like ln(rho), rho the distance to the edge, while phi is
finite and exact (the singular logs come multiplied by zero offsets). The kernel then returns the
finite part of H (not a physical value; the functional layer refuses such points unless asked
for it): each divergent log evaluated as if its distance were L = max(a, b, c), the largest
half-side, and the atan terms at their mean over directions (0). On an edge that is the limit
rho -> 0 of the field averaged over a circle of radius rho around the edge with ln(rho) replaced
by ln(L); like the field itself it does not change with the unit of length. On the extension of an
edge the same singular logs appear in pairs of opposite sign and cancel.

Beyond ``FAR_RATIO`` half-diagonals :func:`cuboid_pair` switches to the multipole series of
``_cuboid_series`` (its docstring: the derivation and the measured accuracy).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ._base import BoxShape
from ._cuboid_series import FAR_RATIO, MULTIPOLE_ORDER, cuboid_far, cuboid_multipoles

__all__ = ["Cuboid", "cuboid_pair", "cuboid_near", "cuboid_far", "cuboid_multipoles", "FAR_RATIO", "MULTIPOLE_ORDER"]

_INV_4PI = 1.0 / (4.0 * math.pi)


def _safe_log(x, fallback):
    """ln(x), and ln(fallback) where x is 0 (a singular log: see the module docstring)."""
    return jnp.log(jnp.where(x > 0.0, x, fallback))


def _log_q_plus_r(p, q, n, r, size):
    """ln(q + r) for r = |(p, q, n)|, without cancellation. Where it diverges (on an edge or at a
    corner) the distance in it is taken as ``size`` (L of the module docstring)."""
    forward = _safe_log(q + r, size)  # 0 only at a corner
    backward = _safe_log(p * p + n * n, size * size) - _safe_log(r - q, size)  # on an edge: rho^2
    return jnp.where(q >= 0.0, forward, backward)


def _face_atan(p, q, n, r):
    """atan(p q / (n r)), and 0 in the plane n = 0 (the mean of the two sides)."""
    in_plane = n == 0.0
    return jnp.where(in_plane, 0.0, jnp.arctan(p * q / (jnp.where(in_plane, 1.0, n) * jnp.where(in_plane, 1.0, r))))


def cuboid_near(dx, dy, dz, mx, my, mz, a, b, c):
    """Closed form of an axis-aligned cuboid of half-sides (a, b, c): returns (phi, hx, hy, hz)."""
    phi = hx = hy = hz = 0.0
    size = jnp.maximum(jnp.maximum(a, b), c)
    for sx in (1.0, -1.0):
        u = sx * a - dx
        for sy in (1.0, -1.0):
            v = sy * b - dy
            for sz in (1.0, -1.0):
                w = sz * c - dz
                sign = sx * sy * sz
                r = jnp.sqrt(u * u + v * v + w * w)
                ln_u = _log_q_plus_r(v, u, w, r, size)  # ln(u + r)
                ln_v = _log_q_plus_r(u, v, w, r, size)  # ln(v + r)
                ln_w = _log_q_plus_r(u, w, v, r, size)  # ln(w + r)
                at_u = _face_atan(v, w, u, r)
                at_v = _face_atan(u, w, v, r)
                at_w = _face_atan(u, v, w, r)
                phi = phi + sign * (
                    mx * (v * ln_w + w * ln_v - u * at_u)
                    + my * (u * ln_w + w * ln_u - v * at_v)
                    + mz * (u * ln_v + v * ln_u - w * at_w)
                )
                hx = hx + sign * (-mx * at_u + my * ln_w + mz * ln_v)
                hy = hy + sign * (mx * ln_w - my * at_v + mz * ln_u)
                hz = hz + sign * (mx * ln_v + my * ln_u - mz * at_w)
    return _INV_4PI * phi, _INV_4PI * hx, _INV_4PI * hy, _INV_4PI * hz


def cuboid_pair(dx, dy, dz, mx, my, mz, a, b, c, coefficients=None, any_far=True):
    """Cuboid of half-sides (a, b, c): returns (phi, hx, hy, hz).

    The closed form (:func:`cuboid_near`) for |d| <= FAR_RATIO * half-diagonal, the multipole series
    (:func:`cuboid_far`) beyond. ``coefficients`` are :func:`cuboid_multipoles` of the same source
    (computed here when omitted). ``any_far=False`` (a static promise that no pair is far) skips
    the series.
    """
    near = cuboid_near(dx, dy, dz, mx, my, mz, a, b, c)
    if not any_far:
        return near
    if coefficients is None:
        coefficients = cuboid_multipoles(a, b, c)
    far = dx * dx + dy * dy + dz * dz > (FAR_RATIO * FAR_RATIO) * (a * a + b * b + c * c)
    # The series guards its own inputs (a clamped distance, no select): replacing the offsets of the
    # pairs that are not far by a parking point with one select per component is fragile, since XLA
    # may recompute ``far`` in several fusions, rounded differently (FMA contraction), and a point
    # within an ulp of the switch then got mixed components, e.g. (dx, 0, 0) inside the box.
    series = cuboid_far(dx, dy, dz, mx, my, mz, a, b, c, coefficients)
    return tuple(jnp.where(far, s, n) for s, n in zip(series, near))


class Cuboid(BoxShape):
    name = "cuboid"
    code = 2
    dim = 3
    constructor = "cuboids"
    far_ratio = FAR_RATIO
    singular_set = "an edge or corner of a cuboid"

    def prepare(self, magnetisations, half_sizes):
        a, b, c = (half_sizes[..., i] for i in range(3))
        return tuple(magnetisations[..., i] for i in range(3)) + (a, b, c, cuboid_multipoles(a, b, c))

    def pair(self, dx, dy, dz, mx, my, mz, a, b, c, coefficients=None, any_far=True):
        return cuboid_pair(dx, dy, dz, mx, my, mz, a, b, c, coefficients, any_far=any_far)

    def magpylib_field(self, func, observers, sizes, polarisations, lengths):
        return func.cuboid_field("H", observers, sizes, polarisations, squeeze=False)

    def magpylib_magnet(self, magnet, size, magnetisation, length):
        return magnet.Cuboid(dimension=size, magnetization=magnetisation)

    def magtense_sides(self, size, length):
        return [float(v) for v in size]
