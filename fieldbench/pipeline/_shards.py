"""One shard: a pure function of (split spec, shard index) -> two Parquet tables.

Determinism: shard i of a split draws everything from
``numpy.random.default_rng(SeedSequence(split.seed, spawn_key=(i,)))`` (the i-th child that
``SeedSequence(split.seed).spawn`` would give), in this order: the configurations of its samples
(``sample_configurations``), then the evaluation points: one ``uniform`` draw of shape (B, N, d)
for ``"uniform"`` points, per-sample ``sample_points`` calls when interiors are excluded, nothing
for a grid. So the same spec gives the same bytes of data on any scheduler and any number of workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import jax
import numpy as np
import pyarrow as pa

from ..physics import potential_and_field_batched
from ..sources import SourceBatch, sample_configurations, sample_points
from ._format import AXES, points_table, sources_table
from ._spec import SplitSpec

__all__ = ["Shard", "build_shard", "shard_rng", "fingerprint"]


@dataclasses.dataclass
class Shard:
    index: int
    sources: pa.Table
    points: pa.Table
    timings: dict  # seconds spent: "sampling", "solving", "conversion"


def shard_rng(split: SplitSpec, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(split.seed, spawn_key=(index,)))


def _points_for(split: SplitSpec, rng, configurations) -> np.ndarray:
    domain = split.point_domain if split.point_domain is not None else split.configuration.domain
    count, per_sample, dim = len(configurations), split.points, split.dim
    if split.exclude_interiors:
        points = np.stack([sample_points(rng, per_sample, dim=dim, domain=domain, method=split.point_method,
                                         exclude=config) for config in configurations])
    elif split.point_method == "grid":
        grid = sample_points(None, per_sample, dim=dim, domain=domain, method="grid")
        points = np.broadcast_to(grid, (count, per_sample, dim))
    else:
        lo, hi = (-domain, domain) if np.isscalar(domain) else domain
        points = rng.uniform(lo, hi, size=(count, per_sample, dim))
    # Round to float32 before solving: the stored coordinates are then exactly the evaluation points.
    return np.asarray(points, dtype=np.float32).astype(np.float64)


def build_shard(split: SplitSpec, index: int) -> Shard:
    """Sample, solve and tabulate shard ``index`` of ``split`` (no I/O)."""
    rows = split.shard_range(index)
    started = time.perf_counter()
    rng = shard_rng(split, index)
    configurations = sample_configurations(split.configuration, len(rows), rng)
    points = _points_for(split, rng, configurations)
    batch = SourceBatch.pad(configurations, max_sources=split.max_sources)
    sampled = time.perf_counter()
    phi, field = potential_and_field_batched(batch, points)
    phi, field = jax.device_get(jax.block_until_ready((phi, field)))
    solved = time.perf_counter()
    if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(field))):
        bad = int(np.argwhere(~np.isfinite(phi) | ~np.all(np.isfinite(field), axis=-1))[0][0])
        raise FloatingPointError(f"non-finite potential or field in sample {rows[bad]} of shard {index}; "
                                 "please report this with the dataset spec")
    sources = sources_table(batch, rows.start)
    table = points_table(points, phi, field, rows.start)
    converted = time.perf_counter()
    return Shard(index, sources, table, {"sampling": sampled - started, "solving": solved - sampled,
                                         "conversion": converted - solved})


def fingerprint(sources: pa.Table, points: pa.Table) -> dict:
    """Content checksums that survive a rebuild with another Parquet writer.

    ``sources_sha256`` and ``points_sha256`` hash the raw little-endian bytes of the exact columns
    (every source column; the point coordinates); ``values`` are float64 sums of each value column
    and of its square, which a rebuild reproduces to float32 rounding (compare with rtol ~1e-6).
    """
    def digest(table: pa.Table, columns) -> str:
        hasher = hashlib.sha256()
        for name in columns:
            column = table.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(pa.string())
                hasher.update("\x00".join(column.to_pylist()).encode())
            else:
                hasher.update(np.ascontiguousarray(column.to_numpy()).astype(column.to_numpy().dtype.newbyteorder("<"))
                              .tobytes())
        return hasher.hexdigest()

    coordinate_columns = ["sample"] + [a for a in AXES if a in points.column_names]
    value_columns = [c for c in points.column_names if c == "phi" or c.startswith("h_")]
    values = {}
    for name in value_columns:
        data = points.column(name).to_numpy().astype(np.float64)
        values[name] = [float(data.sum()), float(np.square(data).sum())]
    return {"sources_sha256": digest(sources, sources.column_names),
            "points_sha256": digest(points, coordinate_columns), "values": values}
