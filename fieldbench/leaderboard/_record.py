"""The record file: its schema, content digest, name, path, and reading and writing.

A record is one JSON per (model, dataset) (``NAME__DATASET.json``), validated against
``record.schema.json``. ``record_sha256`` is the sha256 of the record's canonical JSON
(:func:`record_digest`): tamper evidence against edits by hand, not a signature (whoever recomputes
it can forge it, which is why ``verify --rescore`` re-derives every number).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from importlib import resources
from pathlib import Path

import jsonschema

from .._io import atomic_write_text, read_json, sha256_bytes
from ..exceptions import MissingPackageDataError
from ..models import download_checkpoint, shipped_checkpoint, shipped_checkpoint_dir
from ..models._shipped import SHIPPED_PATH
from ..pipeline import canonical_split

RECORD_VERSION = 3
#: The field holding the record's content digest.
DIGEST_FIELD = "record_sha256"
#: The test splits every record scores (canonical names; records written before layout version 2
#: key their metrics by the old hyphenated names, which :func:`canonical_record` maps).
TEST_SPLITS = ("test_single", "test_multi", "test_overlap")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")
#: How to mend a damaged or edited record file.
FIX = "restore the file (git checkout) or resubmit the record with `fieldbench submit ... --replace`"


@dataclasses.dataclass(frozen=True)
class RecordProblem:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def record_schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("record.schema.json").read_text())


def schema_problem(error: jsonschema.ValidationError) -> str:
    """A schema error as one line: the field (a/b/c) and jsonschema's message, cut short (its message
    may quote a whole sub-object)."""
    field = "/".join(map(str, error.absolute_path)) or "(top level)"
    message = " ".join(error.message.split())
    return f"field {field}: {message if len(message) <= 160 else message[:157] + '...'}"


def record_digest(record: dict) -> str:
    """sha256 of the record's canonical JSON (keys sorted, no spaces, UTF-8), without the digest
    field itself and without the ``_path`` that :func:`load_records` adds. Floats are written by
    Python's shortest round-trip repr, so a record read back from its file digests the same."""
    content = {k: v for k, v in record.items() if k != DIGEST_FIELD and not k.startswith("_")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return sha256_bytes(text.encode())


def finite(value):
    """NaN is not JSON: a metric that could not be computed (an empty bin) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_record(target: Path, record: dict) -> None:
    """Validate, stamp the digest, and write atomically (a reader never sees half a record)."""
    record = json.loads(json.dumps(finite(record)))  # exactly what the file will hold
    record.pop(DIGEST_FIELD, None)
    record[DIGEST_FIELD] = record_digest(record)
    try:
        jsonschema.validate(record, record_schema())
    except jsonschema.ValidationError as error:
        raise ValueError(f"{target}: the record would not match the record schema, {schema_problem(error)}; "
                         "the model's checkpoint metadata (its .json) or a scaling file fed it a bad value") from None
    atomic_write_text(target, json.dumps(record, indent=1) + "\n")


def _read(path: Path) -> dict:
    """One record file; a damaged one raises ValueError naming the file, the problem and the fix."""
    try:
        record = read_json(path, FIX)
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error}); {FIX}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} holds a JSON {type(record).__name__}, not a record object; {FIX}")
    return record


def canonical_record(record: dict) -> dict:
    """``record`` with its split names canonical (``test-multi`` -> ``test_multi``: the keys of
    ``metrics`` and ``seeds.metrics``, and ``speed.split``), for display. The file is not changed:
    its digest seals what was written, and ``verify`` checks the record as stored (a rescore accepts
    either name of a split)."""
    out = dict(record)
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = {canonical_split(k): v for k, v in out["metrics"].items()}
    if isinstance(out.get("seeds"), dict) and isinstance(out["seeds"].get("metrics"), dict):
        out["seeds"] = out["seeds"] | {"metrics": {canonical_split(k): v for k, v in out["seeds"]["metrics"].items()}}
    if isinstance(out.get("speed"), dict) and isinstance(out["speed"].get("split"), str):
        out["speed"] = out["speed"] | {"split": canonical_split(out["speed"]["split"])}
    return out


def load_records(directory: str | Path = "leaderboard/records") -> list[dict]:
    """Every record in a directory (sorted by dataset, then name), each with its ``_path``, its split
    names canonical (:func:`canonical_record`)."""
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        record = canonical_record(_read(path))
        record["_path"] = str(path)
        records.append(record)
    return sorted(records, key=lambda r: (str((r.get("dataset") or {}).get("name", "")), str(r.get("name", ""))))


def read_all(directory: Path) -> list[tuple[str, dict | str]]:
    """(path, record) for every file, or (path, the reason it cannot be read)."""
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            entries.append((str(path), _read(path)))
        except ValueError as error:  # the problem's line names the file already
            entries.append((str(path), str(error).removeprefix(f"{path} ")))
    return entries


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


def repository_of(directory: str | Path) -> Path:
    """The records' repository: the folder two levels above ``leaderboard/records``."""
    resolved = Path(directory).resolve()
    return resolved.parents[1] if len(resolved.parents) > 1 else resolved


def stored_path(checkpoint: Path, directory: Path) -> str:
    """The checkpoint as a record stores it: relative to the records' repository when it lies
    inside it, so records verify on any clone; a shipped checkpoint elsewhere (fieldbench installed
    from a wheel) by its path in the package, ``fieldbench/models/checkpoints/NAME``, which
    :func:`resolve_checkpoint` finds in any installation; else absolute."""
    root, resolved = repository_of(directory), checkpoint.resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        if resolved.parent == shipped_checkpoint_dir().resolve():
            return f"{SHIPPED_PATH}/{resolved.name}"
    except MissingPackageDataError:
        pass
    return str(resolved)


def resolve_checkpoint(stored: str, directory: str | Path, *, url: str | None = None, sha256: str | None = None,
                       metadata_sha256: str | None = None) -> Path:
    """Where a record's checkpoint is: absolute as is, relative to the records' repository; a relative
    path that is not there but names a shipped checkpoint (``baselines/checkpoints/NAME``, its place
    before it became package data, or ``fieldbench/models/checkpoints/NAME``) is the package's file of
    that name (``models.shipped_checkpoint``): committed records keep their digest and verify from a
    checkout and from a wheel. A checkpoint found nowhere locally that the record publishes at ``url``
    is downloaded and checked against ``sha256`` (``models.download_checkpoint``)."""
    path = Path(stored)
    if path.is_absolute():
        found = path
    else:
        local = repository_of(directory) / path
        found = local if local.exists() else shipped_checkpoint(stored) or local
    if found.is_file() or not (url and sha256):
        return found
    return download_checkpoint(url, sha256, metadata_sha256)


def checkpoint_entries(record: dict) -> list[dict]:
    """Every checkpoint a record names, as {path, sha256, url, metadata_sha256}: the model's (whose
    metrics the record shows), then the other seeds'."""
    model = record.get("model") or {}
    first = {"path": model.get("checkpoint"), "sha256": model.get("checkpoint_sha256"),
             "url": model.get("checkpoint_url"), "metadata_sha256": model.get("checkpoint_metadata_sha256")}
    seeds = (record.get("seeds") or {}).get("checkpoints") or []
    return ([first] if first["path"] else []) + [
        {"url": None, "metadata_sha256": None} | seed for seed in seeds[1:]]


def locate(entry: dict, directory: str | Path) -> Path:
    """``resolve_checkpoint`` of one of :func:`checkpoint_entries`."""
    return resolve_checkpoint(entry["path"], directory, url=entry.get("url"), sha256=entry.get("sha256"),
                              metadata_sha256=entry.get("metadata_sha256"))
