"""Verifying the committed records: every check a record must pass before it counts.

What ``verify_records`` catches, and how:

- without rescoring: the schema; the content digest (any edit after ``submit`` wrote the record:
  a metric, a timing, inside/p90, provenance, anything); dataset checksums against the registry;
  checkpoint hashes; the flags (``additive``, ``harmonic``), the parameter count, the
  hyperparameters and training dataset, re-derived from the checkpoint and the model class; the
  seed summary against its own values; duplicate names (up to case) and one checkpoint entered
  twice for one dataset; and a local result (a limited or mini dataset, too few seeds, missing
  submission metadata: ``_standing.local_reasons``) is refused as official unless ``allow_local``
  (the board lists such records apart).
- with ``rescore``: every metric of every split (and every seed's values) re-evaluated, and the
  warm speed and the short M-sweep scaling rows re-timed on the record's device (see
  :mod:`._rescore` for the tolerances).

The digest is tamper evidence against edits by hand, not a signature: whoever recomputes it can
forge it, which is why ``--rescore`` re-derives every number. Records of version 1 (before the
digest and the warm timing) are upgraded by :func:`migrate_records` (``fieldbench leaderboard
migrate``), only after they pass a rescore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import jsonschema
import numpy as np

from .._io import file_sha256
from ..datasets import registry_entries
from ..models import CheckpointUnavailableError, Predictor
from ..models._registry import REFERENCE
from ..models._shipped import SHIPPED_PATH
from ._derived import load_model, model_properties, seed_std
from ._record import (DIGEST_FIELD, RECORD_VERSION, RecordProblem, checkpoint_entries, locate, read_all,
                      record_digest, record_path, record_schema, repository_of, schema_problem)
from ._rescore import METRIC_RTOL, close, rescore_record
from ._standing import local_reasons

__all__ = ["verify_records"]


def _migrate_command(directory) -> str:
    return f"fieldbench leaderboard --records {directory} migrate"


def verify_records(directory: str | Path = "leaderboard/records", *, rescore: bool = False,
                   rescore_tolerance: float = METRIC_RTOL, allow_local: bool = False,
                   only: Iterable[str | Path] | None = None) -> list[RecordProblem]:
    """Validate every record (see the module's docstring for what is checked, and how); with
    ``rescore``, re-evaluate and re-time each record and compare; with ``only`` (record files), rescore
    just those (what a pull request added or changed: every record is still checked without a
    rescore). A file of ``only`` that is not a record in ``directory`` raises ValueError. A local
    result (``_standing.local_reasons``) is a problem unless ``allow_local`` (for a folder of local
    runs). Returns the problems found (empty: all good), one line each naming the problem and the fix."""
    directory = Path(directory)
    entries = read_all(directory)
    chosen = None
    if only is not None:
        chosen = {Path(path).resolve() for path in only}
        unknown = sorted(str(path) for path in chosen - {Path(path).resolve() for path, _ in entries})
        if unknown:
            raise ValueError(f"not a record file in {directory}: {', '.join(unknown)}; name files of that folder")
    return verify_entries(entries, directory,
                          rescore=lambda path: rescore and (chosen is None or Path(path).resolve() in chosen),
                          tolerance=rescore_tolerance, allow_local=allow_local)


def verify_entries(entries, directory: Path, *, rescore, tolerance: float, legacy: Mapping[str, int] | None = None,
                   allow_local: bool = False):
    """The checks of :func:`verify_records` over ``entries``; ``rescore(path)`` says which records to
    rescore; ``legacy`` (path -> record version 1 or 2) are earlier records checked as if current,
    short of what their version lacks (for the migration)."""
    problems: list[RecordProblem] = []
    legacy = legacy or {}
    schemas = {RECORD_VERSION: record_schema()}
    schemas[2] = _lacking(schemas[RECORD_VERSION], [], val=True)
    schemas[1] = _lacking(schemas[RECORD_VERSION], [DIGEST_FIELD, "speed"], val=True)
    seen: dict[tuple, str] = {}
    checkpoints: dict[tuple, str] = {}
    if not entries:
        problems.append(RecordProblem(str(directory), "no records found: submit one with `fieldbench submit`"))
    for path, record in entries:
        if isinstance(record, str):
            problems.append(RecordProblem(path, record))
            continue
        version = legacy.get(path, RECORD_VERSION)
        if record.get("record_version") in OLD_VERSIONS and path not in legacy:
            lacks = OLD_VERSIONS[record["record_version"]]
            problems.append(RecordProblem(path, f"record version {record['record_version']} has no {lacks}: run "
                                                f"`{_migrate_command(directory)}` (it checks the record and "
                                                "upgrades it only if it passes)"))
            continue
        candidate = record | {"record_version": RECORD_VERSION} if path in legacy else record
        try:
            jsonschema.validate(candidate, schemas[version])
        except jsonschema.ValidationError as error:
            problems.append(RecordProblem(path, f"schema: {schema_problem(error)}; restore the file or resubmit "
                                                "the record"))
            continue

        def problem(text: str, path=path, problems=problems) -> None:  # used within this iteration only
            problems.append(RecordProblem(path, text))

        if version > 1 and record[DIGEST_FIELD] != record_digest(record):
            problem(f"content digest ({DIGEST_FIELD}) does not match: the record was edited after `fieldbench "
                    "submit` wrote it; restore it (git checkout) or resubmit it with `fieldbench submit ... --replace`")
        reasons = local_reasons(record)
        if reasons and not allow_local:
            # A local result must not pass as one comparable with the board's (its other checks still run).
            problem(f"a local result, not an official one: {'; '.join(reasons)}; or accept local results with "
                    "`fieldbench leaderboard verify --allow-local` (verify_records(..., allow_local=True))")
        key = (record["name"], record["dataset"]["name"])
        folded = (record["name"].casefold(), record["dataset"]["name"])  # one file on a case-insensitive disk
        if folded in seen:
            problem(f"duplicate of {seen[folded]} (same name, up to case, and dataset): remove one")
        seen[folded] = path
        if Path(path).name != record_path("", *key).name:
            problem(f"file name should be {record_path('', *key).name}: rename it")
        try:
            registered = registry_entries(record["dataset"]["name"])["content_sha256"]
        except (KeyError, ValueError, RuntimeError) as error:
            problem(f"dataset not in the registry: {error}")
            registered = None
        for field in ("content_sha256", "registry_content_sha256"):
            if registered and record["dataset"][field] != registered:
                problem(f"dataset {field} does not match the registry: rescore it on the registered dataset "
                        "(`fieldbench submit ... --replace`)")
        for split, values in record["metrics"].items():
            for metric in ("phi_error", "field_error"):
                value = values[metric]
                if not (isinstance(value, (int, float)) and 0 <= value < 1e6):
                    problem(f"{split} {metric} = {value!r} is out of range")
        files = _check_checkpoints(record, directory, problem)
        sha = record["model"].get("checkpoint_sha256")
        if sha:
            other = checkpoints.setdefault((sha, record["dataset"]["name"]), path)
            if other != path:
                problem(f"scores the same checkpoint as {other}: one model, one entry; remove one")
        predictor = None
        if files is not None:
            predictor = _check_properties(record, files, problem)
        _check_seed_summary(record, problem)
        if predictor is not None and rescore(path):  # every record that can be rescored, problems elsewhere or not
            problems += rescore_record(path, record, predictor, tolerance, directory)
    return problems


#: What each earlier record version lacks (``migrate_records`` adds it).
OLD_VERSIONS = {1: "content digest and no warm timing", 2: "validation-split score"}


def _lacking(schema: dict, fields: list[str], *, val: bool) -> dict:
    """``schema`` without the top-level ``fields`` required and, with ``val``, without the validation split."""
    out = schema | {"required": [k for k in schema["required"] if k not in fields]}
    if val:
        metrics = schema["properties"]["metrics"]
        out["properties"] = schema["properties"] | {"metrics": metrics | {"required": [], "minProperties": 1}}
    return out


def _check_checkpoints(record: dict, directory: Path, problem) -> list[Path] | None:
    """The record's checkpoints (the model's, then the other seeds') exist, locally or downloaded from
    the record's URLs, and match their sha256: their files, or None if one does not."""
    files, intact = [], True
    if not record["model"].get("checkpoint") and record["model"]["spec"] not in REFERENCE:
        problem(f"{record['model']['spec']} is a learned model but the record names no checkpoint: resubmit it")
        return None
    for number, entry in enumerate(checkpoint_entries(record)):
        what = "checkpoint" if number == 0 else "seed checkpoint"
        try:
            file = locate(entry, directory)
        except (CheckpointUnavailableError, ValueError) as error:
            problem(f"{what} {entry['path']}: {error}")
            intact = False
            continue
        if not file.is_file():
            problem(f"{what} {entry['path']} is missing: restore it (it is resolved against "
                    f"{repository_of(directory)}, a shipped one by its file name in {SHIPPED_PATH}), or name "
                    "its URL in the record (submit --checkpoint-url)")
            intact = False
        elif file_sha256(file) != entry["sha256"]:
            problem(f"{what} {entry['path']} does not match the record's sha256: restore it, or resubmit")
            intact = False
        files.append(file)
    seeds = (record.get("seeds") or {}).get("checkpoints") or []
    first = seeds[0] if seeds else None
    if first and (first["path"] != record["model"].get("checkpoint")
                  or first["sha256"] != record["model"]["checkpoint_sha256"]):
        problem("the first seed checkpoint is not the record's checkpoint (whose metrics the record shows): resubmit")
    return files if intact else None


def _check_properties(record: dict, files: list[Path], problem) -> Predictor | None:
    """Re-derive the model's flags, parameter count, code, hyperparameters and training dataset from
    the checkpoint (``files``: the model's, then the other seeds') and the model class, and compare;
    the predictor (for a rescore), or None."""
    model = record["model"]
    try:
        predictor, meta = load_model(model["spec"], files[0] if files else None)
        found = model_properties(model["spec"], predictor, meta)
        seed_meta = [load_model(model["spec"], file)[1] for file in files[1:]]
    except (ValueError, KeyError, TypeError, FileNotFoundError, ImportError) as error:
        problem(f"the model cannot be loaded to re-derive its properties: {error}")
        return None
    for key, value in found.items():
        recorded = model.get(key)
        if key == "code":  # the code's hash is provenance (code evolves); where it lives is not
            recorded = {k: (recorded or {}).get(k) for k in value}
        if recorded != value:
            problem(f"model {key} is {recorded!r} in the record but {value!r} from the checkpoint and model class: "
                    "the record was edited; restore it or resubmit it")
    for file, seed_info in zip(files[1:], seed_meta):
        if seed_info.get("hyperparameters") != (meta or {}).get("hyperparameters"):
            problem(f"seed checkpoint {file} has other hyperparameters than the record's model: seeds of "
                    "one record must be one model; resubmit with matching checkpoints")
    return predictor


def _check_seed_summary(record: dict, problem) -> None:
    """mean and std follow from the values; the first seed's values are the record's metrics."""
    seeds = record.get("seeds")
    if not seeds:
        return
    if seeds["count"] != len(seeds["checkpoints"]):
        problem(f"seeds count {seeds['count']} but {len(seeds['checkpoints'])} seed checkpoints: resubmit")
    for split, summaries in seeds["metrics"].items():
        for metric, summary in summaries.items():
            values = summary.get("values") or []
            where = f"seeds {split} {metric}"
            if len(values) != seeds["count"] or any(not isinstance(v, (int, float)) for v in values):
                problem(f"{where} holds {len(values)} values for {seeds['count']} seeds: resubmit")
                continue
            if not (close(summary.get("mean"), float(np.mean(values)), 1e-9)
                    and close(summary.get("std"), seed_std(values), 1e-9)):
                problem(f"{where}: mean or std do not follow from the values: the record was edited; resubmit")
            headline = record["metrics"].get(split, {}).get(metric)
            if headline is not None and not close(values[0], headline, 1e-12):
                problem(f"{where}: the first seed's value {values[0]!r} is not the record's {metric} {headline!r}")

