"""Leaderboard: result records with provenance, their validation, and the rendered board.

``_record`` is the record file (schema, digest, name, path, reading and writing); ``_submit``
scores a model and writes its records; ``_verify`` checks them, ``_rescore`` re-derives their
numbers, ``_migrate`` upgrades version-1 records; ``_render`` draws the board and ``_benchmark``
runs the benchmark end to end.
"""

from ._benchmark import benchmark_tables, run_benchmark, submit_measured
from ._migrate import migrate_records
from ._record import (RECORD_VERSION, TEST_SPLITS, RecordProblem, canonical_record, load_records, record_digest,
                      record_path, record_schema)
from ._render import render
from ._submit import submit
from ._verify import verify_records

__all__ = ["RECORD_VERSION", "RecordProblem", "TEST_SPLITS", "canonical_record", "load_records", "migrate_records",
           "record_digest", "record_path", "record_schema", "render", "submit", "verify_records", "benchmark_tables",
           "run_benchmark", "submit_measured"]
