"""Shared, seeded inputs and helpers for the benchmarks (import after ``benchmarks._env``)."""

from __future__ import annotations

import numpy as np

#: The domain of the standard 2D datasets (circles2d, prisms2d): [-3, 3]^2, length scale 3.
DOMAIN = 3.0


def random_sources(family: str, count: int, seed: int = 0):
    """(centers, magnetisations, sizes) of ``count`` 2D sources in [-3, 3]^2, float64.

    Sizes shrink with the count (about 20% of the domain is covered whatever the count), so a
    larger benchmark is more of the same configuration rather than a pile of overlapping sources.
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-DOMAIN, DOMAIN, (count, 2))
    magnetisations = rng.normal(size=(count, 2))
    typical = 0.5 * (2 * DOMAIN) / np.sqrt(count)
    if family == "disc":
        sizes = np.repeat(rng.uniform(0.5, 1.0, (count, 1)) * typical, 2, axis=1)
    else:
        sizes = rng.uniform(0.5, 1.0, (count, 2)) * typical
    return centers, magnetisations, sizes


def random_points(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-DOMAIN, DOMAIN, (count, 2))


def source_batch(family: str, count: int, seed: int = 0):
    """ONE collection of ``count`` sources of ``family`` ("disc" or "prism") as a padded
    :class:`fieldbench.SourceBatch` (B = 1)."""
    from fieldbench import Family, SourceBatch

    code = Family.DISC if family == "disc" else Family.PRISM
    centers, magnetisations, sizes = random_sources(family, count, seed)
    return SourceBatch(family=np.full((1, count), int(code), np.int8), centers=centers[None],
                       magnetisations=magnetisations[None], sizes=sizes[None], mask=np.ones((1, count), bool))


def disc_batch(count: int, seed: int = 0):
    """ONE collection of ``count`` discs as a padded :class:`fieldbench.SourceBatch` (B = 1)."""
    return source_batch("disc", count, seed)


def block(value):
    """Wait for every JAX array in ``value`` (a pytree; NumPy arrays pass through)."""
    import jax

    return jax.block_until_ready(value)


_MEMO: dict = {}


def memo(key, factory):
    """``factory()`` once per process and key.

    asv re-runs ``setup`` before every timed sample (asv_runner >= 0.3, asv#966); inputs and
    warmed-up (compiled) functions are kept here so a re-run costs nothing and never re-compiles.
    """
    if key not in _MEMO:
        _MEMO[key] = factory()
    return _MEMO[key]
