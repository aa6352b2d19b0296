"""The sphere (3D): outside a dipole of moment (4/3) pi R^3 M; inside phi = M.d / 3, H = -M/3."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._base import RoundShape

__all__ = ["Sphere", "sphere_pair"]


def sphere_pair(dx, dy, dz, mx, my, mz, radius):
    """Sphere of radius R: returns (phi, hx, hy, hz); on the surface the field is the mean of both limits.

    Outside, with q = R / |d|:  phi = q^2 R (M.d/|d|) / 3,  H = q^3 ((M.d) / |d|^2 d - M / 3) (x3 the
    radial part), ordered as for discs (``disc.disc_pair``): q^3 multiplies last, so nothing
    underflows before the result does (R^3 (M.d) / |d|^5 did beyond 1e80 radii and flipped H).
    """
    d2 = dx * dx + dy * dy + dz * dz
    r2 = radius * radius
    inside = d2 < r2
    on_surface = d2 == r2
    md = mx * dx + my * dy + mz * dz
    inv_d2 = 1.0 / jnp.where(inside, 1.0, d2)
    inv_d = jnp.sqrt(inv_d2)
    q = jnp.where(inside, 1.0, radius * inv_d)  # 1 inside
    third = 1.0 / 3.0
    phi = jnp.where(inside, third * md, (third * q * q) * (radius * (md * inv_d)))
    radial = jnp.where(inside, 0.0, jnp.where(on_surface, 1.5, 3.0) * third) * (md * inv_d2)
    q3 = q * q * q
    return (
        phi,
        q3 * (radial * dx - third * mx),
        q3 * (radial * dy - third * my),
        q3 * (radial * dz - third * mz),
    )


class Sphere(RoundShape):
    name = "sphere"
    code = 3
    dim = 3
    constructor = "spheres"

    def measure(self, sizes):
        return 4 / 3 * np.pi * (np.asarray(sizes)[..., 0] / 2) ** 3

    def prepare(self, magnetisations, half_sizes):
        return tuple(magnetisations[..., i] for i in range(3)) + (half_sizes[..., 0],)

    def pair(self, dx, dy, dz, mx, my, mz, radius):
        return sphere_pair(dx, dy, dz, mx, my, mz, radius)

    def magpylib_field(self, func, observers, sizes, polarisations, lengths):
        return func.sphere_field("H", observers, sizes[:, 0], polarisations, squeeze=False)

    def magpylib_magnet(self, magnet, size, magnetisation, length):
        return magnet.Sphere(diameter=size[0], magnetization=magnetisation)

    def magtense_field(self, tiles, run, offsets, size, magnetisation, length):
        return run(tiles(tile_type=6, size=[float(size[0]) / 2, 0.0, 0.0]), magnetisation, offsets, self.dim)
