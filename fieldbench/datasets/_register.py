"""Writing the registry: (re)register a standard dataset's checksums from a generated copy.

``_registry`` only reads ``registry.json``; this module is the one that writes it. After a
deliberate change to a spec or to the generator, regenerate and re-register::

    fieldbench datasets build circles2d-mini --workdir /tmp/fieldbench-registry-build
    fieldbench datasets register circles2d-mini /path/to/generated/circles2d-mini

(``build`` with no names does all standard datasets; it regenerates from scratch in the workdir;
``register`` takes an existing copy, e.g. the cached one, and regenerates nothing.) Both write the
registry directory's ``registry.json`` (``_registry.registry_dir``: in a checkout with fieldbench
installed editable, the package data file ``fieldbench/datasets/standard/registry.json`` itself);
commit it, and republish mirrors (``fieldbench datasets publish``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .._io import atomic_write_text, json_sha256, sha256_bytes
from ..pipeline import (CARD_NAME, FINGERPRINT_VERSION, SCHEMA_VERSION, DatasetCard, DatasetSpec, ShardRecord,
                        canonical_split, fingerprint, generate, legacy_shard_paths, read_card, shard_paths)
from ._registry import REGISTRY_VERSION, dataset_spec, list_datasets, load_registry, registry_dir, registry_path
from ._verify import verify

__all__ = ["Registration", "register", "update_registry", "entries_from_card", "build_registry",
           "DEFAULT_WORKDIR", "migrate_entry"]

DEFAULT_WORKDIR = "/tmp/fieldbench-registry-build"


def _mirror_path(name: str, relative: str) -> str:
    return f"{name}/{relative}"


def entries_from_card(name: str, card: DatasetCard, fingerprints: Mapping | None = None) -> dict:
    """A registry entry from a generated dataset's card (no I/O). ``fingerprints`` maps (split,
    shard index) to the shard's fingerprint computed from its files (default: the card's own, which
    must then be of the current ``FINGERPRINT_VERSION``)."""
    files, splits = {}, {}
    for split_name in sorted(card.splits):
        split = card.splits[split_name]
        shards = []
        for shard in sorted(split.shards, key=lambda s: s.index):
            for entry in shard.files.values():
                files[_mirror_path(name, entry.path)] = {"sha256": entry.sha256, "bytes": entry.bytes,
                                                         "rows": entry.rows}
            shards.append({"index": shard.index, "samples": shard.samples, "points": shard.points,
                           "files": {kind: _mirror_path(name, entry.path) for kind, entry in shard.files.items()},
                           "fingerprint": (fingerprints[(split_name, shard.index)] if fingerprints is not None
                                           else dict(shard.fingerprint))})
        splits[split_name] = {"content_sha256": split.content_sha256, "samples": split.samples,
                              "points_per_sample": split.points_per_sample, "shards": shards}
    return {"card": _mirror_path(name, CARD_NAME), "content_sha256": card.content_sha256,
            "schema_version": card.schema_version, "fieldbench_version": card.fieldbench_version,
            "fingerprint_version": FINGERPRINT_VERSION, "spec_sha256": card.spec.sha256, "files": files,
            "splits": splits}


def migrate_entry(name: str, entry: Mapping, old_spec: Mapping) -> dict:
    """The registry entry of layout version 2 for a version-1 ``entry`` of ``name`` (no data
    needed): the same files and digests at their new paths, canonical split names, and the
    ``spec_sha256`` of the canonicalised spec. ``old_spec`` is the spec (dict) the entry was
    registered from; it must hash to the entry's ``spec_sha256``. The card digest is unchanged when
    the canonical names sort as the old ones did, as the standard ones do; otherwise ``ValueError``
    (re-register from a migrated copy instead)."""
    if entry.get("schema_version") != 1:
        raise ValueError(f"the registry entry of {name!r} is not of layout version 1")
    if json_sha256(dict(old_spec)) != entry["spec_sha256"]:
        raise ValueError(f"the spec given is not the one the registry entry of {name!r} was made from")
    renamed = {old: canonical_split(old) for old in entry["splits"]}
    if sorted(renamed) != sorted(renamed, key=renamed.get):
        raise ValueError(f"the split names of {name!r} sort differently once canonical, so its content digest "
                         "changes: migrate a copy (`fieldbench datasets migrate DIR`) and register it")
    moved = {}
    splits = {}
    for old, split in sorted(entry["splits"].items()):
        shards = []
        for shard in split["shards"]:
            before, after = legacy_shard_paths(old, shard["index"]), shard_paths(renamed[old], shard["index"])
            files = {}
            for kind, path in shard["files"].items():
                if path != _mirror_path(name, before[kind]):
                    raise ValueError(f"the registry entry of {name!r} lists {path}, not a version-1 path")
                files[kind] = moved[path] = _mirror_path(name, after[kind])
            shards.append(dict(shard) | {"files": files})
        splits[renamed[old]] = dict(split) | {"shards": shards}
    if set(moved) != set(entry["files"]):
        raise ValueError(f"the registry entry of {name!r} lists files that belong to no shard")
    return dict(entry) | {"schema_version": SCHEMA_VERSION, "spec_sha256": DatasetSpec.from_dict(old_spec).sha256,
                          "files": {moved[path]: record for path, record in sorted(entry["files"].items())},
                          "splits": splits}


def _dump(data: Mapping) -> str:
    """The registry's text: sorted keys, a one-space indent, so diffs stay small and reviewable."""
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _lock():
    from filelock import FileLock

    digest = sha256_bytes(str(registry_path().resolve()).encode())[:16]
    return FileLock(os.path.join(tempfile.gettempdir(), f"fieldbench-registry-{digest}.lock"))


def _file_fingerprint(root: Path, shard: ShardRecord) -> dict:
    import pyarrow.parquet as pq

    return fingerprint(pq.read_table(root / shard.files["sources"].path),
                       pq.read_table(root / shard.files["points"].path))


def update_registry(name: str, dataset_dir: str | os.PathLike) -> dict:
    """(Re)write the registry entry of standard dataset ``name`` from the dataset at ``dataset_dir``.

    The dataset must be complete, self-consistent (every file matches its card) and generated
    from the current spec ``<registry dir>/<name>.json``. Returns the new entry.
    """
    spec = dataset_spec(name)
    card = read_card(str(dataset_dir))
    if card.spec.to_dict() != spec.to_dict():
        raise ValueError(f"{dataset_dir} was not generated from the current spec of {name!r} "
                         f"({registry_dir() / (name + '.json')}); regenerate it into an empty folder first")
    missing = [s for s in spec.splits if s not in card.splits]
    if missing:
        raise ValueError(f"{dataset_dir} lacks split(s) {missing}; generate all splits before registering")
    report = verify(dataset_dir, against=False)
    if not report.ok:
        raise ValueError(f"refusing to register an inconsistent dataset:\n{report}")
    # Fingerprints from the files themselves (verified above against the card's sha256s), not from
    # the card: a card written by an older fieldbench holds another kind of fingerprint.
    fingerprints = {(split_name, shard.index): _file_fingerprint(Path(dataset_dir), shard)
                    for split_name, split in card.splits.items() for shard in split.shards}
    entry = entries_from_card(name, card, fingerprints)
    with _lock():
        data = load_registry()
        data["registry_version"] = REGISTRY_VERSION  # a version-1 file keeps its other entries, marked stale
        data["datasets"][name] = entry
        data["datasets"] = dict(sorted(data["datasets"].items()))
        atomic_write_text(registry_path(), _dump(data))
    return entry


@dataclasses.dataclass(frozen=True)
class Registration:
    """What ``register`` did: the new entry, and the content digest registered before (None: new)."""

    name: str
    entry: dict
    previous_content_sha256: str | None
    registry: Path

    def __str__(self) -> str:
        content = self.entry["content_sha256"]
        change = ("new entry" if self.previous_content_sha256 is None
                  else "same files as before" if self.previous_content_sha256 == content
                  else f"CONTENT CHANGED (was {self.previous_content_sha256})")
        return (f"registered {self.name}: {len(self.entry['files'])} files, content {content} ({change}) "
                f"in {self.registry}")


def register(name: str, dataset_dir: str | os.PathLike) -> Registration:
    """``update_registry``, saying whether the registered content changed (``fieldbench datasets register``)."""
    previous = load_registry()["datasets"].get(name, {}).get("content_sha256")
    return Registration(name, update_registry(name, dataset_dir), previous, registry_path())


def build_registry(names: Iterable[str] | None = None, workdir: str | os.PathLike | None = None,
                   *, fresh: bool = True, **generate_options) -> list[Registration]:
    """Generate standard datasets under ``workdir/<name>`` (default ``DEFAULT_WORKDIR``) and register
    them (all when ``names`` is empty; ``fieldbench datasets build``).

    ``fresh`` (default) deletes ``workdir/<name>`` first: ``generate`` resumes shards of the same
    spec, which would register data made by an older version of the generator.
    """
    out = []
    for name in (list(names) if names else list_datasets()):
        spec = dataset_spec(name)
        target = Path(workdir or DEFAULT_WORKDIR) / name
        if fresh and target.exists():
            shutil.rmtree(target)
        generate(spec, str(target), **generate_options)
        out.append(register(name, target))
    return out
