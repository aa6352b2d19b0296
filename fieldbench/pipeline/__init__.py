"""Pipeline: dataset specs -> a Dask graph of shards -> self-describing Parquet datasets.

``generate(spec, root)`` writes (or resumes) a dataset; ``build_shard`` is the pure per-shard
function behind it; ``_format`` documents the on-disk schema.
"""

from ._format import AXES, SCHEMA_VERSION, batch_from_tables, points_schema, sources_schema
from ._generate import CARD_NAME, CARD_REPAIR, DatasetExistsError, generate, produce_shard, read_card, shard_paths
from ._shards import FINGERPRINT_VERSION, Shard, build_shard, fingerprint, shard_rng, value_columns
from ._spec import DatasetSpec, SplitSpec

__all__ = [
    "AXES", "CARD_NAME", "CARD_REPAIR", "DatasetExistsError", "DatasetSpec", "FINGERPRINT_VERSION", "SCHEMA_VERSION",
    "Shard", "SplitSpec", "batch_from_tables", "build_shard", "fingerprint", "generate", "points_schema",
    "produce_shard", "read_card", "shard_paths", "shard_rng", "sources_schema", "value_columns",
]
