"""Generation: a Dask graph with one task per missing shard, atomic writes, resumable runs, a card.

Each task builds one shard (``build_shard``) and writes its two Parquet files under temporary
names, renames them into place, then writes the shard's manifest (also via a temporary name). A
shard counts as complete only when its manifest exists and both files match the manifest's sha256,
so a run killed at any moment leaves either a complete shard or one that the next run redoes: a
rerun skips complete shards and redoes the rest. The card is written last, from the manifests.

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
import hashlib
import json
import os
import platform
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import dask
import fsspec
from fsspec.implementations.local import LocalFileSystem

from .._io import folder_lock, read_json
from .._version import __version__
from ..exceptions import DatasetExistsError
from ._format import SCHEMA_VERSION, sha256_bytes, table_to_bytes
from ._shards import build_shard, fingerprint
from ._spec import DatasetSpec, SplitSpec

__all__ = ["generate", "shard_paths", "read_card", "CARD_NAME", "CARD_REPAIR", "DatasetExistsError"]

CARD_NAME = "card.json"


def shard_paths(split: str, index: int) -> dict[str, str]:
    """Relative paths of a shard's files."""
    name = f"part-{index:05d}"
    return {"sources": f"{split}/sources/{name}.parquet", "points": f"{split}/points/{name}.parquet",
            "manifest": f"{split}/_manifest/{name}.json"}


def _atomic_write(fs, path: str, data: bytes) -> None:
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
    with fs.open(temporary, "wb") as handle:
        handle.write(data)
    fs.mv(temporary, path)


def _spec_digest(split: SplitSpec) -> str:
    return hashlib.sha256(json.dumps(split.to_dict(), sort_keys=True).encode()).hexdigest()


def produce_shard(root: str, split_name: str, split_dict: dict, index: int, storage_options: dict | None = None) -> dict:
    """Build, write and record one shard; returns its manifest. A pure function of its arguments."""
    split = SplitSpec.from_dict(split_dict)
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    shard = build_shard(split, index)
    started = time.perf_counter()
    blobs = {"sources": table_to_bytes(shard.sources), "points": table_to_bytes(shard.points)}
    encoded = time.perf_counter()
    paths = shard_paths(split_name, index)
    files = {}
    for kind, blob in blobs.items():
        _atomic_write(fs, f"{base}/{paths[kind]}", blob)
        files[kind] = {"path": paths[kind], "sha256": sha256_bytes(blob), "bytes": len(blob),
                       "rows": getattr(shard, kind).num_rows}
    written = time.perf_counter()
    manifest = {
        "split": split_name, "index": index, "spec_sha256": _spec_digest(split),
        "samples": len(split.shard_range(index)), "points": shard.points.num_rows, "files": files,
        "fingerprint": fingerprint(shard.sources, shard.points),
        "timings": shard.timings | {"encoding": encoded - started, "writing": written - encoded},
    }
    _atomic_write(fs, f"{base}/{paths['manifest']}", json.dumps(manifest, indent=1).encode())
    return manifest


def _complete_manifest(fs, base: str, split_name: str, split: SplitSpec, index: int, verify: bool,
                       owned: bool) -> dict | None:
    """The manifest of a finished shard, or None when the shard must be (re)done.

    ``owned``: the folder's card is this dataset's, so a shard of another spec in it is debris (of
    two runs that once wrote here at the same time) and is redone. Without a card it may be the
    unfinished work of another dataset: refuse, naming the command that discards it."""
    path = f"{base}/{shard_paths(split_name, index)['manifest']}"
    if not fs.exists(path):
        return None
    try:
        manifest = json.loads(fs.cat_file(path))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    if manifest.get("spec_sha256") != _spec_digest(split):
        if owned:
            return None
        raise DatasetExistsError(
            f"{base} holds unfinished shards of split {split_name!r} generated from a different spec (shard "
            f"{index}; no card.json, so an interrupted run of another dataset); to discard them run "
            f"`rm -r {base}/{split_name}` and generate again, or write this dataset to another path")
    for entry in manifest["files"].values():
        file_path = f"{base}/{entry['path']}"
        if not fs.exists(file_path):
            return None
        if verify and sha256_bytes(fs.cat_file(file_path)) != entry["sha256"]:
            return None
    return manifest


def read_card(root: str, storage_options: dict | None = None) -> dict:
    """The card of a generated dataset (``card.json`` at its root)."""
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    path = f"{base}/{CARD_NAME}"
    if not fs.exists(path):
        raise FileNotFoundError(f"no {CARD_NAME} in {root}: not a fieldbench dataset (or generation has not "
                                "finished: rerun `fieldbench generate` to resume it)")
    return read_json(path, CARD_REPAIR, text=fs.cat_file(path))


#: How to repair a damaged card (a generate rerun rebuilds it from the shard manifests).
CARD_REPAIR = ("delete it and rerun `fieldbench generate` with the same spec and --out (finished shards are "
               "kept, the card is rebuilt from their manifests), or `fieldbench datasets get NAME` for a "
               "standard dataset in the cache")


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


def _remove_temporaries(fs, base: str, splits: Iterable[str]) -> None:
    """Delete the ``.tmp-*`` files of killed runs (only under the lock: a live writer may own one)."""
    for pattern in [f"{base}/.tmp-*"] + [f"{base}/{s}/{kind}/.tmp-*" for s in splits
                                         for kind in ("sources", "points", "_manifest")]:
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
            if progress and isinstance(result, dict) and "fingerprint" in result:
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
) -> dict:
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
    chosen = list(spec.splits) if splits is None else list(splits)
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
                     verify_existing: bool, progress, storage_options, clean: bool) -> dict:
    card_path = f"{base}/{CARD_NAME}"
    owned = False
    if fs.exists(card_path):
        existing = read_json(card_path, CARD_REPAIR, text=fs.cat_file(card_path))
        # Every split already there must keep its definition, generated now or not: the new card
        # keeps the old splits' shards and describes them with this spec (new splits may be added).
        if not isinstance(existing, dict) or existing.get("spec", {}).get("name") != spec.name or any(
                s not in spec.splits or old != spec.splits[s].to_dict()
                for s, old in existing["spec"]["splits"].items()):
            name = existing.get("spec", {}).get("name") if isinstance(existing, dict) else None
            raise DatasetExistsError(f"{root} already holds a different dataset ({name!r}); choose another path "
                                     f"(or discard it first: `rm -r {base}`)")
        owned = True
    fs.makedirs(base, exist_ok=True)
    if clean:
        _remove_temporaries(fs, base, spec.splits)

    done: dict[tuple[str, int], dict] = {}
    tasks = []
    for split_name in chosen:
        split = spec.splits[split_name]
        for index in range(split.shards):
            manifest = _complete_manifest(fs, base, split_name, split, index, verify_existing, owned)
            if manifest is not None:
                done[(split_name, index)] = manifest
            else:
                tasks.append(dask.delayed(produce_shard, pure=True)(root, split_name, split.to_dict(), index,
                                                                    storage_options,
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
        done[(manifest["split"], manifest["index"])] = manifest
    elapsed = time.perf_counter() - started

    card = _build_card(spec, fs, base, chosen, done, elapsed, scheduler)
    _atomic_write(fs, card_path, json.dumps(card, indent=1).encode())
    return card


def _build_card(spec: DatasetSpec, fs, base: str, chosen: list[str], done: dict, elapsed: float,
                scheduler: str | None) -> dict:
    previous = {}
    if fs.exists(f"{base}/{CARD_NAME}"):
        previous = read_json(f"{base}/{CARD_NAME}", CARD_REPAIR, text=fs.cat_file(f"{base}/{CARD_NAME}")).get("splits", {})
    splits = dict(previous)
    for split_name in chosen:
        split = spec.splits[split_name]
        shards = [done[(split_name, i)] for i in range(split.shards)]
        for shard in shards:
            shard.pop("timings", None)
        digest = hashlib.sha256("".join(f["sha256"] for s in shards for f in s["files"].values()).encode())
        splits[split_name] = {
            "samples": split.samples, "points_per_sample": split.points, "shards": shards,
            "content_sha256": digest.hexdigest(),
        }
    overall = hashlib.sha256("".join(splits[s]["content_sha256"] for s in sorted(splits)).encode()).hexdigest()
    return {
        "format": "fieldbench-dataset", "schema_version": SCHEMA_VERSION, "fieldbench_version": __version__,
        "spec": spec.to_dict(), "splits": splits, "content_sha256": overall,
        "values": "computed in float64, stored as float32; sources stored exactly (float64)",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "generated_with": {"python": platform.python_version(), "scheduler": scheduler or "threads",
                           "seconds": round(elapsed, 3)},
    }
