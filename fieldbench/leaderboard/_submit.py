"""Submitting a model: score it on the test splits of standard datasets and write one record per
dataset, with full provenance.

A record holds the model's properties and parameter count, the checkpoint's and the code's sha256,
the dataset's content checksum next to the registry's, the fieldbench version and git commit, the
device and date, every metric per test split, the warm evaluation speed and the device it was
timed on, the scaling figures, and its content digest (:func:`record_digest`). ``submit`` writes
one atomically and never overwrites an existing record unless asked to.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax
import jsonschema
import numpy as np

from .._io import file_sha256
from .._version import __version__
from ..bench import device_description
from ..datasets import open_dataset, registry_entries
from ..pipeline import canonical_split
from ..evaluation import evaluate
from ..models import Predictor, load_predictor
from ..models._registry import code_location, git_commit
from ._derived import load_model, metrics_of, model_properties, seed_std, warm_speed
from ._record import (RECORD_VERSION, TEST_SPLITS, check_record_name, record_path, record_schema, schema_problem,
                      stored_path, write_record)

__all__ = ["submit"]

#: The metrics whose mean, std and values over seeds a record holds.
SEED_METRICS = ("phi_error", "field_error", "phi_relative_l2", "field_relative_l2")


def _model_block(spec: str, predictor: Predictor, meta: dict | None, checkpoint: str | Path | None,
                 directory: Path) -> dict:
    found = model_properties(spec, predictor, meta)
    block = {"spec": spec, "checkpoint": None, "checkpoint_sha256": None, "trained_on": None} | found
    if meta is None:
        source = Path(__import__(found["code"]["module"], fromlist=["_"]).__file__)
        block["code"] = found["code"] | {"sha256": file_sha256(source)}
        return block
    checkpoint = Path(checkpoint).with_suffix(".eqx")
    block |= {"checkpoint": stored_path(checkpoint, directory), "checkpoint_sha256": file_sha256(checkpoint),
              "code": code_location(spec)}
    return block


def _seed_summary(per_seed: list[dict], checkpoints: list[Path], directory: Path) -> dict:
    """mean, std (n - 1) and the values over seeds of every headline metric of every split."""
    metrics = {}
    for split in per_seed[0]:
        metrics[split] = {}
        for metric in SEED_METRICS:
            values = [float(seed[split][metric]) for seed in per_seed]
            metrics[split][metric] = {"mean": float(np.mean(values)), "std": seed_std(values), "values": values}
    return {"count": len(per_seed), "metrics": metrics,
            "checkpoints": [{"path": stored_path(c, directory), "sha256": file_sha256(c)} for c in checkpoints]}


def check_submission(submission: dict | None) -> dict | None:
    """The submission block as the record will hold it (empty values dropped), or ValueError naming the
    field and the fix; cheap, so it runs before any evaluation."""
    if not submission:
        return None
    block = {k: v for k, v in submission.items() if v not in (None, "", [], ())}
    if isinstance(block.get("authors"), (tuple, str)):
        block["authors"] = [block["authors"]] if isinstance(block["authors"], str) else list(block["authors"])
    schema = record_schema()["properties"]["submission"]
    try:
        jsonschema.validate(block, schema)
    except jsonschema.ValidationError as error:
        raise ValueError(f"submission metadata: {schema_problem(error)}; e.g. --author 'A. Name' "
                         "--code-url https://github.com/you/model --paper 10.1234/abcd") from None
    return block or None


def submit(spec: str, name: str, *, checkpoint: str | Path | Sequence[str | Path] | None = None,
           datasets: Iterable[str] | None = None, directory: str | Path = "leaderboard/records",
           splits: Iterable[str] = TEST_SPLITS, scaling: dict | None = None, limit: int | None = None,
           replace: bool = False, seed_splits: Iterable[str] = ("test_single", "test_multi"),
           submission: dict | None = None) -> list[Path]:
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
      submission: who submits it and where to read about it: ``authors`` (a list), ``contact``,
        ``code_url`` and ``paper`` (a URL or a DOI), ``description``; checked against the record
        schema before any evaluation.

    The record's ``speed`` is the warm evaluation time per point (``models._speed.evaluation_speed``:
    one warm-up call excluded, best of ``SPEED_REPEATS``) on ``SPEED_SAMPLES`` samples of
    ``SPEED_SPLIT`` (of the first ``limit``), with the device it ran on (``_derived.warm_speed``).
    """
    from ..datasets import list_datasets

    directory = Path(directory)
    check_record_name(name, directory)  # before any work: a bad or clashing name must not cost an evaluation
    submission = check_submission(submission)
    seeds = [Path(c) for c in checkpoint] if isinstance(checkpoint, (list, tuple)) else None
    if seeds is not None and not seeds:
        raise ValueError("checkpoint is an empty list; pass one checkpoint per seed")
    checkpoint = seeds[0] if seeds else checkpoint
    predictor, meta = load_model(spec, checkpoint)
    model = _model_block(spec, predictor, meta, checkpoint, directory)
    others = [load_predictor(spec, c) for c in seeds[1:]] if seeds else []
    if datasets is None:
        trained = (model.get("trained_on") or {}).get("name")
        datasets = [trained] if trained else [d for d in list_datasets() if not d.endswith("-mini")]
    datasets, splits = list(datasets), list(dict.fromkeys(canonical_split(s) for s in splits))
    seed_splits = [canonical_split(s) for s in seed_splits]
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
            metrics[split] = metrics_of(result)
        summarised = [split for split in splits if split in set(seed_splits)] or splits
        per_seed = [{split: metrics[split] for split in summarised}] + [
            {split: evaluate(other, dataset, split, name=name, limit=limit).as_dict() for split in summarised}
            for other in others]
        record = {
            "record_version": RECORD_VERSION, "name": name, "model": model,
            "dataset": {"name": dataset, "content_sha256": handle.card.content_sha256,
                        "registry_content_sha256": registry_entries(dataset)["content_sha256"],
                        "samples_limit": limit},
            "metrics": metrics, "speed": warm_speed(predictor, dataset, limit), "scaling": scaling,
            "seeds": _seed_summary(per_seed, seeds, directory) if seeds else None, "submission": submission,
            "provenance": {"fieldbench_version": __version__, "git_commit": git_commit(),
                           "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                           "device": device_description(), "python": platform.python_version(),
                           "jax": jax.__version__},
        }
        write_record(target, record)
        written.append(target)
    return written
