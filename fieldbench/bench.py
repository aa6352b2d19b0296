"""Speed of the exact solvers, measured (never asserted in unit tests): `fieldbench bench solvers`.

Reports exact (source, point) pairs per second for potential plus field in float64, per family,
twice: the raw core (``fieldbench.physics.direct_sum`` on device arrays) and the public API
(``fieldbench.potential_and_field`` on a ``Sources``, with its validation, singular-point and reach
checks, unit scaling, conversion and dispatch per family), next to the same work done by
magpylib's fastest vectorised call in the same run (2D prisms as long cuboids through
``magpylib.func.cuboid_field``, which returns H only).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import jax
import numpy as np

from .sources import Family, Sources
from .physics import direct_sum, potential_and_field
from .physics._direct import FAR_RATIOS, any_far_from_boxes

__all__ = ["Throughput", "solver_throughput", "device_description", "usable_cores", "CORE", "API"]

MU0 = 4e-7 * np.pi
#: Names of the two fieldbench solvers in the report: the raw core and the public API over it.
CORE, API = "fieldbench core", "fieldbench API"


@dataclass(frozen=True)
class Throughput:
    solver: str
    family: str
    sources: int
    points: int
    seconds: float
    compile_seconds: float

    @property
    def pairs_per_second(self) -> float:
        return self.sources * self.points / self.seconds

    def as_dict(self) -> dict:
        return asdict(self) | {"pairs_per_second": self.pairs_per_second}


def device_description() -> str:
    """Processor (or accelerator) and thread count, for reports."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        return f"{device.device_kind} ({device.platform})"
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # The cores this process may use, not the machine's: a run pinned to one core of two must not be
    # labelled, and compared, as a two-core run.
    return f"{cpu}, {usable_cores()} threads, {len(jax.devices())} JAX CPU device(s)"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity: ``taskset`` and containers narrow it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best_of(fn, repeats: int) -> float:
    return min(_timed(fn) for _ in range(repeats))


def _best_of_alternating(fns, repeats: int) -> list[float]:
    """Best time of each function, calling them in turn ``repeats`` times: on a shared, loaded
    machine a slow spell then hits all of them alike, so their ratios hold within one run."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _timed(fn))
    return best


def _configuration(rng, family: Family, sources: int, points: int):
    # Sources of size ~0.1 spread over [-1, 1]^d, points over the same square or cube: the regime of
    # the standard datasets (most pairs at a few source sizes), not the far field.
    dim = family.dim
    centers = rng.uniform(-1.0, 1.0, (sources, dim))
    magnetisations = rng.normal(size=(sources, dim))
    sizes = rng.uniform(0.05, 0.2, (sources, 1)) * np.ones((1, dim))
    if not family.is_round:
        sizes = rng.uniform(0.05, 0.2, (sources, dim))
    return centers, magnetisations, sizes, rng.uniform(-1.0, 1.0, (points, dim))


def solver_throughput(sources: int = 2000, points: int = 50_000, *, families=(Family.DISC, Family.PRISM),
                      magpylib_pairs: int = 2_000_000, repeats: int = 3, seed: int = 0) -> list[Throughput]:
    """Time potential+field of each family through the raw core and the public API (fieldbench),
    and of long cuboids (magpylib, last).

    Core and API calls alternate (:func:`_best_of_alternating`), so their ratio is measured within
    one run; the API returns NumPy arrays, the core device arrays (waited for). Warm-up (JIT
    compilation) is timed apart and excluded; each figure is the best of ``repeats``.
    """
    families = [Family.parse(f) for f in families]  # every name checked before any timing
    rng = np.random.default_rng(seed)
    results = []
    for family in families:
        centers, magnetisations, sizes, pts = _configuration(rng, family, sources, points)
        any_far = family in FAR_RATIOS and any_far_from_boxes(pts, centers, sizes, family)
        args = [jax.numpy.asarray(x) for x in (pts, centers, magnetisations, sizes)] + [
            jax.numpy.ones(sources, dtype=bool)]
        collection = Sources(family=np.full(sources, int(family), dtype=np.int8), centers=centers,
                             magnetisations=magnetisations, sizes=sizes)

        def core():
            jax.block_until_ready(direct_sum(*args, family=family, any_far=any_far))

        def api():
            potential_and_field(collection, pts)

        compile_seconds = [_timed(core), _timed(api)]
        seconds = _best_of_alternating([core, api], repeats)
        for solver, best, warm in zip((CORE, API), seconds, compile_seconds):
            results.append(Throughput(solver, family.name.lower(), sources, points, best, warm))
    results.append(_magpylib_cuboids(rng, magpylib_pairs, repeats))
    return results


def _magpylib_cuboids(rng, pairs: int, repeats: int) -> Throughput:
    from magpylib.func import cuboid_field

    count_sources = max(1, int(np.sqrt(pairs) / 10))
    count_points = pairs // count_sources
    centers, magnetisations, sizes, pts = _configuration(rng, Family.PRISM, count_sources, count_points)
    length = 1e3 * sizes.max()
    observers = np.zeros((count_sources * count_points, 3))
    observers[:, :2] = np.tile(pts, (count_sources, 1))
    dimensions = np.repeat(np.c_[sizes, np.full(count_sources, length)], count_points, axis=0)
    positions = np.repeat(np.c_[centers, np.zeros(count_sources)], count_points, axis=0)
    polarizations = np.repeat(np.c_[magnetisations, np.zeros(count_sources)] * MU0, count_points, axis=0)

    def run():
        cuboid_field("H", observers, dimensions, polarizations, positions=positions)

    start = time.perf_counter()
    run()
    warm = time.perf_counter() - start
    return Throughput("magpylib", "cuboid (long)", count_sources, count_points, _best_of(run, repeats), warm)


@dataclass(frozen=True)
class GenerationThroughput:
    dataset: str
    split: str
    samples: int
    points: int
    seconds: float
    stages: dict  # thread-seconds per stage: sampling, solving, conversion, encoding, writing
    workers: int

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds

    def shares(self) -> dict:
        """Fraction of the workers' wall time in each stage; the rest is scheduling and waiting."""
        budget = self.seconds * self.workers
        shares = {stage: seconds / budget for stage, seconds in self.stages.items()}
        shares["scheduling and other"] = max(0.0, 1.0 - sum(shares.values()))
        return shares


def generation_throughput(dataset: str = "circles2d", split: str = "train", *, workers: int = 2,
                          out_dir: str | None = None) -> GenerationThroughput:
    """End-to-end generation of one standard split to Parquet (a warm-up shard first, excluded)."""
    import json
    import shutil
    import tempfile

    import fsspec

    from .datasets._registry import dataset_spec
    from .pipeline import MANIFESTS_DIR, canonical_split, generate, produce_shard

    spec = dataset_spec(dataset)
    split = canonical_split(split)
    split_spec = spec.splits[split]
    scratch = tempfile.mkdtemp(prefix="fieldbench-bench-", dir=out_dir)
    try:
        produce_shard(f"{scratch}/warm-up", split, split_spec, 0)  # compile outside the timing
        target = f"{scratch}/{dataset}"
        start = time.perf_counter()
        generate(spec, target, splits=[split], workers=workers)
        seconds = time.perf_counter() - start
        fs = fsspec.filesystem("file")
        stages: dict[str, float] = {}
        for path in fs.glob(f"{target}/{MANIFESTS_DIR}/{split}/*.json"):
            for stage, value in json.loads(fs.cat_file(path))["timings"].items():
                stages[stage] = stages.get(stage, 0.0) + value
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return GenerationThroughput(dataset, split, split_spec.samples, split_spec.samples * split_spec.points,
                                seconds, stages, workers)
