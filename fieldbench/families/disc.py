"""The disc: a uniformly magnetised infinite circular cylinder along z (2D, fields per unit length).

Closed form (docs/physics.md): outside phi = R^2 (M.d) / (2|d|^2), a 2D dipole of moment pi R^2 M;
inside phi = (M.d)/2 and H = -M/2. On the rim the field is the mean of both limits.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._base import RoundShape

__all__ = ["Disc", "disc_pair"]

# MagTense integrates its cylinder numerically: within this fraction of R from the rim it is
# unreliable (4e-8 at 1e-4 R, 0.3 at 1e-5 R); on and near the axis it returns NaN or loses digits,
# so points within _MAGTENSE_AXIS_ZONE R of the axis are averaged over a circle of radius
# _MAGTENSE_AXIS_RING R (exact: the extrapolated 2D field is harmonic, and uniform inside a disc).
_MAGTENSE_RIM_GUARD = 2e-4
_MAGTENSE_AXIS_ZONE = 0.1
_MAGTENSE_AXIS_RING = 0.2


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
    # Outside, with q2 = R^2 / |d|^2:  phi = q2 (M.d) / 2,  H = q2 ((M.d) / |d|^2 d - M / 2) (x2 the
    # radial part). Every factor but q2 is O(|M|) or O(|M| |d|), and q2 multiplies last, so nothing
    # underflows before the result does (R^2 (M.d) / |d|^4 did beyond 1e103 radii: H lost its radial
    # part and flipped). In the kernels' units (``physics._direct``) |d| <= 1e150: |d|^2 never overflows.
    # Guarded reciprocal: the inside branch never divides, so no inf/NaN reaches autodiff.
    inv_d2 = 1.0 / jnp.where(inside, 1.0, d2)
    q2 = jnp.where(inside, 1.0, r2 * inv_d2)  # 1 inside
    phi = 0.5 * q2 * md
    radial = jnp.where(inside, 0.0, jnp.where(on_rim, 1.0, 2.0)) * 0.5 * md * inv_d2
    return phi, q2 * (radial * dx - 0.5 * mx), q2 * (radial * dy - 0.5 * my)


class Disc(RoundShape):
    name = "disc"
    code = 0
    dim = 2
    constructor = "discs"

    def measure(self, sizes):
        return np.pi * (np.asarray(sizes)[..., 0] / 2) ** 2

    def prepare(self, magnetisations, half_sizes):
        return magnetisations[..., 0], magnetisations[..., 1], half_sizes[..., 0]

    def pair(self, dx, dy, mx, my, radius):
        return disc_pair(dx, dy, mx, my, radius)

    # -- references: a long cylinder along z -------------------------------------------------------
    def magpylib_field(self, func, observers, sizes, polarisations, lengths):
        return func.cylinder_field("H", observers, np.column_stack([sizes[:, 0], lengths]), polarisations,
                                   squeeze=False)

    def magpylib_magnet(self, magnet, size, magnetisation, length):
        return magnet.Cylinder(dimension=(size[0], length), magnetization=magnetisation)

    def magtense_field(self, tiles, run, offsets, size, magnetisation, length):
        # A full cylinder is a cylinder piece spanning theta0 - pi .. theta0 + pi. MagTense's kernel
        # is wrong (up to 200%) within ~1e-8 of that seam half-plane, so the seam is put on the
        # side opposite to the points: theta0 = 0 (seam along -x) for x >= 0, theta0 = pi for x < 0.
        out = np.zeros(offsets.shape)
        for side, theta0 in ((offsets[:, 0] >= 0, 0.0), (offsets[:, 0] < 0, np.pi)):
            if np.any(side):
                radius = float(size[0]) / 2
                tile = tiles(tile_type=1, center_pos=[radius / 2, theta0, 0.0],
                             dev_center=[radius, 2.0 * np.pi, float(length)])
                out[side] = run(tile, magnetisation, offsets[side], self.dim)
        return out

    def magtense_refusals(self, offsets, sizes):
        radius = sizes[:, 0] / 2
        norm = np.sqrt(np.sum(offsets * offsets, axis=1))
        rim = np.abs(norm / radius - 1.0) < _MAGTENSE_RIM_GUARD
        return rim, (f"within {_MAGTENSE_RIM_GUARD:g} R of a disc's rim",
                     "where MagTense's cylinder kernel is unreliable (relative error 4e-8 at 1e-4 R, 0.3 at 1e-5 R); "
                     "move them or use backend='magpylib'")

    def magtense_rows(self, row_pair, row_offset, row_weight, half_sizes):
        radius = half_sizes[row_pair, 0]
        near_axis = np.sqrt(np.sum(row_offset ** 2, axis=1)) < _MAGTENSE_AXIS_ZONE * radius
        if not np.any(near_axis):
            return row_pair, row_offset, row_weight
        idx = np.flatnonzero(near_axis)
        keep = np.flatnonzero(~near_axis)
        pairs, offs, weights = [row_pair[keep]], [row_offset[keep]], [row_weight[keep]]
        angles = np.pi / 4 + np.arange(4) * np.pi / 2
        for angle in angles:
            shift = _MAGTENSE_AXIS_RING * radius[idx, None] * np.array([np.cos(angle), np.sin(angle)])
            pairs.append(row_pair[idx])
            offs.append(row_offset[idx] + shift)
            weights.append(row_weight[idx] / angles.size)
        return np.concatenate(pairs), np.concatenate(offs), np.concatenate(weights)
