"""Migrating version-1 records (before the content digest and the warm timing) to the current
version, only after each passes a rescore."""

from __future__ import annotations

from pathlib import Path

from ._derived import load_model, warm_speed
from ._record import RECORD_VERSION, RecordProblem, read_all, resolve_checkpoint, write_record
from ._rescore import METRIC_RTOL
from ._verify import verify_entries

__all__ = ["migrate_records"]


def migrate_records(directory: str | Path = "leaderboard/records", *,
                    rescore_tolerance: float = METRIC_RTOL) -> tuple[list[Path], list[RecordProblem]]:
    """Upgrade version-1 records (no content digest, no warm timing) to the current version.

    Each is first checked as ``verify_records(rescore=True)`` would check it (every metric and seed
    value re-evaluated, the scaling rows re-timed on the same device); only a record with no
    problem gets its warm ``speed`` measured here and its digest stamped, and is rewritten. Records
    already current are checked but never rewritten: re-stamping an edited record would launder the
    edit. Returns (the rewritten files, the problems found).
    """
    directory = Path(directory)
    entries = read_all(directory)
    legacy = frozenset(path for path, record in entries
                       if isinstance(record, dict) and record.get("record_version") == 1)
    # A limited record may be upgraded too: the migration changes its format, not its standing
    # (verify still refuses it as official).
    problems = verify_entries(entries, directory, rescore=lambda path: path in legacy,
                              tolerance=rescore_tolerance, legacy=legacy, allow_limited=True)
    failed = {p.path for p in problems}
    written = []
    for path, record in entries:
        if path not in legacy or path in failed:
            continue
        stored = record["model"].get("checkpoint")
        predictor, _ = load_model(record["model"]["spec"], resolve_checkpoint(stored, directory) if stored else None)
        upgraded = {"record_version": RECORD_VERSION} | {k: v for k, v in record.items() if k != "record_version"}
        upgraded["speed"] = warm_speed(predictor, record["dataset"]["name"], record["dataset"].get("samples_limit"))
        write_record(Path(path), upgraded)
        written.append(Path(path))
    return written, problems
