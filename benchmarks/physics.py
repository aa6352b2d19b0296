"""Exact solvers: time and peak memory of the raw direct sum and of the public API over it, and
agreement with magpylib."""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

import numpy as np

from ._data import block, memo, random_points, random_sources


def _direct_sum_case(family: str, size: str):
    """Inputs of one direct sum and its jitted call, compiled (warm-up, never timed)."""
    import jax.numpy as jnp

    import fieldbench
    from fieldbench.physics import direct_sum

    sources, points = (int(x) for x in size.split("x"))
    centers, magnetisations, sizes = random_sources(family, sources)
    args = [jnp.asarray(x, jnp.float64) for x in (random_points(points), centers, magnetisations, sizes)]
    args.append(jnp.ones(sources, dtype=bool))
    kind = fieldbench.Family[family.upper()]

    def run():
        return direct_sum(*args, family=kind, any_far=False)

    block(run())  # any error fails the benchmark: only a missing optional dependency may skip (none here)
    return run


class DirectSum:
    """``fieldbench.physics.direct_sum`` (float64 potential + field, ``any_far=False``) of M sources
    of one family at N points. Sources cover ~20% of [-3, 3]^2, points uniform in it."""

    params = (["disc", "prism"], ["100x1000", "1000x10000"])
    param_names = ["family", "sources x points"]
    timeout = 180

    def setup(self, family, size):
        self.run = memo(("direct_sum", family, size), lambda: _direct_sum_case(family, size))

    def time_direct_sum(self, family, size):
        block(self.run())

    def peakmem_direct_sum(self, family, size):
        block(self.run())


def _potential_and_field_case(family: str, size: str):
    """The public call on the same inputs as :func:`_direct_sum_case`, compiled (warm-up)."""
    import fieldbench

    sources, points = (int(x) for x in size.split("x"))
    centers, magnetisations, sizes = random_sources(family, sources)
    if family == "disc":
        collection = fieldbench.Sources.discs(centers, magnetisations, sizes[:, 0] / 2)
    else:
        collection = fieldbench.Sources.prisms(centers, magnetisations, sizes)
    points = random_points(points)

    def run():
        return fieldbench.potential_and_field(collection, points)

    run()  # any error fails the benchmark
    return run


class PotentialAndField:
    """``fieldbench.potential_and_field`` (validation, corner and reach checks, per-family dispatch,
    NumPy results) on the inputs of :class:`DirectSum`: its time over DirectSum's is the public
    layer's overhead, except at prism 1000x10000, where the API finds points far enough from
    sources to compile the far-field series in (DirectSum runs with ``any_far=False``)."""

    params = (["disc", "prism"], ["100x1000", "1000x10000"])
    param_names = ["family", "sources x points"]
    timeout = 180

    def setup(self, family, size):
        self.run = memo(("potential_and_field", family, size), lambda: _potential_and_field_case(family, size))

    def time_potential_and_field(self, family, size):
        self.run()  # NumPy results: the call has waited for the device


class MagpylibAgreement:
    """Largest relative deviation ||H - H_magpylib|| / ||H_magpylib|| over 400 points (inside,
    near and between 8 sources): ``fieldbench.field`` against the independent magpylib reference
    (``fieldbench.physics.reference_field(..., backend="magpylib")``). Expected ~1e-9 (the
    reference's own accuracy, physics/_references.py); a jump means a kernel changed."""

    params = ["disc", "prism"]
    param_names = ["family"]
    unit = "relative deviation"
    timeout = 180

    def setup(self, family):
        import fieldbench

        centers, magnetisations, sizes = random_sources(family, 8, seed=3)
        sizes = sizes * 4.0  # ~1.5 units across: points land inside, near and between sources
        if family == "disc":
            self.sources = fieldbench.Sources.discs(centers, magnetisations, sizes[:, 0] / 2)
        else:
            self.sources = fieldbench.Sources.prisms(centers, magnetisations, sizes)
        self.points = random_points(400, seed=4)

    def track_max_relative_deviation(self, family):
        import fieldbench
        from fieldbench.physics import reference_field

        ours = np.asarray(fieldbench.field(self.sources, self.points))
        reference = np.asarray(reference_field(self.sources, self.points, backend="magpylib"))
        scale = np.linalg.norm(reference, axis=1)
        floor = 1e-6 * np.median(scale)  # where H itself vanishes a relative deviation is meaningless
        return float(np.max(np.linalg.norm(ours - reference, axis=1) / np.maximum(scale, floor)))
