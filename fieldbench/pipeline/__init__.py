"""Pipeline: dataset specs -> a Dask graph of shards -> self-describing Parquet datasets.

``generate(spec, root)`` writes (or resumes) a dataset and returns its ``DatasetCard``;
``build_shard`` is the pure per-shard function behind it; ``_format`` and ``docs/data_format.md``
document the on-disk layout, ``_card`` the card, ``_migrate`` the move of version-1 folders
(``migrate_layout``). ``canonical_split`` is the one place that maps the old hyphenated split names
(``test-multi``) to the current ones (``test_multi``).
"""

from ._card import (CARD_NAME, CARD_REPAIR, README_NAME, SHARD_FILES, CardError, DatasetCard, FileRecord,
                    OldLayoutError, ShardRecord, SplitRecord, dataset_readme, migrate_command, read_card)
from ._format import (AXES, MANIFESTS_DIR, PARTITION_KEY, SCHEMA_VERSION, TABLE_SCHEMA_VERSION, TABLES,
                      batch_from_tables, legacy_shard_paths, points_schema, shard_paths, sources_schema)
from ._generate import DatasetExistsError, generate, produce_shard
from ._migrate import MigrationResult, migrate_layout
from ._shards import FINGERPRINT_VERSION, Shard, build_shard, fingerprint, shard_rng, value_columns
from ._spec import SPLIT_NAME, DatasetSpec, SplitSpec, canonical_split

__all__ = [
    "AXES", "CARD_NAME", "CARD_REPAIR", "MANIFESTS_DIR", "PARTITION_KEY", "README_NAME", "SHARD_FILES",
    "SPLIT_NAME", "CardError", "DatasetCard", "DatasetExistsError", "DatasetSpec", "FINGERPRINT_VERSION",
    "FileRecord", "MigrationResult", "OldLayoutError", "SCHEMA_VERSION", "Shard", "ShardRecord", "SplitRecord",
    "SplitSpec", "TABLES", "TABLE_SCHEMA_VERSION", "batch_from_tables", "build_shard", "canonical_split",
    "dataset_readme", "fingerprint", "generate", "legacy_shard_paths", "migrate_command", "migrate_layout",
    "points_schema", "produce_shard", "read_card", "shard_paths", "shard_rng", "sources_schema", "value_columns",
]
