"""Leaderboard: result records with provenance, their validation, and the rendered board."""

from ._benchmark import benchmark_tables, run_benchmark, submit_measured
from ._records import (RECORD_VERSION, TEST_SPLITS, RecordProblem, load_records, migrate_records, record_digest,
                       record_path, record_schema, submit, verify_records)
from ._render import render

__all__ = ["RECORD_VERSION", "RecordProblem", "TEST_SPLITS", "load_records", "migrate_records", "record_digest",
           "record_path", "record_schema", "render", "submit", "verify_records", "benchmark_tables", "run_benchmark",
           "submit_measured"]
