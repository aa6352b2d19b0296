"""Migrating records of earlier versions to the current one (``fieldbench leaderboard migrate``).

- version 1 (no content digest, no warm timing): rescored first (every metric and seed value
  re-evaluated, the scaling rows re-timed); only a record with no problem is upgraded, its warm
  ``speed`` measured here;
- version 2 (no validation score): checked as ``verify`` checks it, its digest included (an edited
  record is not laundered by a new digest); the validation split is scored for the record's model
  and every seed; ``metadata`` (record name -> submission block) fills a record's missing
  ``submission``.

Records already current are checked but never rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..evaluation import evaluate
from ._derived import load_model, metrics_of, seed_metrics, warm_speed
from ._record import RECORD_VERSION, RecordProblem, checkpoint_entries, locate, read_all, write_record
from ._rescore import METRIC_RTOL
from ._standing import VALIDATION_SPLIT
from ._submit import check_submission
from ._verify import verify_entries

__all__ = ["migrate_records"]


def migrate_records(directory: str | Path = "leaderboard/records", *, rescore_tolerance: float = METRIC_RTOL,
                    metadata: Mapping[str, dict] | None = None) -> tuple[list[Path], list[RecordProblem]]:
    """Upgrade every record of version 1 or 2 in ``directory`` (see the module docstring). Returns
    (the rewritten files, the problems found); a record with a problem is left as it is."""
    directory = Path(directory)
    metadata = {name: check_submission(block) for name, block in (metadata or {}).items()}
    entries = read_all(directory)
    legacy = {path: record["record_version"] for path, record in entries
              if isinstance(record, dict) and record.get("record_version") in (1, 2)}
    # A local record may be upgraded too: the migration changes its format, not its standing
    # (verify still refuses it as official).
    problems = verify_entries(entries, directory, rescore=lambda path: legacy.get(path) == 1,
                              tolerance=rescore_tolerance, legacy=legacy, allow_local=True)
    failed = {p.path for p in problems}
    written = []
    for path, record in entries:
        if path not in legacy or path in failed:
            continue
        files = [locate(entry, directory) for entry in checkpoint_entries(record)]
        predictor, _ = load_model(record["model"]["spec"], files[0] if files else None)
        upgraded = {"record_version": RECORD_VERSION} | {k: v for k, v in record.items() if k != "record_version"}
        dataset, limit = record["dataset"]["name"], record["dataset"].get("samples_limit")
        if legacy[path] == 1:
            upgraded["speed"] = warm_speed(predictor, dataset, limit)
        if VALIDATION_SPLIT not in record["metrics"]:
            upgraded["metrics"] = record["metrics"] | {
                VALIDATION_SPLIT: metrics_of(evaluate(predictor, dataset, VALIDATION_SPLIT, name=record["name"],
                                                      limit=limit))}
        if upgraded.get("seeds") and VALIDATION_SPLIT not in upgraded["seeds"]["metrics"]:
            per_seed = [{VALIDATION_SPLIT: upgraded["metrics"][VALIDATION_SPLIT]}] + [
                {VALIDATION_SPLIT: evaluate(load_model(record["model"]["spec"], file)[0], dataset, VALIDATION_SPLIT,
                                            name=record["name"], limit=limit).as_dict()} for file in files[1:]]
            upgraded["seeds"] = upgraded["seeds"] | {
                "metrics": upgraded["seeds"]["metrics"] | seed_metrics(per_seed)}
        if not upgraded.get("submission") and metadata.get(record["name"]):
            upgraded["submission"] = metadata[record["name"]]
        write_record(Path(path), upgraded)
        written.append(Path(path))
    return written, problems
