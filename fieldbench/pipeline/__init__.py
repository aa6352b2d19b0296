"""Pipeline: dataset specs -> a Dask graph of shards -> self-describing Parquet datasets.

``generate(spec, root)`` writes (or resumes) a dataset and returns its ``DatasetCard``;
``build_shard`` is the pure per-shard function behind it; ``_format`` and ``docs/data_format.md``
document the on-disk schema, ``_card`` the card.
"""

from ._card import (CARD_NAME, CARD_REPAIR, SHARD_FILES, CardError, DatasetCard, FileRecord, ShardRecord, SplitRecord,
                    read_card)
from ._format import AXES, SCHEMA_VERSION, batch_from_tables, points_schema, shard_paths, sources_schema
from ._generate import DatasetExistsError, generate, produce_shard
from ._shards import FINGERPRINT_VERSION, Shard, build_shard, fingerprint, shard_rng, value_columns
from ._spec import DatasetSpec, SplitSpec

__all__ = [
    "AXES", "CARD_NAME", "CARD_REPAIR", "SHARD_FILES", "CardError", "DatasetCard", "DatasetExistsError", "DatasetSpec",
    "FINGERPRINT_VERSION", "FileRecord", "SCHEMA_VERSION", "Shard", "ShardRecord", "SplitRecord", "SplitSpec",
    "batch_from_tables", "build_shard", "fingerprint", "generate", "points_schema", "produce_shard", "read_card",
    "shard_paths", "shard_rng", "sources_schema", "value_columns",
]
