"""Generation: a Dask graph with one task per missing shard, atomic writes, resumable runs, a card.

Each task builds one shard (``build_shard``) and writes its two Parquet files under temporary
names, renames them into place, then writes the shard's manifest (also via a temporary name). A
shard counts as complete only when its manifest exists and both files match the manifest's sha256,
so a run killed at any moment leaves either a complete shard or one that the next run redoes: a
rerun skips complete shards and redoes the rest. The card is written last, from the manifests.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import time
import uuid
from collections.abc import Callable, Iterable

import dask
import fsspec
from fsspec.implementations.local import LocalFileSystem

from .._version import __version__
from ._format import SCHEMA_VERSION, sha256_bytes, table_to_bytes
from ._shards import build_shard, fingerprint
from ._spec import DatasetSpec, SplitSpec

__all__ = ["generate", "shard_paths", "read_card", "CARD_NAME", "DatasetExistsError"]

CARD_NAME = "card.json"


class DatasetExistsError(ValueError):
    """The target holds a different dataset: fieldbench never overwrites one."""


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


def _complete_manifest(fs, base: str, split_name: str, split: SplitSpec, index: int, verify: bool) -> dict | None:
    path = f"{base}/{shard_paths(split_name, index)['manifest']}"
    if not fs.exists(path):
        return None
    try:
        manifest = json.loads(fs.cat_file(path))
    except (json.JSONDecodeError, OSError):
        return None
    if manifest.get("spec_sha256") != _spec_digest(split):
        raise DatasetExistsError(
            f"{base} holds shard {index} of split {split_name!r} generated from a different spec; "
            "write this dataset to another path (fieldbench never overwrites finished work)")
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
    return json.loads(fs.cat_file(path))


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

    with _Progress():
        return list(dask.compute(*tasks, scheduler=scheduler or "threads", num_workers=workers))


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
    if isinstance(fs, LocalFileSystem):
        # Tasks may run in other processes (dask.distributed workers) with another working directory:
        # give them the absolute path, not a relative one they would resolve against their own cwd.
        root = base
    card_path = f"{base}/{CARD_NAME}"
    if fs.exists(card_path):
        existing = json.loads(fs.cat_file(card_path))
        # Every split already there must keep its definition, generated now or not: the new card
        # keeps the old splits' shards and describes them with this spec (new splits may be added).
        if existing.get("spec", {}).get("name") != spec.name or any(
                s not in spec.splits or old != spec.splits[s].to_dict()
                for s, old in existing["spec"]["splits"].items()):
            raise DatasetExistsError(f"{root} already holds a different dataset ({existing.get('spec', {}).get('name')!r});"
                                     " choose another path")
    fs.makedirs(base, exist_ok=True)

    done: dict[tuple[str, int], dict] = {}
    tasks = []
    for split_name in chosen:
        split = spec.splits[split_name]
        for index in range(split.shards):
            manifest = _complete_manifest(fs, base, split_name, split, index, verify_existing)
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
        previous = json.loads(fs.cat_file(f"{base}/{CARD_NAME}")).get("splits", {})
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
