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

__all__ = ["Shard", "build_shard", "shard_rng", "fingerprint", "value_columns", "FINGERPRINT_VERSION"]


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


#: Bumped when the fingerprint changes meaning; the registry records it (``fingerprint_version``).
FINGERPRINT_VERSION = 2


def value_columns(points: pa.Table) -> list[str]:
    """The float32 value columns of a points table (phi and the field components), in table order."""
    return [c for c in points.column_names if c == "phi" or c.startswith("h_")]


def fingerprint(sources: pa.Table, points: pa.Table) -> dict:
    """Content checksums of a shard that survive a rebuild with another Parquet writer.

    Every digest is the sha256 of raw little-endian column bytes in row order, so it changes with
    any single bit and with any permutation of rows: ``sources_sha256`` covers every source
    column, ``points_sha256`` the sample ids and point coordinates, and ``values_sha256`` has one
    digest per value column (phi, h_x, ...; float32, as stored), so a mismatch names the column.
    Values are hashed exactly rather than quantised: a hash of quantised values flips whenever a
    value sits near a quantisation boundary, and any quantum coarse enough to make that rare would
    let changes smaller than it pass. Rounding differences between numerical stacks are instead
    judged elementwise against a reference copy (``fieldbench.datasets._verify``).
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
    return {"sources_sha256": digest(sources, sources.column_names),
            "points_sha256": digest(points, coordinate_columns),
            "values_sha256": {name: digest(points, [name]) for name in value_columns(points)}}
