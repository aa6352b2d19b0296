"""Closed-form pair kernels of the 3D families (see ``_kernels2d`` for the conventions).

Cuboid: the potential of the face charges sigma = M.n, integrated in closed form. With offsets
U, V, W from the point to a corner (U = sx a - x, ...), corner sign s = sx sy sz and r = |(U,V,W)|,
    phi = (1/4pi) sum_corners s [ mx Phi(V, W; U) + my Phi(U, W; V) + mz Phi(U, V; W) ],
    Phi(P, Q; N) = P ln(Q + r) + Q ln(P + r) - N atan(P Q / (N r)),
and H = -grad(phi) in closed form (the demagnetisation tensor of Aharoni 1998, symmetric):
    hx = (1/4pi) sum s [ -mx atan(V W / (U r)) + my ln(W + r) + mz ln(V + r) ]   (and cyclically).
Terms that do not depend on one of the in-plane offsets cancel in the alternating sum, so each
log may be replaced by a rearranged one: ln(Q + r) = ln(P^2 + N^2) - ln(r - Q) for Q < 0 avoids
the cancellation of r and -Q. Singular terms on the extension of an edge cancel in pairs and are
dropped; on a face the atan term is taken as 0 (the mean of both sides).

Sphere: outside a 3D dipole of moment (4/3) pi R^3 M; inside phi = M.d / 3, H = -M/3.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

__all__ = ["cuboid_pair", "sphere_pair"]

_INV_4PI = 1.0 / (4.0 * math.pi)


def _safe_log(x):
    return jnp.log(jnp.where(x > 0.0, x, 1.0))


def _log_q_plus_r(p, q, n, r):
    """ln(q + r) for r = |(p, q, n)|, without cancellation; singular limits dropped (they cancel)."""
    forward = _safe_log(q + r)
    backward = _safe_log(p * p + n * n) - _safe_log(r - q)
    return jnp.where(q >= 0.0, forward, backward)


def _face_atan(p, q, n, r):
    """atan(p q / (n r)), and 0 in the plane n = 0 (the mean of the two sides)."""
    in_plane = n == 0.0
    return jnp.where(in_plane, 0.0, jnp.arctan(p * q / (jnp.where(in_plane, 1.0, n) * jnp.where(in_plane, 1.0, r))))


def cuboid_pair(dx, dy, dz, mx, my, mz, a, b, c):
    """Axis-aligned cuboid of half-sides (a, b, c): returns (phi, hx, hy, hz)."""
    phi = hx = hy = hz = 0.0
    for sx in (1.0, -1.0):
        u = sx * a - dx
        for sy in (1.0, -1.0):
            v = sy * b - dy
            for sz in (1.0, -1.0):
                w = sz * c - dz
                sign = sx * sy * sz
                r = jnp.sqrt(u * u + v * v + w * w)
                ln_u = _log_q_plus_r(v, u, w, r)  # ln(u + r)
                ln_v = _log_q_plus_r(u, v, w, r)  # ln(v + r)
                ln_w = _log_q_plus_r(u, w, v, r)  # ln(w + r)
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


def sphere_pair(dx, dy, dz, mx, my, mz, radius):
    """Sphere of radius R: returns (phi, hx, hy, hz); on the surface the field is the mean of both limits."""
    d2 = dx * dx + dy * dy + dz * dz
    r2 = radius * radius
    inside = d2 < r2
    on_surface = d2 == r2
    md = mx * dx + my * dy + mz * dz
    safe_d2 = jnp.where(inside, 1.0, d2)
    inv_d3 = 1.0 / (safe_d2 * jnp.sqrt(safe_d2))
    scale = jnp.where(inside, 1.0, r2 * radius * inv_d3)  # R^3/|d|^3 outside, 1 inside
    phi = md * scale / 3.0
    radial = jnp.where(inside, 0.0, jnp.where(on_surface, 0.5, 1.0) * scale * md / safe_d2)
    return (
        phi,
        radial * dx - scale * mx / 3.0,
        radial * dy - scale * my / 3.0,
        radial * dz - scale * mz / 3.0,
    )
