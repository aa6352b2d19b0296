"""Prism multipoles of the corrected FMM, carried as a ring of point dipoles per prism.

A prism is only approximately a point dipole outside its near zone; the FMM sums point dipoles, so
its higher multipoles Q_3, Q_5, ... are handed to it as a ring of dipoles on the prism's
circumscribed circle that reproduces them exactly (``prism_ring``). The ring size follows from
the requested accuracy and the near-zone size (``ring_size``), or from an explicit order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["MAX_RING", "Rings", "build_rings", "prism_ring", "ring_size_for"]

#: Target accuracy of the prism multipoles the corrected variant hands to the FMM, per iprec
#: (about the FMM's own measured accuracy, so the truncation does not dominate).
_MULTIPOLE_TOLERANCE = {-2: 1e-1, -1: 1e-2, 0: 1e-3, 1: 1e-5, 2: 1e-9, 3: 1e-12, 4: 1e-15, 5: 1e-16}
#: Largest ring (and so the largest ``prism_order``) handed to the FMM.
MAX_RING = 256


def _ring_size(ratio: float, tolerance: float) -> int:
    """Ring dipoles per prism so that the first unmatched multipole, ~ratio^n relative to the dipole
    at the edge of the near zone, is below tolerance (0: the point dipole is enough)."""
    if ratio <= 0:
        return 0
    # Relative size of the k-th term at the edge of the near zone: c_k ratio^(k-1), with
    # c_k = |Q_k| / (k r^(k-1) |Q_1|) <= ~1/k for rectangles of any aspect (0.33 at k = 3).
    needed = math.ceil(math.log(tolerance / 0.35) / math.log(ratio))
    if needed <= 2:  # a centred rectangle has no quadrupole: the dipole is good to ratio^2
        return 0
    return needed + needed % 2


def _order_to_ring(order: int) -> int:
    """Ring size that carries a prism's multipoles up to ``order`` (odd orders are the non-zero ones)."""
    if order <= 2:
        return 0
    return order + order % 2


class Rings(NamedTuple):
    """The ring dipoles of the prisms: moments and absolute positions (Kp, n) complex, radius (Kp,),
    and ``row`` (K,): each source's row here, -1 for discs."""

    moments: np.ndarray
    positions: np.ndarray
    radius: np.ndarray
    row: np.ndarray

    @property
    def size(self) -> int:
        return self.moments.shape[1]

    def as_dipoles(self) -> tuple[np.ndarray, np.ndarray]:
        """Every ring dipole as the FMM takes it: positions (Kp n, 2) and complex moments (Kp n,)."""
        positions = np.stack([self.positions.real.ravel(), self.positions.imag.ravel()], axis=1)
        return positions, self.moments.ravel()


def _ring_phase(a, b, size: int) -> np.ndarray:
    """Angular offset of each prism's ring that keeps its dipoles as far as possible (at least a
    quarter of their spacing) from the corners, which lie on the same circle at +-alpha and
    pi +- alpha (the ring is symmetric under a half turn)."""
    step = math.tau / size
    alpha = np.arctan2(b, a)
    low, high = np.sort(np.stack([np.mod(alpha, step), np.mod(-alpha, step)]), axis=0)
    inner = high - low
    return np.mod(np.where(inner >= step - inner, 0.5 * (low + high), 0.5 * (high + low + step)), step)


def prism_ring(centers, magnetisations, half_sizes, size: int):
    """Ring dipoles on each prism's circumscribed circle that, together with the central dipole
    Q_1, reproduce the prism's multipoles Q_1..Q_n exactly (n = size, even).

    With phi = (1/2pi) Re sum_k Q_k / (k z^k) (``fieldbench.families.prism.prism_multipoles``) and ring points
    w_j = rho e^{i theta0} w^j (w = e^{2 pi i/n}), the moments P_j solve
    sum_j P_j w^{jm} = S_m = Q_{m+1} / ((m+1) rho^m e^{i m theta0}) for m = 0..n-1, with S_0 = 0
    (the central dipole carries Q_1) and S_m = 0 for odd m (even Q_k vanish for a centred
    rectangle): P = fft(S) / n. The first unmatched order is Q_{n+1}. Returns moments and
    absolute positions (Kp, n) and the radius (Kp,).
    """
    mx, my = magnetisations[:, 0], magnetisations[:, 1]
    a, b = half_sizes[:, 0], half_sizes[:, 1]
    rho = np.hypot(a, b)
    scale = 1.0 / rho
    pp, pm = (a + 1j * b) * scale, (a - 1j * b) * scale
    mp, mm = (-a + 1j * b) * scale, (-a - 1j * b) * scale
    m = np.arange(size)
    power = (m + 2)[None, :]

    def face(sigma, z1, z2):  # sigma e (z2^(m+2) - z1^(m+2)) in unit-circle coordinates
        edge = z2 - z1
        unit = np.abs(edge) / edge
        return (sigma * unit)[:, None] * (z2[:, None] ** power - z1[:, None] ** power)

    total = face(mx, pm, pp) + face(-mx, mp, mm) + face(my, pp, mp) + face(-my, mm, pm)
    theta0 = _ring_phase(a, b, size)
    spectrum = (rho * rho)[:, None] * total * np.exp(-1j * m[None, :] * theta0[:, None]) / ((m + 1) * (m + 2))
    spectrum[:, (m == 0) | (m % 2 == 1)] = 0.0
    moments = np.fft.fft(spectrum, axis=1) / size
    angles = theta0[:, None] + (math.tau / size) * m[None, :]
    positions = (centers[:, 0] + 1j * centers[:, 1])[:, None] + rho[:, None] * np.exp(1j * angles)
    # These float64 positions are what the FMM gets, and the local correction subtracts the ring at
    # exactly them: recomputing them from the centre would round differently, which near a ring
    # dipole (next to a corner) leaves a visible residue.
    return moments, positions, rho


def ring_size_for(half, longest, is_prism, *, iprec: int, near: float, prism_order: int | None) -> int:
    """Ring dipoles per prism for the corrected variant (0: the central point dipole suffices).

    ``prism_order`` None: enough that the first unmatched multipole, at the edge of the smallest
    near zone relative to its size, is below the FMM's accuracy at ``iprec``; ValueError if that
    needs more than ``MAX_RING``. Otherwise the ring that carries the multipoles up to that order.
    """
    if prism_order is not None:
        return _order_to_ring(int(prism_order))
    radius = np.hypot(half[is_prism, 0], half[is_prism, 1])
    ratio = float(np.max(radius / (radius + near * longest[is_prism])))
    size = _ring_size(ratio, _MULTIPOLE_TOLERANCE[iprec])
    if size > MAX_RING:
        raise ValueError(f"near={near} is too small for iprec={iprec}: the prisms would need {size} multipoles "
                         "in the FMM; increase near (e.g. 1.0)")
    return size


def build_rings(centers, magnetisations, half, is_prism, size: int) -> Rings:
    """The rings of ``size`` dipoles of every prism (``is_prism``) of the sources."""
    row = np.full(len(centers), -1, np.int64)
    row[is_prism] = np.arange(int(is_prism.sum()))
    return Rings(*prism_ring(centers[is_prism], magnetisations[is_prism], half[is_prism], size), row=row)
