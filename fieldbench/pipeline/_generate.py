"""Generation: a Dask graph with one task per missing shard, atomic writes, resumable runs, a card.

Each task builds one shard (``build_shard``) and writes its two Parquet files under temporary
names, renames them into place, then writes the shard's manifest (also via a temporary name). A
shard counts as complete only when its manifest exists and both files match the manifest's sha256,
so a run killed at any moment leaves either a complete shard or one that the next run redoes: a
rerun skips complete shards and redoes the rest. The card is written last, from the manifests
(the ``README.md`` dataset card, made from the card's content, just before it).

On a local file system a run holds ``fieldbench._io.folder_lock(root)`` (``.<name>.lock`` beside
the target; the lock ``datasets.get`` takes too), so a second run into the same folder waits, then
resumes or refuses; under the lock it also deletes the temporaries a killed run left behind. With
the ``processes`` scheduler every worker dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import functools
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable

import dask
import fsspec
from fsspec.implementations.local import LocalFileSystem

from .._io import TEMPORARY_PREFIX, atomic_write_bytes, file_sha256, folder_lock, sha256_bytes
from .._version import __version__
from ..exceptions import DatasetExistsError
from ._card import (CARD_NAME, README_NAME, SHARD_FILES, CardError, DatasetCard, FileRecord, OldLayoutError,
                    ShardRecord, SplitRecord, dataset_readme)
from ._format import MANIFESTS_DIR, PARTITION_KEY, shard_paths, table_to_bytes
from ._shards import build_shard, fingerprint
from ._spec import DatasetSpec, SplitSpec, canonical_split

__all__ = ["generate", "produce_shard", "DatasetExistsError"]


def produce_shard(root: str, split_name: str, split: SplitSpec, index: int,
                  storage_options: dict | None = None) -> ShardRecord:
    """Build, write and record one shard; returns its manifest. A pure function of its arguments
    (``split`` is the spec object itself: its digest was computed once, before the graph was built)."""
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    shard = build_shard(split, index)
    started = time.perf_counter()
    blobs = {kind: table_to_bytes(getattr(shard, kind)) for kind in SHARD_FILES}
    encoded = time.perf_counter()
    paths = shard_paths(split_name, index)
    files = {}
    for kind, blob in blobs.items():
        atomic_write_bytes(f"{base}/{paths[kind]}", blob, fs=fs)
        files[kind] = FileRecord(path=paths[kind], sha256=sha256_bytes(blob), bytes=len(blob),
                                 rows=getattr(shard, kind).num_rows)
    written = time.perf_counter()
    manifest = ShardRecord(
        split=split_name, index=index, spec_sha256=split.sha256, samples=len(split.shard_range(index)),
        points=shard.points.num_rows, files=files, fingerprint=fingerprint(shard.sources, shard.points),
        timings=shard.timings | {"encoding": encoded - started, "writing": written - encoded})
    atomic_write_bytes(f"{base}/{paths['manifest']}", json.dumps(manifest.to_dict(), indent=1).encode(), fs=fs)
    return manifest


def _complete_manifest(fs, base: str, split_name: str, split: SplitSpec, index: int, verify: bool,
                       owned: bool) -> ShardRecord | None:
    """The manifest of a finished shard, or None when the shard must be (re)done.

    ``owned``: the folder's card is this dataset's, so a shard of another spec in it is debris (of
    two runs that once wrote here at the same time) and is redone. Without a card it may be the
    unfinished work of another dataset: refuse, naming the command that discards it."""
    path = f"{base}/{shard_paths(split_name, index)['manifest']}"
    if not fs.exists(path):
        return None
    try:
        manifest = ShardRecord.from_dict(json.loads(fs.cat_file(path)))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, CardError):
        return None
    if manifest.spec_sha256 != split.sha256:
        if owned:
            return None
        raise DatasetExistsError(
            f"{base} holds unfinished shards of split {split_name!r} generated from a different spec (shard "
            f"{index}; no card.json, so an interrupted run of another dataset); to discard them run "
            f"`rm -r {_split_folders(base, split_name)}` and generate again, or write this dataset to another path")
    for entry in manifest.files.values():
        file_path = f"{base}/{entry.path}"
        if not fs.exists(file_path):
            return None
        if verify and file_sha256(file_path, fs=fs) != entry.sha256:
            return None
    return manifest


def _die_with_parent(parent: int) -> None:
    """Initialiser of the ``processes`` scheduler's workers: a worker must not outlive the process
    that started it (after a ``kill -9`` of that process it would go on solving and writing shards).

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, then a check that the parent did not die before
    that took effect. Elsewhere, or if prctl fails: a daemon thread polling ``os.getppid()``.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="fieldbench-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)  # orphaned: the parent is gone, nobody will read what this worker makes


def _split_folders(base: str, split_name: str) -> str:
    """The folders holding one split's files (for a shell command)."""
    return " ".join(f"{base}/{folder}" for folder in (f"sources/{PARTITION_KEY}={split_name}",
                                                     f"points/{PARTITION_KEY}={split_name}",
                                                     f"{MANIFESTS_DIR}/{split_name}"))


def _remove_temporaries(fs, base: str, splits: Iterable[str]) -> None:
    """Delete the temporaries of killed runs (only under the lock: a live writer may own one)."""
    folders = [folder for s in splits for folder in _split_folders(base, s).split(" ")]
    for pattern in [f"{base}/{TEMPORARY_PREFIX}*"] + [f"{folder}/{TEMPORARY_PREFIX}*" for folder in folders]:
        for path in fs.glob(pattern):
            fs.rm_file(path)


def _run(tasks: list, scheduler: str | None, progress: Callable[[int], None] | None, workers: int | None) -> list:
    if not tasks:
        return []
    if scheduler and "://" in scheduler:
        from distributed import Client, as_completed

        with Client(scheduler, timeout="30s") as client:
            futures = client.compute(tasks)
            for _ in as_completed(futures):
                if progress:
                    progress(1)
            return client.gather(futures)
    from dask.callbacks import Callback

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if progress and isinstance(result, ShardRecord):
                progress(1)

    options = {}
    if scheduler == "processes":
        options["initializer"] = functools.partial(_die_with_parent, os.getpid())
    with _Progress():
        return list(dask.compute(*tasks, scheduler=scheduler or "threads", num_workers=workers, **options))


def generate(
    spec: DatasetSpec,
    root: str,
    *,
    splits: Iterable[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    verify_existing: bool = True,
    progress: Callable[[int, int], None] | None = None,
    storage_options: dict | None = None,
) -> DatasetCard:
    """Generate (or resume) a dataset at ``root`` (a path or any fsspec URL) and return its card.

    Args:
      spec: the dataset to generate.
      root: target directory or URL (``memory://``, ``s3://`` ... with fsspec).
      splits: the splits to generate (default: all).
      scheduler: Dask's local scheduler ("threads", the default, "processes" or "sync"), or the
        address of a running ``dask.distributed`` scheduler ("tcp://HOST:PORT").
      workers: worker count for the local schedulers.
      verify_existing: re-hash finished shards before skipping them (cheap; on by default).
      progress: called as ``progress(done, total)`` after each shard.
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"spec must be a DatasetSpec; got {type(spec).__name__}")
    chosen = list(spec.splits) if splits is None else [canonical_split(s) for s in splits]
    unknown = [s for s in chosen if s not in spec.splits]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; {spec.name} has {list(spec.splits)}")
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    local = isinstance(fs, LocalFileSystem)
    if local:
        # Tasks may run in other processes (dask.distributed workers) with another working directory:
        # give them the absolute path, not a relative one they would resolve against their own cwd.
        root = base
    # Two runs writing one folder at once would mix their shards: the second waits for the first.
    # (filelock needs a local path; remote targets are not locked, see the README.)
    with folder_lock(base, what="generating into") if local else contextlib.nullcontext():
        return _generate_locked(spec, root, fs, base, chosen, scheduler, workers, verify_existing, progress,
                                storage_options, clean=local)


def _generate_locked(spec: DatasetSpec, root: str, fs, base: str, chosen: list[str], scheduler, workers,
                     verify_existing: bool, progress, storage_options, clean: bool) -> DatasetCard:
    existing = _existing_card(spec, root, fs, base)
    fs.makedirs(base, exist_ok=True)
    if clean:
        _remove_temporaries(fs, base, spec.splits)

    done: dict[tuple[str, int], ShardRecord] = {}
    tasks = []
    for split_name in chosen:
        split = spec.splits[split_name]
        split.sha256  # noqa: B018 -- hashed here, once: every task gets this object with its digest
        for index in range(split.shards):
            manifest = _complete_manifest(fs, base, split_name, split, index, verify_existing, existing is not None)
            if manifest is not None:
                done[(split_name, index)] = manifest
            else:
                # The task gets the frozen SplitSpec itself, not a dict to rebuild it from; the key is
                # named, so the graph is the same on every run and a rerun builds only the missing shards.
                tasks.append(dask.delayed(produce_shard, pure=True)(root, split_name, split, index, storage_options,
                                                                    dask_key_name=f"shard-{split_name}-{index}"))
    total = len(done) + len(tasks)
    finished = len(done)
    if progress:
        progress(finished, total)

    def advance(count: int) -> None:
        nonlocal finished
        finished += count
        if progress:
            progress(finished, total)

    started = time.perf_counter()
    for manifest in _run(tasks, scheduler, advance, workers):
        done[(manifest.split, manifest.index)] = manifest
    elapsed = time.perf_counter() - started

    # Splits generated before (and not now) keep their shards; the chosen ones are described anew.
    splits = dict(existing.splits) if existing is not None else {}
    for split_name in chosen:
        split = spec.splits[split_name]
        splits[split_name] = SplitRecord.of(split, (done[(split_name, i)] for i in range(split.shards)))
    card = DatasetCard.of(
        spec, splits, fieldbench_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        generated_with={"python": platform.python_version(), "scheduler": scheduler or "threads",
                        "seconds": round(elapsed, 3)})
    atomic_write_bytes(f"{base}/{README_NAME}", dataset_readme(card).encode(), fs=fs)
    atomic_write_bytes(f"{base}/{CARD_NAME}", card.to_json().encode(), fs=fs)
    return card


def _existing_card(spec: DatasetSpec, root: str, fs, base: str) -> DatasetCard | None:
    """The card already at ``root`` when it is this dataset's (None: no card); ``DatasetExistsError``
    when it describes another one. Every split already there must keep its definition, generated
    now or not: the new card keeps the old splits' shards and describes them with this spec (new
    splits may be added)."""
    if not fs.exists(f"{base}/{CARD_NAME}"):
        return None
    try:
        existing = DatasetCard.from_json(fs.cat_file(f"{base}/{CARD_NAME}"), f"{base}/{CARD_NAME}")
    except OldLayoutError:
        raise  # the same dataset, perhaps, in the old layout: the error names the migration
    except CardError as error:
        raise DatasetExistsError(f"{root} already holds a different dataset ({error}); choose another path "
                                 f"(or discard it first: `rm -r {base}`)") from None
    if existing.spec.name != spec.name or any(s not in spec.splits or old.to_dict() != spec.splits[s].to_dict()
                                              for s, old in existing.spec.splits.items()):
        raise DatasetExistsError(f"{root} already holds a different dataset ({existing.spec.name!r}); choose "
                                 f"another path (or discard it first: `rm -r {base}`)")
    return existing
