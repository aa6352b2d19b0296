"""Result records: one JSON per (model, dataset), with full provenance, validated before it counts.

A record holds the model's properties and parameter count, the checkpoint's and the code's sha256,
the dataset's content checksum next to the registry's, the fieldbench version and git commit, the
device and date, every metric per test split, and the scaling figures. ``submit`` writes one
atomically and never overwrites an existing record unless asked to; ``verify`` checks them all.
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

from .._io import file_sha256
from .._version import __version__
from ..bench import device_description
from ..datasets import open_dataset, registry_entries
from ..evaluation import evaluate
from ..models import Predictor, load_checkpoint, load_predictor
from ..models._registry import REFERENCE, code_location, git_commit

__all__ = ["RECORD_VERSION", "TEST_SPLITS", "submit", "load_records", "record_path", "verify_records",
           "RecordProblem", "record_schema"]

RECORD_VERSION = 1
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


def check_record_name(name: str) -> None:
    """Leaderboard names are file-name safe: letters, digits and . _ + - (no path separators)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"leaderboard name {name!r} is not allowed: use 1-80 letters, digits and . _ + - "
                         "(starting with a letter or digit, no '..'), e.g. --name my-model-v2")


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
        for metric in ("phi_error", "field_error", "phi_relative_l2", "field_relative_l2"):
            values = [float(seed[split][metric]) for seed in per_seed]
            std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            metrics[split][metric] = {"mean": float(np.mean(values)), "std": std, "values": values}
    return {"count": len(per_seed), "metrics": metrics,
            "checkpoints": [{"path": _stored_path(c, directory), "sha256": file_sha256(c)} for c in checkpoints]}


def _model_block(spec: str, predictor: Predictor, checkpoint: str | Path | None, directory: Path) -> dict:
    block = {"spec": spec, "additive": bool(predictor.additive), "harmonic": bool(predictor.harmonic),
             "parameters": _parameter_count(predictor), "checkpoint": None, "checkpoint_sha256": None,
             "trained_on": None}
    if spec in REFERENCE:
        module = type(predictor).__module__
        source = Path(__import__(module, fromlist=["_"]).__file__)
        block["code"] = {"module": module, "class": type(predictor).__qualname__,
                         "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
        return block
    checkpoint = Path(checkpoint).with_suffix(".eqx")
    _, meta = load_checkpoint(checkpoint, spec)
    block |= {"checkpoint": _stored_path(checkpoint, directory), "checkpoint_sha256": file_sha256(checkpoint),
              "hyperparameters": meta.get("hyperparameters", {}), "trained_on": meta.get("dataset"),
              "code": code_location(spec)}
    return block


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
      limit: only the first N samples of each split (recorded; for quick runs).
      replace: overwrite an existing record of the same name and dataset.
    """
    from ..datasets import list_datasets

    check_record_name(name)  # before any work: a bad name must not cost an evaluation
    seeds = [Path(c) for c in checkpoint] if isinstance(checkpoint, (list, tuple)) else None
    if seeds is not None and not seeds:
        raise ValueError("checkpoint is an empty list; pass one checkpoint per seed")
    checkpoint = seeds[0] if seeds else checkpoint
    directory = Path(directory)
    predictor = load_predictor(spec, checkpoint)
    model = _model_block(spec, predictor, checkpoint, directory)
    others = [load_predictor(spec, c) for c in seeds[1:]] if seeds else []
    if datasets is None:
        trained = (model.get("trained_on") or {}).get("name")
        datasets = [trained] if trained else [d for d in list_datasets() if not d.endswith("-mini")]
    splits = list(splits)
    written = []
    for dataset in datasets:
        target = record_path(directory, name, dataset)
        if target.exists() and not replace:
            raise FileExistsError(f"{target} exists: a record for {name!r} on {dataset} is already on the board; "
                                  "choose another name or pass replace=True (--replace)")
        handle = open_dataset(dataset)
        metrics = {}
        for split in splits:
            result = evaluate(predictor, dataset, split, name=name, limit=limit)
            metrics[split] = {k: v for k, v in result.as_dict().items()
                              if k not in ("model", "dataset", "split")}
        summarised = [split for split in splits if split in set(seed_splits)] or splits
        per_seed = [{split: metrics[split] for split in summarised}] + [
            {split: evaluate(other, dataset, split, name=name, limit=limit).as_dict() for split in summarised}
            for other in others]
        record = {
            "record_version": RECORD_VERSION, "name": name, "model": model,
            "dataset": {"name": dataset, "content_sha256": handle.card["content_sha256"],
                        "registry_content_sha256": registry_entries(dataset)["content_sha256"],
                        "samples_limit": limit},
            "metrics": metrics, "scaling": scaling,
            "seeds": _seed_summary(per_seed, seeds, directory) if seeds else None,
            "provenance": {"fieldbench_version": __version__, "git_commit": git_commit(),
                           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "device": device_description(), "python": platform.python_version(),
                           "jax": jax.__version__},
        }
        jsonschema.validate(_finite(record), record_schema())
        directory.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(json.dumps(_finite(record), indent=1) + "\n")
        temporary.replace(target)
        written.append(target)
    return written


def _finite(value):
    """NaN is not JSON: a metric that could not be computed (an empty bin) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def load_records(directory: str | Path = "leaderboard/records") -> list[dict]:
    """Every record in a directory (sorted by dataset, then name), each with its ``_path``."""
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        record = json.loads(path.read_text())
        record["_path"] = str(path)
        records.append(record)
    return sorted(records, key=lambda r: (r.get("dataset", {}).get("name", ""), r.get("name", "")))


def verify_records(directory: str | Path = "leaderboard/records", *, rescore: bool = False,
                   rescore_tolerance: float = 1e-3) -> list[RecordProblem]:
    """Validate every record: schema, dataset checksums against the registry, checkpoint hashes,
    unique (name, dataset), metrics in range; with ``rescore``, re-evaluate each record from its
    checkpoint and compare. Returns the problems found (empty: all good)."""
    problems: list[RecordProblem] = []
    schema = record_schema()
    seen: dict[tuple, str] = {}
    records = load_records(directory)
    if not records:
        problems.append(RecordProblem(str(directory), "no records found"))
    for record in records:
        path = record.pop("_path")
        found_before = len(problems)
        try:
            jsonschema.validate(record, schema)
        except jsonschema.ValidationError as error:
            problems.append(RecordProblem(path, f"schema: {error.message} at {'/'.join(map(str, error.path))}"))
            continue
        key = (record["name"], record["dataset"]["name"])
        folded = (record["name"].casefold(), record["dataset"]["name"])  # one file on a case-insensitive disk
        if folded in seen:
            problems.append(RecordProblem(path, f"duplicate of {seen[folded]} (same name, up to case, and dataset)"))
        seen[folded] = path
        if Path(path).name != record_path("", *key).name:
            problems.append(RecordProblem(path, f"file name should be {record_path('', *key).name}"))
        try:
            registered = registry_entries(record["dataset"]["name"])["content_sha256"]
        except (KeyError, ValueError, RuntimeError) as error:
            problems.append(RecordProblem(path, f"dataset not in the registry: {error}"))
            registered = None
        for field in ("content_sha256", "registry_content_sha256"):
            if registered and record["dataset"][field] != registered:
                problems.append(RecordProblem(path, f"dataset {field} does not match the registry"))
        for split, values in record["metrics"].items():
            for metric in ("phi_error", "field_error"):
                value = values[metric]
                if not (isinstance(value, (int, float)) and 0 <= value < 1e6):
                    problems.append(RecordProblem(path, f"{split} {metric} = {value!r} is out of range"))
        checkpoint = record["model"].get("checkpoint")
        if checkpoint:
            file = resolve_checkpoint(checkpoint, directory)
            if not file.is_file():
                problems.append(RecordProblem(path, f"checkpoint {checkpoint} is missing"))
            elif file_sha256(file) != record["model"]["checkpoint_sha256"]:
                problems.append(RecordProblem(path, "checkpoint sha256 does not match the record"))
        for seed in (record.get("seeds") or {}).get("checkpoints", []):
            file = resolve_checkpoint(seed["path"], directory)
            if not file.is_file() or file_sha256(file) != seed["sha256"]:
                problems.append(RecordProblem(path, f"seed checkpoint {seed['path']} is missing or does not match"))
        if rescore and len(problems) == found_before:  # every record that is otherwise valid
            problems += _rescore(path, record, rescore_tolerance, directory)
    return problems


def _rescore(path: str, record: dict, tolerance: float, directory) -> list[RecordProblem]:
    stored = record["model"].get("checkpoint")
    predictor = load_predictor(record["model"]["spec"], resolve_checkpoint(stored, directory) if stored else None)
    out = []
    for split, values in record["metrics"].items():
        result = evaluate(predictor, record["dataset"]["name"], split, limit=record["dataset"].get("samples_limit"))
        for metric in ("phi_error", "field_error"):
            old, new = values[metric], getattr(result, metric)
            if abs(new - old) > tolerance * max(abs(old), 1e-9) + 1e-9:
                out.append(RecordProblem(path, f"rescoring {split} gives {metric} {new:.6g}, the record says {old:.6g}"))
    return out
