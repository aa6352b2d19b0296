"""Moving a dataset folder of layout version 1 into the current layout, in place.

Version 1 kept each split in its own folder (``<split>/{sources,points,_manifest}/part-NNNNN.*``)
with hyphenated split names (``test-multi``); a plain ``pd.read_parquet("<split>")`` then mixed
both tables in one frame, and Hugging Face ``datasets`` refused the split names. Version 2 (see
``_format``) makes each table its own Parquet dataset with the splits as hive partitions.

The Parquet files are moved (renamed), never rewritten: their bytes, every file sha256 and so the
split and card ``content_sha256`` stay what the registry, checkpoints and leaderboard records
recorded (the card digest hashes the split digests in sorted split-name order, and
``canonical_split`` keeps that order for the standard names: ``test_multi < test_overlap <
test_single < train < val`` as before; for other names the digest is recomputed and reported).

Crash safety: the card is rewritten last, so until then the folder reads as version 1 and a rerun
of ``migrate_layout`` carries on: a file already at its new path is not moved again, a manifest
is rewritten from the old one (or the card's record), then the old one deleted. After the card,
the emptied old folders are removed (a rerun on a version-2 folder only does that).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .._io import TEMPORARY_PREFIX, atomic_write_text, folder_lock, read_json
from ..exceptions import CardError
from ._card import CARD_NAME, CARD_REPAIR, README_NAME, SHARD_FILES, DatasetCard, ShardRecord, dataset_readme
from ._format import SCHEMA_VERSION, legacy_shard_paths, shard_paths
from ._spec import DatasetSpec, canonical_split

__all__ = ["MigrationResult", "migrate_layout", "OLD_MARKER"]

#: ``datasets.get``'s marker lists files by path: after a move it describes nothing, so it goes.
OLD_MARKER = ".fieldbench-verified.json"


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    """What ``migrate_layout`` did: ``migrated`` False when the folder was already current;
    ``renamed`` old split name -> new; ``content_changed`` when the card digest had to change
    (split names whose sorted order changed); ``leftovers`` old folders not removed (they hold
    files that are not the dataset's)."""

    root: Path
    migrated: bool
    renamed: dict
    content_sha256: str
    previous_content_sha256: str
    leftovers: tuple[str, ...] = ()

    @property
    def content_changed(self) -> bool:
        return self.content_sha256 != self.previous_content_sha256

    def __str__(self) -> str:
        if not self.migrated:
            text = f"{self.root} is already in layout version {SCHEMA_VERSION}"
        else:
            renamed = ", ".join(f"{old} -> {new}" for old, new in self.renamed.items() if old != new) or "none"
            digest = (f"content_sha256 changed to {self.content_sha256} (was {self.previous_content_sha256})"
                      if self.content_changed else f"content_sha256 unchanged ({self.content_sha256})")
            text = f"migrated {self.root} to layout version {SCHEMA_VERSION}; splits renamed: {renamed}; {digest}"
        if self.leftovers:
            text += "; left in place (they hold other files): " + ", ".join(self.leftovers)
        return text


def _move(root: Path, old: str, new: str) -> None:
    source, target = root / old, root / new
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    elif not target.is_file():
        raise FileNotFoundError(f"{root} lacks {old} (and {new}): the dataset is incomplete, so it cannot be "
                                "migrated; fetch it again (`fieldbench datasets get NAME`) or regenerate it")


def _remove_empty_folders(root: Path) -> tuple[str, ...]:
    """Remove the empty folders left by the move (and killed runs' temporaries in them); return the
    old folders that still hold other files."""
    leftovers = []
    for folder, _, files in os.walk(root, topdown=False):
        path = Path(folder)
        if path == root:
            continue
        for name in files:
            if name.startswith(TEMPORARY_PREFIX):
                (path / name).unlink(missing_ok=True)
        try:
            path.rmdir()
        except OSError:  # not empty: part of the dataset, or someone else's files
            relative = path.relative_to(root).as_posix()
            if relative.endswith(("/_manifest", "/points", "/sources")) and not relative.startswith(
                    ("points/", "sources/", "_manifests/")):
                leftovers.append(relative)
    return tuple(sorted(leftovers))


def migrate_layout(root: str | os.PathLike) -> MigrationResult:
    """Move the version-1 dataset at ``root`` (a local folder) into the current layout, in place,
    and return what was done; a folder already current only gets its ``README.md`` (re)written
    when it is missing or stale. Safe to rerun after a
    kill at any point. Holds the folder's lock (``fieldbench._io.folder_lock``), as ``generate``
    and ``datasets.get`` do."""
    root = Path(root)
    card_path = root / CARD_NAME
    if not card_path.is_file():
        raise FileNotFoundError(f"no {CARD_NAME} in {root}: not a finished fieldbench dataset, so there is nothing "
                                "to migrate (an unfinished version-1 run cannot be resumed by this fieldbench: "
                                "generate it again into an empty folder)")
    with folder_lock(root, what="migrating"):
        data = read_json(card_path, CARD_REPAIR)
        if not isinstance(data, dict) or data.get("format") != "fieldbench-dataset":
            raise CardError(f"{card_path} is not a fieldbench dataset card")
        if data.get("schema_version") == SCHEMA_VERSION:
            card = DatasetCard.from_json(card_path.read_bytes(), str(card_path))
            readme = root / README_NAME
            if not readme.is_file() or readme.read_text(errors="replace") != dataset_readme(card):
                atomic_write_text(readme, dataset_readme(card))  # a current folder may lack it (or hold an old one)
            return MigrationResult(root, False, {s: s for s in card.splits}, card.content_sha256,
                                   card.content_sha256, _remove_empty_folders(root))
        if data.get("schema_version") != 1:
            raise CardError(f"{card_path} uses dataset schema version {data.get('schema_version')!r}; this "
                            f"fieldbench migrates version 1 to {SCHEMA_VERSION}: upgrade fieldbench")
        try:
            spec = DatasetSpec.from_dict(data["spec"])  # canonicalises the split names
            old_splits = dict(data["splits"])
        except (KeyError, TypeError, ValueError) as error:
            raise CardError(f"{card_path} is not a valid version-1 card ({error}); {CARD_REPAIR}") from None
        renamed = {old: canonical_split(old) for old in old_splits}
        (root / OLD_MARKER).unlink(missing_ok=True)
        new_splits = {}
        for old, split in old_splits.items():
            new = renamed[old]
            shards = []
            for shard_data in split["shards"]:
                index = int(shard_data["index"])
                before, after = legacy_shard_paths(old, index), shard_paths(new, index)
                for kind in SHARD_FILES:
                    _move(root, before[kind], after[kind])
                shard = _renamed_shard(shard_data, new, after)
                shards.append(shard.to_dict())
                old_manifest = root / before["manifest"]
                if old_manifest.is_file() or not (root / after["manifest"]).is_file():
                    try:
                        manifest = _renamed_shard(read_json(old_manifest, CARD_REPAIR), new, after)
                    except (OSError, ValueError, CardError):
                        manifest = shard  # missing or damaged: the card's record (no timings)
                    atomic_write_text(root / after["manifest"], json.dumps(manifest.to_dict(), indent=1))
                    old_manifest.unlink(missing_ok=True)
            new_splits[new] = split | {"shards": shards}
        previous = str(data.get("content_sha256"))
        upgraded = data | {"schema_version": SCHEMA_VERSION, "spec": spec.to_dict(), "splits": new_splits}
        card = DatasetCard.from_json(json.dumps(upgraded), str(card_path))
        card = dataclasses.replace(card, content_sha256=card.content_digest())
        atomic_write_text(root / README_NAME, dataset_readme(card))
        atomic_write_text(card_path, card.to_json())  # last: from now on the folder reads as version 2
        return MigrationResult(root, True, renamed, card.content_sha256, previous, _remove_empty_folders(root))


def _renamed_shard(data, split: str, paths: dict) -> ShardRecord:
    """A version-1 shard record (card entry or manifest) with its new split name and file paths."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise CardError("not a shard record")
    files = {kind: dict(data["files"][kind]) | {"path": paths[kind]} for kind in SHARD_FILES}
    return ShardRecord.from_dict(data | {"split": split, "files": files})
