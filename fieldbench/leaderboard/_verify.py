"""Verifying the committed records: every check a record must pass before it counts.

What ``verify_records`` catches, and how:

- without rescoring: the schema; the content digest (any edit after ``submit`` wrote the record:
  a metric, a timing, inside/p90, provenance, anything); dataset checksums against the registry;
  checkpoint hashes; the flags (``additive``, ``harmonic``), the parameter count, the
  hyperparameters and training dataset, re-derived from the checkpoint and the model class; the
  seed summary against its own values; duplicate names (up to case) and one checkpoint entered
  twice for one dataset; and a record scored on the first N samples only (``dataset.samples_limit``
  not null) is a local result, refused as official unless ``allow_limited`` (the board lists such
  records apart).
- with ``rescore``: every metric of every split (and every seed's values) re-evaluated, and the
  warm speed and the short M-sweep scaling rows re-timed on the record's device (see
  :mod:`._rescore` for the tolerances).

The digest is tamper evidence against edits by hand, not a signature: whoever recomputes it can
forge it, which is why ``--rescore`` re-derives every number. Records of version 1 (before the
digest and the warm timing) are upgraded by :func:`migrate_records` (``fieldbench leaderboard
migrate``), only after they pass a rescore.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import jsonschema
import numpy as np

from .._io import file_sha256
from ..datasets import registry_entries
from ..models import Predictor
from ..models._registry import REFERENCE
from ..models._shipped import SHIPPED_PATH
from ._derived import load_model, model_properties, seed_std
from ._record import (DIGEST_FIELD, RECORD_VERSION, RecordProblem, read_all, record_digest, record_path,
                      record_schema, repository_of, resolve_checkpoint, schema_problem)
from ._rescore import METRIC_RTOL, close, rescore_record

__all__ = ["verify_records"]


def _migrate_command(directory) -> str:
    return f"fieldbench leaderboard --records {directory} migrate"


def verify_records(directory: str | Path = "leaderboard/records", *, rescore: bool = False,
                   rescore_tolerance: float = METRIC_RTOL, allow_limited: bool = False,
                   only: Iterable[str | Path] | None = None) -> list[RecordProblem]:
    """Validate every record (see the module's docstring for what is checked, and how); with
    ``rescore``, re-evaluate and re-time each record and compare; with ``only`` (record files), rescore
    just those (what a pull request added or changed: every record is still checked without a
    rescore). A file of ``only`` that is not a record in ``directory`` raises ValueError. A record scored on the first N
    samples only (``dataset.samples_limit``) is a local result, not an official one: a problem
    unless ``allow_limited`` (for a folder of local runs). Returns the problems found (empty: all
    good), one line each naming the problem and the fix."""
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
                          tolerance=rescore_tolerance, allow_limited=allow_limited)


def verify_entries(entries, directory: Path, *, rescore, tolerance: float, legacy: frozenset = frozenset(),
                   allow_limited: bool = False):
    """The checks of :func:`verify_records` over ``entries``; ``rescore(path)`` says which records to
    rescore; ``legacy`` paths are version-1 records checked as if current (for the migration)."""
    problems: list[RecordProblem] = []
    schema = record_schema()
    # A version-1 record, checked for migration, has no digest and no warm timing yet.
    legacy_schema = schema | {"required": [k for k in schema["required"] if k not in (DIGEST_FIELD, "speed")]}
    seen: dict[tuple, str] = {}
    checkpoints: dict[tuple, str] = {}
    if not entries:
        problems.append(RecordProblem(str(directory), "no records found: submit one with `fieldbench submit`"))
    for path, record in entries:
        if isinstance(record, str):
            problems.append(RecordProblem(path, record))
            continue
        old = path in legacy
        if record.get("record_version") == 1 and not old:
            problems.append(RecordProblem(path, f"record version 1 has no content digest and no warm timing: run "
                                                f"`{_migrate_command(directory)}` (it rescores the record and "
                                                "upgrades it only if every number is reproduced)"))
            continue
        candidate = record | {"record_version": RECORD_VERSION} if old else record
        try:
            jsonschema.validate(candidate, legacy_schema if old else schema)
        except jsonschema.ValidationError as error:
            problems.append(RecordProblem(path, f"schema: {schema_problem(error)}; restore the file or resubmit "
                                                "the record"))
            continue

        def problem(text: str, path=path, problems=problems) -> None:  # used within this iteration only
            problems.append(RecordProblem(path, text))

        if not old and record[DIGEST_FIELD] != record_digest(record):
            problem(f"content digest ({DIGEST_FIELD}) does not match: the record was edited after `fieldbench "
                    "submit` wrote it; restore it (git checkout) or resubmit it with `fieldbench submit ... --replace`")
        limit = record["dataset"].get("samples_limit")
        if limit is not None and not allow_limited:
            # Medians over the first few samples are not the split's: such a record must not pass as
            # a result comparable with the board's (its other checks still run).
            problem(f"scored on only the first {limit} samples of each split (dataset.samples_limit), a local "
                    "result, not an official one: resubmit it on the full splits (submit without a limit, "
                    "with --replace), or accept local results with `fieldbench leaderboard verify --allow-limited` "
                    "(verify_records(..., allow_limited=True))")
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
        intact = _check_checkpoints(record, directory, problem)
        sha = record["model"].get("checkpoint_sha256")
        if sha:
            other = checkpoints.setdefault((sha, record["dataset"]["name"]), path)
            if other != path:
                problem(f"scores the same checkpoint as {other}: one model, one entry; remove one")
        predictor = None
        if intact:
            predictor = _check_properties(record, directory, problem)
        _check_seed_summary(record, problem)
        if predictor is not None and rescore(path):  # every record that can be rescored, problems elsewhere or not
            problems += rescore_record(path, record, predictor, tolerance, directory)
    return problems


def _check_checkpoints(record: dict, directory: Path, problem) -> bool:
    """The record's checkpoint and seed checkpoints exist and match their sha256; True if so."""
    intact = True
    checkpoint = record["model"].get("checkpoint")
    if checkpoint:
        file = resolve_checkpoint(checkpoint, directory)
        if not file.is_file():
            problem(f"checkpoint {checkpoint} is missing: restore it (it is resolved against "
                    f"{repository_of(directory)}, a shipped one by its file name in {SHIPPED_PATH})")
            intact = False
        elif file_sha256(file) != record["model"]["checkpoint_sha256"]:
            problem(f"checkpoint {checkpoint} does not match the record's sha256: restore it, or resubmit")
            intact = False
    elif record["model"]["spec"] not in REFERENCE:
        problem(f"{record['model']['spec']} is a learned model but the record names no checkpoint: resubmit it")
        intact = False
    seeds = record.get("seeds") or {}
    for seed in seeds.get("checkpoints", []):
        file = resolve_checkpoint(seed["path"], directory)
        if not file.is_file() or file_sha256(file) != seed["sha256"]:
            problem(f"seed checkpoint {seed['path']} is missing or does not match: restore it, or resubmit")
            intact = False
    first = (seeds.get("checkpoints") or [None])[0]
    if first and (first["path"] != checkpoint or first["sha256"] != record["model"]["checkpoint_sha256"]):
        problem("the first seed checkpoint is not the record's checkpoint (whose metrics the record shows): resubmit")
    return intact


def _check_properties(record: dict, directory: Path, problem) -> Predictor | None:
    """Re-derive the model's flags, parameter count, code, hyperparameters and training dataset from
    the checkpoint and the model class, and compare; the predictor (for a rescore), or None."""
    model = record["model"]
    stored = model.get("checkpoint")
    try:
        predictor, meta = load_model(model["spec"], resolve_checkpoint(stored, directory) if stored else None)
        found = model_properties(model["spec"], predictor, meta)
        seed_meta = [load_model(model["spec"], resolve_checkpoint(s["path"], directory))[1]
                     for s in (record.get("seeds") or {}).get("checkpoints", [])[1:]]
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
    for seed, seed_info in zip((record.get("seeds") or {}).get("checkpoints", [])[1:], seed_meta):
        if seed_info.get("hyperparameters") != (meta or {}).get("hyperparameters"):
            problem(f"seed checkpoint {seed['path']} has other hyperparameters than the record's model: seeds of "
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

