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
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import jax
import jsonschema

from .._io import file_sha256
from .._version import __version__
from ..bench import device_description
from ..datasets import open_dataset, registry_entries
from ..pipeline import canonical_split
from ..evaluation import evaluate
from ..models import Predictor, load_predictor
from ..models._registry import code_location, git_commit
from ._derived import load_model, metrics_of, model_properties, seed_metrics, warm_speed
from ._record import (RECORD_VERSION, TEST_SPLITS, check_record_name, record_path, record_schema, schema_problem,
                      stored_path, write_record)
from ._standing import VALIDATION_SPLIT, is_mini

__all__ = ["submit"]

def _model_block(spec: str, predictor: Predictor, meta: dict | None, checkpoint: str | Path | None,
                 directory: Path, url: str | None) -> dict:
    found = model_properties(spec, predictor, meta)
    block = {"spec": spec, "checkpoint": None, "checkpoint_sha256": None, "trained_on": None} | found
    if meta is None:
        source = Path(__import__(found["code"]["module"], fromlist=["_"]).__file__)
        block["code"] = found["code"] | {"sha256": file_sha256(source)}
        return block
    entry = _checkpoint_entry(Path(checkpoint), directory, url)
    block |= {"checkpoint": entry["path"], "checkpoint_sha256": entry["sha256"], "code": code_location(spec)}
    if url:
        block |= {"checkpoint_url": url, "checkpoint_metadata_sha256": entry["metadata_sha256"]}
    return block


def _checkpoint_entry(checkpoint: Path, directory: Path, url: str | None) -> dict:
    """How a record names one checkpoint: its path (``stored_path``) and sha256, and with ``url`` (where
    it is published) that and the sha256 of its .json metadata, which ``verify`` downloads and checks."""
    checkpoint = checkpoint.with_suffix(".eqx")
    entry = {"path": stored_path(checkpoint, directory), "sha256": file_sha256(checkpoint)}
    if url:
        entry |= {"url": url, "metadata_sha256": file_sha256(checkpoint.with_suffix(".json"))}
    return entry


def check_urls(urls: Sequence[str] | None, checkpoints: Sequence[Path]) -> list[str | None]:
    """One URL (or None) per checkpoint; ValueError naming the fix for a mismatch or a bad URL."""
    if not urls:
        return [None] * len(checkpoints)
    if len(urls) != len(checkpoints):
        raise ValueError(f"{len(urls)} checkpoint URL(s) for {len(checkpoints)} checkpoint(s): give one "
                         "--checkpoint-url per --checkpoint, in the same order")
    pattern = record_schema()["properties"]["model"]["properties"]["checkpoint_url"]["pattern"]  # one rule
    for url, checkpoint in zip(urls, checkpoints):
        if not re.match(pattern, url):
            raise ValueError(f"checkpoint URL {url!r} must be http(s) and name the .eqx file (its .json beside it)")
        if PurePosixPath(url.split("?", 1)[0]).name != Path(checkpoint).with_suffix(".eqx").name:
            raise ValueError(f"checkpoint URL {url} does not name {Path(checkpoint).with_suffix('.eqx').name}: "
                             "give the URLs in the order of the checkpoints")
    return list(urls)


def _seed_summary(per_seed: list[dict], checkpoints: list[Path], directory: Path, urls: list[str | None]) -> dict:
    """mean, std (n - 1) and the values over seeds of every headline metric of every split."""
    return {"count": len(per_seed), "metrics": seed_metrics(per_seed),
            "checkpoints": [_checkpoint_entry(c, directory, url) for c, url in zip(checkpoints, urls)]}


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
           submission: dict | None = None, checkpoint_urls: Sequence[str] | None = None) -> list[Path]:
    """Score a model on the test splits of standard datasets and write one record per dataset.

    Args:
      spec: a reference name (exact, fmm, fmm-dipole, fmm-pure), a baseline name, or 'path/file.py:Class'.
      name: the leaderboard name (letters, digits, . _ + -).
      checkpoint: the learned model's checkpoint (its JSON names the dataset it was trained on,
        which is then the default dataset), or a list of them, one per seed: the first gives the
        record's metrics (every split), and ``seeds`` holds mean, std and values over all of them
        on ``seed_splits`` (the splits the paper reports; each extra seed costs a full evaluation).
        The validation split (``val``) is always scored too, for every seed.
      datasets: standard dataset names (default: the training dataset, or every full standard
        dataset for reference methods).
      scaling: runtime-scaling figures to store (see ``fieldbench.evaluation.scaling``).
      limit: only the first N samples of each split (recorded as ``dataset.samples_limit``; for
        quick local runs: ``verify_records`` refuses such a record as official unless
        ``allow_local``, and the board lists it apart, under "Local results").
      replace: overwrite an existing record of the same name and dataset.
      submission: who submits it and where to read about it: ``authors`` (a list), ``contact``,
        ``code_url`` and ``paper`` (a URL or a DOI), ``description``; checked against the record
        schema before any evaluation. An official record needs authors, code_url and description
        (``_standing.REQUIRED_METADATA``), and a learned model >= 3 seeds.
      checkpoint_urls: where each checkpoint is published (one http(s) URL of its .eqx per
        checkpoint, its .json beside it): the record stores them with the sha256 of both files, and
        ``verify`` downloads a checkpoint that is not in the clone.

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
    urls = check_urls(checkpoint_urls, seeds or ([checkpoint] if checkpoint else []))
    predictor, meta = load_model(spec, checkpoint)
    model = _model_block(spec, predictor, meta, checkpoint, directory, urls[0] if urls else None)
    others = [load_predictor(spec, c) for c in seeds[1:]] if seeds else []
    if datasets is None:
        trained = (model.get("trained_on") or {}).get("name")
        datasets = [trained] if trained else [d for d in list_datasets() if not is_mini(d)]
    datasets = list(datasets)
    splits = list(dict.fromkeys([canonical_split(s) for s in splits] + [VALIDATION_SPLIT]))
    seed_splits = list(dict.fromkeys([canonical_split(s) for s in seed_splits] + [VALIDATION_SPLIT]))
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
            "seeds": _seed_summary(per_seed, seeds, directory, urls) if seeds else None, "submission": submission,
            "provenance": {"fieldbench_version": __version__, "git_commit": git_commit(),
                           "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                           "device": device_description(), "python": platform.python_version(),
                           "jax": jax.__version__},
        }
        write_record(target, record)
        written.append(target)
    return written
