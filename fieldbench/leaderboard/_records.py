"""Result records: one JSON per (model, dataset), with full provenance, validated before it counts.

A record holds the model's properties and parameter count, the checkpoint's and the code's sha256,
the dataset's content checksum next to the registry's, the fieldbench version and git commit, the
device and date, every metric per test split, the warm evaluation speed and the device it was
timed on, the scaling figures, and ``record_sha256``: the sha256 of the record's canonical JSON
(:func:`record_digest`). ``submit`` writes one atomically and never overwrites an existing record
unless asked to; ``verify_records`` checks them all.

What ``verify_records`` catches, and how:

- without rescoring: the schema; the content digest (any edit after ``submit`` wrote the record:
  a metric, a timing, inside/p90, provenance, anything); dataset checksums against the registry;
  checkpoint hashes; the flags (``additive``, ``harmonic``), the parameter count, the
  hyperparameters and training dataset, re-derived from the checkpoint and the model class; the
  seed summary against its own values; duplicate names (up to case) and one checkpoint entered
  twice for one dataset; and a record scored on the first N samples only (``dataset.samples_limit``
  not null) is a local result, refused as official unless ``allow_limited`` (the board lists such
  records apart).
- with ``rescore``: every metric of every split (and every seed's values) re-evaluated:
  counts (samples, points, inside/outside/bin points, excluded) must agree exactly, errors (%)
  within ``METRIC_RTOL`` relative (+ ``METRIC_ATOL``); the warm evaluation speed and every
  M-sweep scaling row of the record's method recorded at up to ``RETIME_MAX_SECONDS`` per call
  re-timed, within a factor ``TIMING_FACTOR`` either way (a row recorded under
  ``RETIME_MIN_SECONDS`` only has to re-time under ``TIMING_FACTOR`` times that), when this
  machine's device is the record's (timings on other devices are not comparable, so they are not
  compared). Longer rows, N-sweep rows and the slopes are not re-timed. The evaluator's total
  wall time (``metrics.<split>.seconds``, compilation included) is informative only and never
  compared.

The digest is tamper evidence against edits by hand, not a signature: whoever recomputes it can
forge it, which is why ``--rescore`` re-derives every number. Records of version 1 (before the
digest and the warm timing) are upgraded by :func:`migrate_records` (``fieldbench leaderboard
migrate``), only after they pass a rescore.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import platform
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import jax
import jsonschema
import numpy as np

from .._io import atomic_write_text, file_sha256, read_json
from .._version import __version__
from ..bench import device_description
from ..datasets import open_dataset, registry_entries
from ..evaluation import evaluate
from ..models import Predictor, load_checkpoint, load_predictor
from ..models._registry import LEARNED, REFERENCE, code_location, git_commit
from ..models._speed import evaluation_speed, timing_device

__all__ = ["RECORD_VERSION", "TEST_SPLITS", "submit", "load_records", "record_path", "verify_records",
           "migrate_records", "record_digest", "RecordProblem", "record_schema"]

RECORD_VERSION = 2
#: The field holding the record's content digest.
DIGEST_FIELD = "record_sha256"
#: --rescore tolerances: errors in percent; counts must agree exactly.
METRIC_RTOL, METRIC_ATOL = 1e-3, 1e-9
#: --rescore: a re-timed figure on the same device must lie within this factor of the record's,
#: either way (other work on a shared machine slows a best-of timing; a mismatch is measured once
#: more, longer, before it counts).
TIMING_FACTOR = 3.0
#: --rescore re-times the M-sweep scaling rows recorded at up to RETIME_MAX_SECONDS per call (longer
#: ones would make a rescore cost as much as the original sweep). A row recorded under
#: RETIME_MIN_SECONDS measures mostly dispatch overhead and the machine's load, so it is not held to
#: the factor: it only has to re-time under TIMING_FACTOR x RETIME_MIN_SECONDS. Selecting rows by
#: the recorded figure alone would let a row forged below the minimum escape the re-timing.
RETIME_MIN_SECONDS, RETIME_MAX_SECONDS = 1e-3, 1.0
#: --rescore lists at most this many differences per split (then how many more).
SHOWN_DIFFERENCES = 8
#: The warm speed measurement: samples of the test split per call and timed calls.
SPEED_SPLIT, SPEED_SAMPLES, SPEED_REPEATS = "test-multi", 64, 5
TEST_SPLITS = ("test-single", "test-multi", "test-overlap")


@dataclasses.dataclass(frozen=True)
class RecordProblem:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def record_schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("record.schema.json").read_text())


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")


def check_record_name(name: str, directory: str | Path | None = None) -> None:
    """Leaderboard names are file-name safe: letters, digits and . _ + - (no path separators). With
    ``directory``, also refuse a name that differs only in case from a record's there (on any
    dataset): on a case-insensitive file system the two are one file, and on the board two names
    for what reads as one model. Cheap, so callers run it before any evaluation or timing."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"leaderboard name {name!r} is not allowed: use 1-80 letters, digits and . _ + - "
                         "(starting with a letter or digit, no '..'), e.g. --name my-model-v2")
    if directory is None or not Path(directory).is_dir():
        return
    for path in sorted(Path(directory).glob("*__*.json")):
        existing = path.stem.rsplit("__", 1)[0]  # record_path: NAME__DATASET.json; names may hold "__"
        if existing != name and existing.casefold() == name.casefold():
            raise ValueError(f"leaderboard name {name!r} differs only in case from the existing record {path}: "
                             f"use {existing!r} (with --replace to overwrite it) or a distinct name")


def record_path(directory: str | Path, name: str, dataset: str) -> Path:
    return Path(directory) / f"{name}__{dataset}.json"


def _parameter_count(model) -> int:
    import equinox as eqx

    if not isinstance(model, eqx.Module):
        return 0
    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))


def _repository(directory: str | Path) -> Path:
    """The records' repository: the folder two levels above ``leaderboard/records``."""
    resolved = Path(directory).resolve()
    return resolved.parents[1] if len(resolved.parents) > 1 else resolved


def _stored_path(checkpoint: Path, directory: Path) -> str:
    """The checkpoint as a record stores it: relative to the records' repository when it lies
    inside it, so records verify on any clone."""
    root = _repository(directory)
    try:
        return checkpoint.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(checkpoint.resolve())


def resolve_checkpoint(stored: str, directory: str | Path) -> Path:
    """Where a record's checkpoint path points: absolute as is, relative to the records' repository."""
    path = Path(stored)
    return path if path.is_absolute() else _repository(directory) / path


def _seed_summary(per_seed: list[dict], checkpoints: list[Path], directory: Path) -> dict:
    """mean, std (n - 1) and the values over seeds of every headline metric of every split."""
    metrics = {}
    for split in per_seed[0]:
        metrics[split] = {}
        for metric in SEED_METRICS:
            values = [float(seed[split][metric]) for seed in per_seed]
            metrics[split][metric] = {"mean": float(np.mean(values)), "std": _std(values), "values": values}
    return {"count": len(per_seed), "metrics": metrics,
            "checkpoints": [{"path": _stored_path(c, directory), "sha256": file_sha256(c)} for c in checkpoints]}


SEED_METRICS = ("phi_error", "field_error", "phi_relative_l2", "field_relative_l2")


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _load(spec: str, checkpoint: str | Path | None) -> tuple[Predictor, dict | None]:
    """The predictor and, for a learned model, its checkpoint's metadata."""
    if spec in REFERENCE:
        return load_predictor(spec), None
    if checkpoint is None:
        raise ValueError(f"{spec} is a learned model: pass its checkpoint (--checkpoint FILE)")
    return load_checkpoint(checkpoint, spec)


def _properties(spec: str, predictor: Predictor, meta: dict | None) -> dict:
    """What a record says about its model that the model itself determines: the flags and the
    parameter count from the loaded model, the code's module and class, and for a learned model the
    hyperparameters and training dataset its checkpoint's metadata holds."""
    if meta is None:
        code = {"module": type(predictor).__module__, "class": type(predictor).__qualname__}
    elif spec in LEARNED:
        code = {k: v for k, v in code_location(spec).items() if k != "sha256"}
    else:  # a user's file: its path differs between machines, its class does not
        code = {"class": code_location(spec)["class"]}
    found = {"additive": bool(predictor.additive), "harmonic": bool(predictor.harmonic),
             "parameters": _parameter_count(predictor), "code": code}
    if meta is not None:
        found |= {"hyperparameters": meta.get("hyperparameters", {}), "trained_on": meta.get("dataset")}
    return found


def _model_block(spec: str, predictor: Predictor, meta: dict | None, checkpoint: str | Path | None,
                 directory: Path) -> dict:
    found = _properties(spec, predictor, meta)
    block = {"spec": spec, "checkpoint": None, "checkpoint_sha256": None, "trained_on": None} | found
    if meta is None:
        source = Path(__import__(found["code"]["module"], fromlist=["_"]).__file__)
        block["code"] = found["code"] | {"sha256": file_sha256(source)}
        return block
    checkpoint = Path(checkpoint).with_suffix(".eqx")
    block |= {"checkpoint": _stored_path(checkpoint, directory), "checkpoint_sha256": file_sha256(checkpoint),
              "code": code_location(spec)}
    return block


def record_digest(record: dict) -> str:
    """sha256 of the record's canonical JSON (keys sorted, no spaces, UTF-8), without the digest
    field itself and without the ``_path`` that :func:`load_records` adds. Floats are written by
    Python's shortest round-trip repr, so a record read back from its file digests the same."""
    content = {k: v for k, v in record.items() if k != DIGEST_FIELD and not k.startswith("_")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _schema_problem(error: jsonschema.ValidationError) -> str:
    """A schema error as one line: the field (a/b/c) and jsonschema's message, cut short (its message
    may quote a whole sub-object)."""
    field = "/".join(map(str, error.absolute_path)) or "(top level)"
    message = " ".join(error.message.split())
    return f"field {field}: {message if len(message) <= 160 else message[:157] + '...'}"


def _write_record(target: Path, record: dict) -> None:
    """Validate, stamp the digest, and write atomically (a reader never sees half a record)."""
    record = json.loads(json.dumps(_finite(record)))  # exactly what the file will hold
    record.pop(DIGEST_FIELD, None)
    record[DIGEST_FIELD] = record_digest(record)
    try:
        jsonschema.validate(record, record_schema())
    except jsonschema.ValidationError as error:
        raise ValueError(f"{target}: the record would not match the record schema, {_schema_problem(error)}; "
                         "the model's checkpoint metadata (its .json) or a scaling file fed it a bad value") from None
    atomic_write_text(target, json.dumps(record, indent=1) + "\n")


def submit(spec: str, name: str, *, checkpoint: str | Path | Sequence[str | Path] | None = None,
           datasets: Iterable[str] | None = None, directory: str | Path = "leaderboard/records",
           splits: Iterable[str] = TEST_SPLITS, scaling: dict | None = None, limit: int | None = None,
           replace: bool = False, seed_splits: Iterable[str] = ("test-single", "test-multi")) -> list[Path]:
    """Score a model on the test splits of standard datasets and write one record per dataset.

    Args:
      spec: a reference name (exact, fmm, fmm-pure), a baseline name, or 'path/file.py:Class'.
      name: the leaderboard name (letters, digits, . _ + -).
      checkpoint: the learned model's checkpoint (its JSON names the dataset it was trained on,
        which is then the default dataset), or a list of them, one per seed: the first gives the
        record's metrics (every split), and ``seeds`` holds mean, std and values over all of them
        on ``seed_splits`` (the splits the paper reports; each extra seed costs a full evaluation).
      datasets: standard dataset names (default: the training dataset, or every full standard
        dataset for reference methods).
      scaling: runtime-scaling figures to store (see ``fieldbench.evaluation.scaling``).
      limit: only the first N samples of each split (recorded as ``dataset.samples_limit``; for
        quick local runs: ``verify_records`` refuses such a record as official unless
        ``allow_limited``, and the board lists it apart, under "Local (limited) results").
      replace: overwrite an existing record of the same name and dataset.

    The record's ``speed`` is the warm evaluation time per point (``models._speed.evaluation_speed``:
    one warm-up call excluded, best of ``SPEED_REPEATS``) on ``SPEED_SAMPLES`` samples of
    ``SPEED_SPLIT`` (of the first ``limit``), with the device it ran on.
    """
    from ..datasets import list_datasets

    directory = Path(directory)
    check_record_name(name, directory)  # before any work: a bad or clashing name must not cost an evaluation
    seeds = [Path(c) for c in checkpoint] if isinstance(checkpoint, (list, tuple)) else None
    if seeds is not None and not seeds:
        raise ValueError("checkpoint is an empty list; pass one checkpoint per seed")
    checkpoint = seeds[0] if seeds else checkpoint
    predictor, meta = _load(spec, checkpoint)
    model = _model_block(spec, predictor, meta, checkpoint, directory)
    others = [load_predictor(spec, c) for c in seeds[1:]] if seeds else []
    if datasets is None:
        trained = (model.get("trained_on") or {}).get("name")
        datasets = [trained] if trained else [d for d in list_datasets() if not d.endswith("-mini")]
    datasets, splits = list(datasets), list(splits)
    for dataset in datasets:  # all of them before the first evaluation, not after the first record
        target = record_path(directory, name, dataset)
        if target.exists() and not replace:
            raise FileExistsError(f"{target} exists: a record for {name!r} on {dataset} is already on the board; "
                                  "choose another name or pass replace=True (--replace)")
    written = []
    for dataset in datasets:
        target = record_path(directory, name, dataset)
        handle = open_dataset(dataset)
        metrics = {}
        for split in splits:
            result = evaluate(predictor, dataset, split, name=name, limit=limit)
            metrics[split] = _metrics_of(result)
        summarised = [split for split in splits if split in set(seed_splits)] or splits
        per_seed = [{split: metrics[split] for split in summarised}] + [
            {split: evaluate(other, dataset, split, name=name, limit=limit).as_dict() for split in summarised}
            for other in others]
        record = {
            "record_version": RECORD_VERSION, "name": name, "model": model,
            "dataset": {"name": dataset, "content_sha256": handle.card.content_sha256,
                        "registry_content_sha256": registry_entries(dataset)["content_sha256"],
                        "samples_limit": limit},
            "metrics": metrics, "speed": _speed(predictor, dataset, limit), "scaling": scaling,
            "seeds": _seed_summary(per_seed, seeds, directory) if seeds else None,
            "provenance": {"fieldbench_version": __version__, "git_commit": git_commit(),
                           "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                           "device": device_description(), "python": platform.python_version(),
                           "jax": jax.__version__},
        }
        _write_record(target, record)
        written.append(target)
    return written


def _metrics_of(result) -> dict:
    return {k: v for k, v in result.as_dict().items() if k not in ("model", "dataset", "split")}


def _speed(predictor: Predictor, dataset: str, limit: int | None, repeats: int = SPEED_REPEATS) -> dict:
    samples = SPEED_SAMPLES if limit is None else min(SPEED_SAMPLES, limit)
    return evaluation_speed(predictor, dataset, SPEED_SPLIT, samples=samples, repeats=repeats)


def _finite(value):
    """NaN is not JSON: a metric that could not be computed (an empty bin) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


_FIX = "restore the file (git checkout) or resubmit the record with `fieldbench submit ... --replace`"


def _read(path: Path) -> dict:
    """One record file; a damaged one raises ValueError naming the file, the problem and the fix."""
    try:
        record = read_json(path, _FIX)
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error}); {_FIX}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} holds a JSON {type(record).__name__}, not a record object; {_FIX}")
    return record


def load_records(directory: str | Path = "leaderboard/records") -> list[dict]:
    """Every record in a directory (sorted by dataset, then name), each with its ``_path``."""
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        record = _read(path)
        record["_path"] = str(path)
        records.append(record)
    return sorted(records, key=lambda r: (str((r.get("dataset") or {}).get("name", "")), str(r.get("name", ""))))


def _migrate_command(directory) -> str:
    return f"fieldbench leaderboard --records {directory} migrate"


def verify_records(directory: str | Path = "leaderboard/records", *, rescore: bool = False,
                   rescore_tolerance: float = METRIC_RTOL, allow_limited: bool = False) -> list[RecordProblem]:
    """Validate every record (see the module's docstring for what is checked, and how); with
    ``rescore``, re-evaluate and re-time each record and compare. A record scored on the first N
    samples only (``dataset.samples_limit``) is a local result, not an official one: a problem
    unless ``allow_limited`` (for a folder of local runs). Returns the problems found (empty: all
    good), one line each naming the problem and the fix."""
    directory = Path(directory)
    return _verify(_read_all(directory), directory, rescore=lambda path: rescore, tolerance=rescore_tolerance,
                   allow_limited=allow_limited)


def _read_all(directory: Path) -> list[tuple[str, dict | str]]:
    """(path, record) for every file, or (path, the reason it cannot be read)."""
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            entries.append((str(path), _read(path)))
        except ValueError as error:  # the problem's line names the file already
            entries.append((str(path), str(error).removeprefix(f"{path} ")))
    return entries


def _verify(entries, directory: Path, *, rescore, tolerance: float, legacy: frozenset = frozenset(),
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
            problems.append(RecordProblem(path, f"schema: {_schema_problem(error)}; restore the file or resubmit "
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
            problems += _rescore(path, record, predictor, tolerance, directory)
    return problems


def _check_checkpoints(record: dict, directory: Path, problem) -> bool:
    """The record's checkpoint and seed checkpoints exist and match their sha256; True if so."""
    intact = True
    checkpoint = record["model"].get("checkpoint")
    if checkpoint:
        file = resolve_checkpoint(checkpoint, directory)
        if not file.is_file():
            problem(f"checkpoint {checkpoint} is missing: restore it (it is resolved against "
                    f"{_repository(directory)})")
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
        predictor, meta = _load(model["spec"], resolve_checkpoint(stored, directory) if stored else None)
        found = _properties(model["spec"], predictor, meta)
        seed_meta = [_load(model["spec"], resolve_checkpoint(s["path"], directory))[1]
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
            if not (_close(summary.get("mean"), float(np.mean(values)), 1e-9)
                    and _close(summary.get("std"), _std(values), 1e-9)):
                problem(f"{where}: mean or std do not follow from the values: the record was edited; resubmit")
            headline = record["metrics"].get(split, {}).get(metric)
            if headline is not None and not _close(values[0], headline, 1e-12):
                problem(f"{where}: the first seed's value {values[0]!r} is not the record's {metric} {headline!r}")


def _close(a, b, rtol: float, atol: float = 0.0) -> bool:
    """Equal within tolerance; None (a NaN written as null) equals None or NaN."""
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    if any(missing):
        return all(missing)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + atol


def _differences(recorded, fresh, where: str, tolerance: float) -> list[str]:
    """Every leaf of ``recorded`` that ``fresh`` does not reproduce: integers (counts) exactly,
    floats within ``tolerance`` relative (+ METRIC_ATOL)."""
    if isinstance(recorded, dict) and isinstance(fresh, dict):
        out = []
        for key in sorted(set(recorded) | set(fresh)):
            if key not in recorded or key not in fresh:
                out.append(f"{where}/{key} is {'missing from the record' if key not in recorded else 'not produced'}")
            else:
                out += _differences(recorded[key], fresh[key], f"{where}/{key}", tolerance)
        return out
    if isinstance(recorded, list) and isinstance(fresh, (list, tuple)):
        if len(recorded) != len(fresh):
            return [f"{where} has {len(recorded)} entries, rescoring gives {len(fresh)}"]
        return [d for i, (a, b) in enumerate(zip(recorded, fresh))
                for d in _differences(a, b, f"{where}/{i}", tolerance)]
    exact = isinstance(recorded, int) and isinstance(fresh, int)
    if not _close(recorded, fresh, 0.0 if exact else tolerance, 0.0 if exact else METRIC_ATOL):
        return [f"{where}: the record says {recorded!r}, rescoring gives {fresh!r}"]
    return []


def _rescore(path: str, record: dict, predictor: Predictor, tolerance: float, directory: Path) -> list[RecordProblem]:
    """Re-evaluate every split (and every seed's values), re-time the speed and the short scaling
    rows, and compare with the record."""
    dataset, limit = record["dataset"]["name"], record["dataset"].get("samples_limit")
    out = []

    def problem(text):
        out.append(RecordProblem(path, text))

    for split, values in record["metrics"].items():
        fresh = _finite(_metrics_of(evaluate(predictor, dataset, split, limit=limit)))
        recorded = {k: v for k, v in values.items() if k != "seconds"}  # wall time: informative only
        fresh.pop("seconds", None)
        differences = _differences(recorded, fresh, split, tolerance)
        for difference in differences[:SHOWN_DIFFERENCES]:
            problem(f"rescoring {difference}")
        if len(differences) > SHOWN_DIFFERENCES:
            problem(f"rescoring {split}: {len(differences) - SHOWN_DIFFERENCES} more differences; the record was "
                    "scored by another evaluator or edited: resubmit it with `fieldbench submit ... --replace`")
    seeds = record.get("seeds") or {}
    for index, seed in enumerate(seeds.get("checkpoints", [])[1:], 1):
        other = load_predictor(record["model"]["spec"], resolve_checkpoint(seed["path"], directory))
        for split, summaries in seeds["metrics"].items():
            fresh = evaluate(other, dataset, split, limit=limit)
            for metric, summary in summaries.items():
                if not _close(summary["values"][index], getattr(fresh, metric), tolerance, METRIC_ATOL):
                    problem(f"rescoring seed {index} ({seed['path']}) on {split} gives {metric} "
                            f"{getattr(fresh, metric):.6g}, the record says {summary['values'][index]:.6g}")
    out += [RecordProblem(path, text) for text in _retime(record, predictor)]
    return out


def _same_timing(recorded: float, measure, floor: float = 0.0) -> tuple[bool, float]:
    """Whether a re-timing agrees within TIMING_FACTOR (a figure recorded under ``floor`` only has to
    re-time under TIMING_FACTOR x ``floor``); a mismatch is measured once more, longer, before it
    counts (one run on a shared machine can be slowed by other work)."""
    def agrees(fresh: float) -> bool:
        if recorded < floor:
            return fresh <= TIMING_FACTOR * floor
        return recorded > 0 and 1 / TIMING_FACTOR <= fresh / recorded <= TIMING_FACTOR

    fresh = measure(1)
    if agrees(fresh):
        return True, fresh
    fresh = min(fresh, measure(3))
    return agrees(fresh), fresh


def _retime(record: dict, predictor: Predictor) -> list[str]:
    out = []
    speed = record.get("speed")
    if speed and speed["device"]["label"] == timing_device()["label"]:
        dataset = record["dataset"]["name"]

        def measure(longer):
            return evaluation_speed(predictor, dataset, speed["split"], samples=speed["samples"],
                                    repeats=speed["repeats"] * longer)["eval_us_per_point"]

        ok, fresh = _same_timing(speed["eval_us_per_point"], measure)
        if not ok:
            out.append(f"re-timing gives {fresh:.3g} us/point, the record says {speed['eval_us_per_point']:.3g} "
                       f"(more than {TIMING_FACTOR:g}x apart on the same device): rescore on an idle machine, and "
                       "resubmit the record if it persists")
    scaling = record.get("scaling") or {}
    if scaling.get("rows") and (scaling.get("environment") or {}).get("device") == device_description():
        out += _retime_scaling(record, scaling, predictor)
    return out


def _retime_scaling(record: dict, scaling: dict, predictor: Predictor) -> list[str]:
    """Re-run the scaling harness at the sizes of the M-sweep rows recorded at up to RETIME_MAX_SECONDS, with the
    record's settings, for the rows of this record's own method (see RETIME_MIN_SECONDS for short rows)."""
    from ..evaluation import scaling as run_scaling

    settings = scaling.get("settings") or {}
    method = record["name"] if any(r.get("method") == record["name"] for r in scaling["rows"]) \
        else record["model"]["spec"]
    rows = [r for r in scaling["rows"] if r.get("method") == method and r.get("status") == "ok"
            and isinstance(r.get("seconds"), (int, float)) and r["seconds"] <= RETIME_MAX_SECONDS
            and r.get("sweep") == "M"]
    sizes = sorted({r["M"] for r in rows})
    if not sizes:
        return []

    def rerun(longer):
        result = run_scaling({method: predictor}, sizes_m=sizes, n_equals_m=settings.get("n_fixed") is None,
                             n_fixed=settings.get("n_fixed"), family=settings.get("family", "disc"),
                             points_inside=settings.get("points_inside", False),
                             fmm_both=settings.get("fmm_both", True),
                             time_budget=settings.get("time_budget", 60.0),
                             repeats=settings.get("repeats", 3) * longer, seed=settings.get("seed", 0))
        return {(r.phase, r.points, r.M, r.N): r.seconds for r in result.rows if r.status == "ok"}

    out = []
    first = rerun(1)
    for row in rows:
        key = (row["phase"], row["points"], row["M"], row["N"])
        ok, fresh = _same_timing(row["seconds"], lambda longer, key=key: first.get(key, math.inf) if longer == 1
                                 else rerun(longer).get(key, math.inf), floor=RETIME_MIN_SECONDS)
        if not ok:
            out.append(f"re-timing scaling {method} {row['phase']} ({row['points']}, M={row['M']:,}, N={row['N']:,}) "
                       f"gives {fresh:.3g} s, the record says {row['seconds']:.3g} s (more than {TIMING_FACTOR:g}x "
                       "apart on the same device): rescore on an idle machine, and resubmit the record if it persists")
    return out


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
    entries = _read_all(directory)
    legacy = frozenset(path for path, record in entries
                       if isinstance(record, dict) and record.get("record_version") == 1)
    # A limited record may be upgraded too: the migration changes its format, not its standing
    # (verify still refuses it as official).
    problems = _verify(entries, directory, rescore=lambda path: path in legacy, tolerance=rescore_tolerance,
                       legacy=legacy, allow_limited=True)
    failed = {p.path for p in problems}
    written = []
    for path, record in entries:
        if path not in legacy or path in failed:
            continue
        predictor, _ = _load(record["model"]["spec"], resolve_checkpoint(record["model"]["checkpoint"], directory)
                             if record["model"].get("checkpoint") else None)
        upgraded = {"record_version": RECORD_VERSION} | {k: v for k, v in record.items() if k != "record_version"}
        upgraded["speed"] = _speed(predictor, record["dataset"]["name"], record["dataset"].get("samples_limit"))
        _write_record(Path(path), upgraded)
        written.append(Path(path))
    return written, problems
