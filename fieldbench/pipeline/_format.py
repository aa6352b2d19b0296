"""The on-disk format: two tidy Parquet tables, each its own Parquet dataset with the splits as
hive partitions, readable with plain pandas, pyarrow.dataset, Dask or Hugging Face ``datasets``.

A dataset directory (layout version 2, ``SCHEMA_VERSION``)::

    card.json                                   the dataset card (spec, provenance, shards, checksums)
    README.md                                   dataset card for the Hugging Face hub (YAML ``configs``)
    sources/split=<split>/part-00000.parquet    one row per (sample, source)
    points/split=<split>/part-00000.parquet     one row per (sample, evaluation point)
    _manifests/<split>/part-00000.json          per-shard record written last (marks the shard complete)

``pd.read_parquet("<dataset>/points")`` reads every split with a ``split`` column (hive
partitioning); ``_manifests`` starts with an underscore, which pyarrow, pandas and Dask skip.
Layout version 1 (``<split>/{sources,points,_manifest}/``, hyphenated split names) is moved into
this one by ``migrate_layout`` (``_migrate``).

``sources`` columns: ``sample`` (int64, global sample index within the split), ``source`` (int16,
index within the sample), ``family`` (string: disc, prism, cuboid, sphere), ``center_x``,
``center_y`` [, ``center_z``], ``magnetisation_x`` ... , ``size_x`` ... (float64, exact; sizes are
FULL extents: side lengths of prisms/cuboids, the diameter of discs/spheres).

``points`` columns: ``sample`` (int64), ``x``, ``y`` [, ``z``] (float32; the points were rounded
to float32 BEFORE the solve, so these are exactly the evaluation points), ``phi``, ``h_x``,
``h_y`` [, ``h_z``] (float32: computed in float64, then rounded). Rows are sorted by sample, and
every sample of a split has the same number of points.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..sources import Family, SourceBatch

__all__ = [
    "SCHEMA_VERSION", "AXES", "sources_schema", "points_schema", "sources_table", "points_table",
    "table_to_bytes", "batch_from_tables", "shard_paths", "PARQUET_OPTIONS", "TABLE_SCHEMA_VERSION", "TABLES",
    "MANIFESTS_DIR", "PARTITION_KEY", "legacy_shard_paths",
]

#: The version of the folder layout (card, registry): bump when files move or the card changes
#: meaning; readers refuse other versions (version 1 folders get the migrate command).
SCHEMA_VERSION = 2
#: The version of the two tables' columns, in every Parquet file's key-value metadata
#: (``fieldbench.schema_version``). Separate from the layout so that moving files never changes
#: their bytes (every sha256 recorded in registries, checkpoints and leaderboard records holds).
TABLE_SCHEMA_VERSION = 1
#: The two tables, each a Parquet dataset of its own folder.
TABLES = ("points", "sources")
#: The hive partition key of the splits: ``points/split=<split>/``.
PARTITION_KEY = "split"
#: Shard manifests; the leading underscore makes pyarrow, pandas and Dask skip the folder.
MANIFESTS_DIR = "_manifests"
AXES = ("x", "y", "z")
#: Values are float32 and nearly incompressible; sample ids compress to nothing with RLE. Dictionary
#: encoding only where it pays: trying it on float columns made encoding 5x slower and files larger.
PARQUET_OPTIONS = {"compression": "snappy", "use_dictionary": ["sample", "source", "family"],
                   "write_statistics": ["sample"]}
_FAMILY_NAMES = [f.name.lower() for f in Family]


def shard_paths(split: str, index: int) -> dict[str, str]:
    """Relative paths of a shard's files: ``sources``, ``points`` and ``manifest`` (``split`` is
    the canonical split name)."""
    name = f"part-{index:05d}"
    return {"sources": f"sources/{PARTITION_KEY}={split}/{name}.parquet",
            "points": f"points/{PARTITION_KEY}={split}/{name}.parquet",
            "manifest": f"{MANIFESTS_DIR}/{split}/{name}.json"}


def legacy_shard_paths(split: str, index: int) -> dict[str, str]:
    """The paths of layout version 1 (``split`` as that layout named it): only the migration reads them."""
    name = f"part-{index:05d}"
    return {"sources": f"{split}/sources/{name}.parquet", "points": f"{split}/points/{name}.parquet",
            "manifest": f"{split}/_manifest/{name}.json"}


def sources_schema(dim: int) -> pa.Schema:
    axes = AXES[:dim]
    return pa.schema(
        [("sample", pa.int64()), ("source", pa.int16()), ("family", pa.dictionary(pa.int8(), pa.string()))]
        + [(f"center_{a}", pa.float64()) for a in axes]
        + [(f"magnetisation_{a}", pa.float64()) for a in axes]
        + [(f"size_{a}", pa.float64()) for a in axes],
        metadata={"fieldbench.table": "sources", "fieldbench.schema_version": str(TABLE_SCHEMA_VERSION)},
    )


def points_schema(dim: int) -> pa.Schema:
    axes = AXES[:dim]
    return pa.schema(
        [("sample", pa.int64())] + [(a, pa.float32()) for a in axes] + [("phi", pa.float32())]
        + [(f"h_{a}", pa.float32()) for a in axes],
        metadata={"fieldbench.table": "points", "fieldbench.schema_version": str(TABLE_SCHEMA_VERSION)},
    )


def sources_table(batch: SourceBatch, first_sample: int) -> pa.Table:
    """Flatten a padded batch (B, K) into one row per real source."""
    mask = np.asarray(batch.mask)
    rows, slots = np.nonzero(mask)
    dim = batch.dim
    family_codes = np.asarray(batch.family)[rows, slots].astype(np.int8)
    columns = {
        "sample": pa.array(rows.astype(np.int64) + first_sample),
        "source": pa.array(slots.astype(np.int16)),
        "family": pa.DictionaryArray.from_arrays(pa.array(family_codes), pa.array(_FAMILY_NAMES)),
    }
    for name, array in (("center", batch.centers), ("magnetisation", batch.magnetisations), ("size", batch.sizes)):
        values = np.asarray(array)[rows, slots]
        for axis in range(dim):
            columns[f"{name}_{AXES[axis]}"] = pa.array(values[:, axis])
    return pa.Table.from_pydict(columns, schema=sources_schema(dim))


def points_table(points: np.ndarray, phi: np.ndarray, field: np.ndarray, first_sample: int) -> pa.Table:
    """(B, N, d) points, (B, N) phi and (B, N, d) field -> one row per point, float32 values."""
    count, per_sample, dim = points.shape
    columns = {"sample": pa.array(np.repeat(np.arange(first_sample, first_sample + count, dtype=np.int64),
                                            per_sample))}
    flat_points = np.asarray(points, dtype=np.float32).reshape(-1, dim)
    flat_field = np.asarray(field, dtype=np.float32).reshape(-1, dim)
    for axis in range(dim):
        columns[AXES[axis]] = pa.array(flat_points[:, axis])
    columns["phi"] = pa.array(np.asarray(phi, dtype=np.float32).reshape(-1))
    for axis in range(dim):
        columns[f"h_{AXES[axis]}"] = pa.array(flat_field[:, axis])
    return pa.Table.from_pydict(columns, schema=points_schema(dim))


def table_to_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


def batch_from_tables(sources: pa.Table, points: pa.Table, dim: int, max_sources: int | None = None) -> dict:
    """Arrays of a contiguous block of samples from their two tables.

    Returns a dict of NumPy arrays: ``sample`` (S,), ``family`` (S, K) int8, ``centers``,
    ``magnetisations``, ``sizes`` (S, K, d) float64, ``mask`` (S, K) bool, ``points`` (S, N, d)
    float32, ``phi`` (S, N) float32, ``field`` (S, N, d) float32. K is the largest count in the
    block unless ``max_sources`` is given (padding: zero magnetisation, unit size, mask False).
    """
    axes = AXES[:dim]
    point_samples = points.column("sample").to_numpy()
    samples, starts = np.unique(point_samples, return_index=True)
    count = len(samples)
    if count == 0:
        raise ValueError("no samples in this block")
    per_sample = len(point_samples) // count
    if per_sample * count != len(point_samples) or np.any(np.diff(starts) != per_sample):
        raise ValueError("points table is not sorted by sample with a fixed number of points per sample")
    stacked_points = np.stack([points.column(a).to_numpy() for a in axes], axis=-1).reshape(count, per_sample, dim)
    phi = points.column("phi").to_numpy().reshape(count, per_sample)
    field = np.stack([points.column(f"h_{a}").to_numpy() for a in axes], axis=-1).reshape(count, per_sample, dim)

    source_samples = sources.column("sample").to_numpy()
    slot = sources.column("source").to_numpy().astype(np.int64)
    row = np.searchsorted(samples, source_samples)
    if np.any(row >= count) or np.any(samples[np.minimum(row, count - 1)] != source_samples):
        raise ValueError("sources table refers to samples missing from the points table")
    width = int(slot.max()) + 1 if len(slot) else 1
    if max_sources is not None:
        if max_sources < width:
            raise ValueError(f"max_sources={max_sources} is below the largest sample ({width} sources)")
        width = max_sources
    family_column = sources.column("family").combine_chunks()
    names = np.asarray(family_column.dictionary.to_pylist())
    codes = np.array([int(Family.parse(n)) for n in names], dtype=np.int8)[family_column.indices.to_numpy()]
    family = np.zeros((count, width), dtype=np.int8)
    mask = np.zeros((count, width), dtype=bool)
    centers = np.zeros((count, width, dim))
    magnetisations = np.zeros((count, width, dim))
    sizes = np.ones((count, width, dim))
    family[row, slot] = codes
    mask[row, slot] = True
    for name, target in (("center", centers), ("magnetisation", magnetisations), ("size", sizes)):
        target[row, slot] = np.stack([sources.column(f"{name}_{a}").to_numpy() for a in axes], axis=-1)
    return {"sample": samples, "family": family, "centers": centers, "magnetisations": magnetisations,
            "sizes": sizes, "mask": mask, "points": stacked_points, "phi": phi, "field": field}
