"""The cuboid's far field: an exact multipole series beyond ``FAR_RATIO`` half-diagonals.

Far from the cuboid the corner terms of the closed form are O(1) (phi: O(r)) while
phi = O((size/r)^2) and H = O((size/r)^3), so the closed form loses about three digits per decade
of distance (measured against 40-digit arithmetic, max relative error of H for a 2 x 1.2 x 0.7
cuboid: 2.8e-9 at 50 sizes, 2.1e-7 at 200). Beyond ``FAR_RATIO`` half-diagonals
``cuboid.cuboid_pair`` switches to this series,
    phi = -M . grad(psi),  H = -grad(phi) = Hess(psi) M,  psi(r) = (1/4pi) int_box dV' / |r - r'|.
Expanding 1/|r - r'| in r' about the centre, only even moments of the centred box survive:
    psi = (V/4pi) sum_{n <= N} sum_{i+j+k=n} mu_ijk d_x^2i d_y^2j d_z^2k (1/r) / ((2i)! (2j)! (2k)!),
    mu_ijk = a^2i b^2j c^2k / ((2i+1)(2j+1)(2k+1))   (the box's moments over its volume V = 8abc).
With d^alpha (1/r) = P_alpha(x, y, z) / r^(2|alpha|+1), P_(alpha+e) = r^2 d_e P_alpha - (2|alpha|+1) x_e P_alpha
(P_alpha has only even powers here), the whole series is one polynomial of total degree N,
    psi = (V/4pi) Q(xi, eta, zeta) / r,   xi = h^2 x^2 / r^4, eta = h^2 y^2 / r^4, zeta = h^2 z^2 / r^4,
h the half-diagonal (xi + eta + zeta = (h/r)^2 <= FAR_RATIO^-2), whose dimensionless coefficients
(``cuboid_multipoles``, 165 at N = 8) are computed once per source. phi and H are its first and
second derivatives, in closed form through the Kelvin-inverted point (``cuboid_far``); one Horner
pass gives Q and the derivatives it needs, about 850 multiply-adds per pair. The first omitted term
is O((h/r)^(2N+2)) relatively: with FAR_RATIO = 8 and N = 8 the series is good to ~1e-15 (phi and H,
measured against 40 digits) from the switch on, to any distance, also for needles and plates; the
closed form is within ~1e-12 at the switch (H; phi: 1.3e-12 of |M| V / (4pi r^2)).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax.numpy as jnp
import numpy as np

__all__ = ["cuboid_far", "cuboid_multipoles", "FAR_RATIO", "MULTIPOLE_ORDER"]

_INV_4PI = 1.0 / (4.0 * math.pi)

#: A point is "far" from a cuboid when |d| > FAR_RATIO * half-diagonal. Up to there the closed form
#: stays within ~1e-12 relative for boxes of moderate aspect ratio (H; phi: ~1e-12 of the dipole
#: scale |M| V / (4pi r^2), ~1e-11 pointwise except where phi nearly vanishes); it cancels sooner
#: near needles and thin plates (~1e-8 at the switch for a 100:1 needle), whose thin side sets the
#: scale. Beyond, the series keeps full precision (~1e-15) at any distance.
FAR_RATIO = 8.0
#: Even orders of the series of psi (its degree in 1/r is 2N + 1; phi keeps multipoles up to degree
#: 2N + 1): truncation below FAR_RATIO ** -(2 N + 2) = 5.6e-17 times a shape factor of order one.
MULTIPOLE_ORDER = 8
#: Below this many half-diagonals :func:`cuboid_far` clamps the distance (finite garbage, never
#: selected: the switch is at FAR_RATIO, well above, whatever the rounding of the test).
_GUARD_RATIO = 0.5 * FAR_RATIO


def _terms(order: int) -> tuple:
    """Exponent triples (p, q, t), p + q + t <= order, by total degree."""
    return tuple((i, j, n - i - j) for n in range(order + 1) for i in range(n, -1, -1) for j in range(n - i, -1, -1))


@functools.cache
def _series_table(order: int):
    """The exact linear map from a box's scaled moments to the coefficients of Q (module docstring).

    Returns (terms, table): ``terms = _terms(order)`` orders both the moments (i, j, k) and the
    monomials xi^p eta^q zeta^t; row (i, j, k) of ``table`` holds the coefficients of
    d_x^2i d_y^2j d_z^2k (1/r) r^(4n+1) h^-2n / ((2i)! (2j)! (2k)! (2i+1)(2j+1)(2k+1)), n = i+j+k.
    Exact integer/rational arithmetic, rounded once to float64.
    """
    terms = _terms(order)
    position = {term: row for row, term in enumerate(terms)}
    # P[alpha] as {exponents: integer coefficient}, d^alpha (1/r) = P_alpha / r^(2|alpha|+1).
    polys = {(0, 0, 0): {(0, 0, 0): 1}}
    for total in range(1, 2 * order + 1):
        for i in range(total + 1):
            for j in range(total + 1 - i):
                alpha = (i, j, total - i - j)
                axis = next(e for e in range(3) if alpha[e] > 0)
                previous = tuple(v - (e == axis) for e, v in enumerate(alpha))
                grown: dict = {}
                for exps, coef in polys[previous].items():
                    if exps[axis]:  # r^2 d_axis P
                        lowered = tuple(v - (e == axis) for e, v in enumerate(exps))
                        for other in range(3):
                            key = tuple(v + 2 * (e == other) for e, v in enumerate(lowered))
                            grown[key] = grown.get(key, 0) + coef * exps[axis]
                    key = tuple(v + (e == axis) for e, v in enumerate(exps))  # - (2|alpha| - 1) x_axis P
                    grown[key] = grown.get(key, 0) - (2 * total - 1) * coef
                polys[alpha] = {k: v for k, v in grown.items() if v}
    table = np.zeros((len(terms), len(terms)))
    for row, (i, j, k) in enumerate(terms):
        weight = Fraction(1, math.factorial(2 * i) * math.factorial(2 * j) * math.factorial(2 * k)
                          * (2 * i + 1) * (2 * j + 1) * (2 * k + 1))
        exact: dict = {}
        for exps, coef in polys[(2 * i, 2 * j, 2 * k)].items():
            monomial = (exps[0] // 2, exps[1] // 2, exps[2] // 2)
            exact[monomial] = exact.get(monomial, 0) + weight * coef
        for monomial, value in exact.items():
            table[row, position[monomial]] = float(value)
    return terms, table


def cuboid_multipoles(a, b, c, order: int = MULTIPOLE_ORDER):
    """Far-field coefficients of cuboids with half-sides (a, b, c): shape (..., n), n = 165 for order 8.

    The coefficients of Q (module docstring) over ``_terms(order)``, including the factor V / 4pi
    (units of volume), so that psi = Q(xi, eta, zeta) / r. Computed once per source (``_direct``'s
    ``prepare``).
    """
    a, b, c = (jnp.asarray(v, dtype=jnp.float64) for v in (a, b, c))
    h2 = a * a + b * b + c * c
    inv_h2 = 1.0 / jnp.where(h2 > 0.0, h2, 1.0)
    terms, table = _series_table(order)
    powers = []
    for ratio in (a * a * inv_h2, b * b * inv_h2, c * c * inv_h2):
        column = [jnp.ones_like(ratio)]
        for _ in range(order):
            column.append(column[-1] * ratio)
        powers.append(column)
    moments = jnp.stack([powers[0][i] * powers[1][j] * powers[2][k] for i, j, k in terms], axis=-1)
    volume = 8.0 * a * b * c
    return (_INV_4PI * volume)[..., None] * (moments @ jnp.asarray(table))


def _fma(acc, x, add):
    """acc * x + add, where None stands for an exact zero (skipped, not computed)."""
    if acc is None:
        return add
    return acc * x if add is None else acc * x + add


def _series_with_derivatives(xi, eta, zeta, coefficients, order):
    """Q and the derivatives the field needs: (Q, Q_x, Q_y, Q_z, Q_xy, Q_xz, Q_yz, Q_xx, Q_yy).

    Subscripts are derivatives in xi, eta, zeta. Nested Horner (xi innermost) that carries Taylor
    coefficients along: every coefficient of Q is loaded once (memory traffic, not flops, limits a
    fused direct sum), and the whole costs about 750 multiply-adds at order 8.
    """
    position = {term: row for row, term in enumerate(_terms(order))}
    q0 = q_z = qx0 = qx_z = qy0 = qy_z = q_xy = q_xx = q_yy = None  # over zeta
    for t in range(order, -1, -1):
        a0 = a1 = a2 = ax0 = ax1 = axx = None  # over eta
        for q in range(order - t, -1, -1):
            b0 = b1 = b2 = None  # over xi: B, B', B''/2
            for p in range(order - t - q, -1, -1):
                b2 = _fma(b2, xi, b1)
                b1 = _fma(b1, xi, b0)
                b0 = _fma(b0, xi, coefficients[..., position[(p, q, t)]])
            a2 = _fma(a2, eta, a1)  # d_eta^2 / 2
            a1 = _fma(a1, eta, a0)  # d_eta
            a0 = _fma(a0, eta, b0)
            ax1 = _fma(ax1, eta, ax0)  # d_xi d_eta
            ax0 = _fma(ax0, eta, b1)  # d_xi
            axx = _fma(axx, eta, b2)  # d_xi^2 / 2
        q_z = _fma(q_z, zeta, q0)
        q0 = _fma(q0, zeta, a0)
        qx_z = _fma(qx_z, zeta, qx0)
        qx0 = _fma(qx0, zeta, ax0)
        qy_z = _fma(qy_z, zeta, qy0)
        qy0 = _fma(qy0, zeta, a1)
        q_xy = _fma(q_xy, zeta, ax1)
        q_xx = _fma(q_xx, zeta, axx)
        q_yy = _fma(q_yy, zeta, a2)
    zero = jnp.zeros_like(q0)
    values = (q0, qx0, qy0, q_z, q_xy, qx_z, qy_z, q_xx, q_yy)
    values = tuple(zero if v is None else v for v in values)
    return values[:7] + (2.0 * values[7], 2.0 * values[8])


def cuboid_far(dx, dy, dz, mx, my, mz, a, b, c, coefficients, order: int = MULTIPOLE_ORDER):
    """Far-field series of a cuboid: returns (phi, hx, hy, hz).

    Valid (to ~1e-15) for |d| > FAR_RATIO * half-diagonal h; ``coefficients`` from
    :func:`cuboid_multipoles`. Elementwise. Nearer than ``_GUARD_RATIO * h`` the distance is clamped
    to that radius: meaningless values there, but finite, with finite derivatives, for every offset
    (the source centre included), so that the series can sit in the unselected branch of a select
    without inf/NaN, also under autodiff. With the Kelvin-inverted point
    y = h d / |d|^2 (so xi, eta, zeta = y^2, t = |y|^2 = h^2/r^2), psi = K(y) / r where K(y) = Q(y^2)
    is a harmonic polynomial, and for any A(y): grad_d (A / r) = (t grad_y A - y (A + 2 y.grad_y A)) / (h r).
    Hence, with g = grad_y K and the Hessian K'' of K (its zz entry from K'' being traceless),
        M.grad(psi) = B / (h r),        B = t (m.g) - (m.y) S,   S = K + 2 y.g,
        H = grad(M.grad psi) = (t grad B - y (B + 2 y.grad B)) / (h^2 r),
        grad B = 2 y (m.g) + t K'' m - m S - (m.y) (3 g + 2 K'' y),
    and phi = -B / (h r). About 850 multiply-adds per pair at order 8.
    """
    h2 = a * a + b * b + c * c
    h = jnp.sqrt(h2)
    floor = jnp.where(h2 > 0.0, (_GUARD_RATIO * _GUARD_RATIO) * h2, 1.0)
    inv_r2 = 1.0 / jnp.maximum(dx * dx + dy * dy + dz * dz, floor)
    rho = jnp.sqrt(inv_r2)
    scale = h * inv_r2
    y = (dx * scale, dy * scale, dz * scale)
    xi, eta, zeta = (v * v for v in y)
    t = xi + eta + zeta
    values = _series_with_derivatives(xi, eta, zeta, coefficients, order)
    q, q_x, q_y, q_z, q_xy, q_xz, q_yz, q_xx, q_yy = values
    k = q
    g = (2.0 * y[0] * q_x, 2.0 * y[1] * q_y, 2.0 * y[2] * q_z)
    k_xx = 2.0 * q_x + 4.0 * xi * q_xx
    k_yy = 2.0 * q_y + 4.0 * eta * q_yy
    k_zz = -(k_xx + k_yy)  # K is harmonic
    k_xy = 4.0 * y[0] * y[1] * q_xy
    k_xz = 4.0 * y[0] * y[2] * q_xz
    k_yz = 4.0 * y[1] * y[2] * q_yz
    hessian = ((k_xx, k_xy, k_xz), (k_xy, k_yy, k_yz), (k_xz, k_yz, k_zz))
    m = (mx, my, mz)
    m_g = sum(mi * gi for mi, gi in zip(m, g))
    m_y = sum(mi * yi for mi, yi in zip(m, y))
    y_g = sum(yi * gi for yi, gi in zip(y, g))
    s = k + 2.0 * y_g
    big_b = t * m_g - m_y * s
    grad_b = [
        2.0 * y[i] * m_g + t * sum(hessian[i][j] * m[j] for j in range(3)) - m[i] * s
        - m_y * (3.0 * g[i] + 2.0 * sum(hessian[i][j] * y[j] for j in range(3)))
        for i in range(3)
    ]
    y_grad_b = sum(yi * gb for yi, gb in zip(y, grad_b))
    inv_h = 1.0 / jnp.where(h2 > 0.0, h, 1.0)
    phi = -big_b * rho * inv_h
    weight = rho * inv_h * inv_h
    radial = big_b + 2.0 * y_grad_b
    return (phi,) + tuple(weight * (t * grad_b[i] - y[i] * radial) for i in range(3))
