"""The dataset card (``card.json`` at a dataset's root) as a typed, frozen object.

``generate`` writes the card last, from the shard manifests; everything else (loaders,
verification, the registry, downloads) reads it through ``DatasetCard``. The JSON layout is
documented in ``docs/data_format.md``; in short::

    {"format": "fieldbench-dataset", "schema_version": 2, "fieldbench_version": "...",
     "spec": {...DatasetSpec.to_dict()...},
     "splits": {"<split>": {"samples": S, "points_per_sample": N, "shards": [<shard>, ...],
                            "content_sha256": "..."}},
     "content_sha256": "...", "values": "...", "created": "...", "generated_with": {...}}

A ``<shard>`` is the shard's manifest (``_manifests/<split>/part-NNNNN.json``) without its timings.
``dataset_readme(card)`` is the ``README.md`` written beside the card: a Hugging Face dataset card
whose YAML ``configs`` make ``datasets.load_dataset(root, "points", split=...)`` read the folder.

Digests (``content_digest``): a split's ``content_sha256`` is the sha256 of the concatenated hex
sha256s of its shards' files (by shard index; sources, then points), the card's is the sha256 of
the concatenated split digests in sorted split order: a hash of all file hashes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

import fsspec

from .._io import read_json, sha256_bytes
from ..exceptions import CardError, OldLayoutError
from ._format import PARTITION_KEY, SCHEMA_VERSION, TABLES
from ._spec import DatasetSpec, SplitSpec

__all__ = ["CARD_NAME", "CARD_FORMAT", "CARD_REPAIR", "CardError", "FileRecord", "ShardRecord", "SplitRecord",
           "DatasetCard", "read_card", "SHARD_FILES", "README_NAME", "dataset_readme", "OldLayoutError",
           "migrate_command"]

CARD_NAME = "card.json"
#: The Hugging Face dataset card beside ``card.json`` (``dataset_readme``).
README_NAME = "README.md"
CARD_FORMAT = "fieldbench-dataset"
#: The two data files of every shard, in the order the card lists (and hashes) them.
SHARD_FILES = ("sources", "points")
#: How to repair a damaged card (a generate rerun rebuilds it from the shard manifests).
CARD_REPAIR = ("delete it and rerun `fieldbench generate` with the same spec and --out (finished shards are "
               "kept, the card is rebuilt from their manifests), or `fieldbench datasets get NAME` for a "
               "standard dataset in the cache")
VALUES_NOTE = "computed in float64, stored as float32; sources stored exactly (float64)"


def _digest_of(digests: Iterable[str]) -> str:
    return sha256_bytes("".join(digests).encode())


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """One Parquet file of a shard: its path relative to the dataset root, sha256, size, row count."""

    path: str
    sha256: str
    bytes: int
    rows: int

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping) -> FileRecord:
        return cls(path=str(data["path"]), sha256=str(data["sha256"]), bytes=int(data["bytes"]),
                   rows=int(data["rows"]))


@dataclasses.dataclass(frozen=True)
class ShardRecord:
    """A finished shard: its manifest, and (without ``timings``) its entry in the card.

    ``spec_sha256`` is the ``SplitSpec.sha256`` it was made from; ``fingerprint`` the content
    checksums of ``pipeline.fingerprint`` (kept as read: older cards hold older kinds)."""

    split: str
    index: int
    spec_sha256: str | None
    samples: int
    points: int
    files: Mapping[str, FileRecord]
    fingerprint: Mapping
    timings: Mapping | None = None

    def to_dict(self) -> dict:
        out = {"split": self.split, "index": self.index, "spec_sha256": self.spec_sha256, "samples": self.samples,
               "points": self.points, "files": {kind: entry.to_dict() for kind, entry in self.files.items()},
               "fingerprint": self.fingerprint}
        if self.timings is not None:
            out["timings"] = self.timings
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ShardRecord:
        """A shard from its JSON; ``CardError`` if a field is missing or has the wrong type."""
        try:
            files = {kind: FileRecord.from_dict(data["files"][kind]) for kind in SHARD_FILES}
            if not isinstance(data["fingerprint"], Mapping):
                raise TypeError("fingerprint must be an object")
            return cls(split=str(data["split"]), index=int(data["index"]), spec_sha256=data.get("spec_sha256"),
                       samples=int(data["samples"]), points=int(data["points"]), files=files,
                       fingerprint=dict(data["fingerprint"]), timings=data.get("timings"))
        except (KeyError, TypeError, ValueError) as error:
            raise CardError(f"not a valid shard record ({type(error).__name__}: {error})") from None

    def without_timings(self) -> ShardRecord:
        return dataclasses.replace(self, timings=None)


@dataclasses.dataclass(frozen=True)
class SplitRecord:
    """A generated split: its sizes, its shards (by index) and their digest."""

    samples: int
    points_per_sample: int
    shards: tuple[ShardRecord, ...]
    content_sha256: str

    @classmethod
    def of(cls, split: SplitSpec, shards: Iterable[ShardRecord]) -> SplitRecord:
        """The record of ``split`` made of ``shards`` (timings dropped), with its digest computed."""
        shards = tuple(sorted((s.without_timings() for s in shards), key=lambda s: s.index))
        return cls(samples=split.samples, points_per_sample=split.points, shards=shards,
                   content_sha256=_digest_of(f.sha256 for s in shards for f in s.files.values()))

    def files(self) -> list[FileRecord]:
        return [shard.files[kind] for shard in self.shards for kind in SHARD_FILES]

    def content_digest(self) -> str:
        """The digest of this split's file hashes, recomputed (``content_sha256`` is what was recorded)."""
        return _digest_of(f.sha256 for s in sorted(self.shards, key=lambda s: s.index) for f in s.files.values())

    def to_dict(self) -> dict:
        return {"samples": self.samples, "points_per_sample": self.points_per_sample,
                "shards": [shard.to_dict() for shard in self.shards], "content_sha256": self.content_sha256}

    @classmethod
    def from_dict(cls, data: Mapping) -> SplitRecord:
        try:
            shards = data["shards"]
            if not isinstance(shards, list):
                raise TypeError("shards must be a list")
            return cls(samples=int(data["samples"]), points_per_sample=int(data["points_per_sample"]),
                       shards=tuple(ShardRecord.from_dict(shard) for shard in shards),
                       content_sha256=str(data["content_sha256"]))
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, CardError):
                raise
            raise CardError(f"not a valid split record ({type(error).__name__}: {error})") from None


@dataclasses.dataclass(frozen=True)
class DatasetCard:
    """What a dataset directory holds: its spec, every shard's files and checksums, provenance."""

    spec: DatasetSpec
    splits: Mapping[str, SplitRecord]
    content_sha256: str
    fieldbench_version: str | None = None
    created: str | None = None
    generated_with: Mapping | None = None
    values: str = VALUES_NOTE
    schema_version: int = SCHEMA_VERSION
    format: str = CARD_FORMAT

    @classmethod
    def of(cls, spec: DatasetSpec, splits: Mapping[str, SplitRecord], **provenance) -> DatasetCard:
        """The card of ``splits`` (generated from ``spec``), with its ``content_sha256`` computed;
        ``provenance``: ``fieldbench_version``, ``created``, ``generated_with``."""
        card = cls(spec=spec, splits=dict(splits), content_sha256="", **provenance)
        return dataclasses.replace(card, content_sha256=card.content_digest())

    @property
    def name(self) -> str:
        return self.spec.name

    def files(self) -> list[FileRecord]:
        """Every data file the card lists: per split, per shard, sources then points."""
        return [entry for split in self.splits.values() for entry in split.files()]

    def shards(self) -> list[ShardRecord]:
        return [shard for split in self.splits.values() for shard in split.shards]

    @property
    def points(self) -> int:
        """Evaluation points (with potential and field) over every shard."""
        return sum(shard.points for shard in self.shards())

    def content_digest(self) -> str:
        """The card's digest recomputed from its file hashes (through each split's ``content_digest``);
        ``content_sha256`` is what was recorded."""
        return _digest_of(self.splits[s].content_digest() for s in sorted(self.splits))

    def to_dict(self) -> dict:
        return {"format": self.format, "schema_version": self.schema_version,
                "fieldbench_version": self.fieldbench_version, "spec": self.spec.to_dict(),
                "splits": {name: split.to_dict() for name, split in self.splits.items()},
                "content_sha256": self.content_sha256, "values": self.values, "created": self.created,
                "generated_with": self.generated_with}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes, path: str = CARD_NAME) -> DatasetCard:
        """The card in ``text`` (read from ``path``, named in errors). Every error is one line:
        ``DamagedFileError`` (not JSON), ``CardError`` (another format or schema version, an invalid
        spec, a missing field)."""
        data = read_json(path, CARD_REPAIR, text=text)
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CardError(f"{path} is not a fieldbench dataset card (format={found!r})")
        if data.get("schema_version") == 1:
            root = path[:-len(CARD_NAME)].rstrip("/") if path.endswith(CARD_NAME) else path
            raise OldLayoutError(f"{root or '.'} is a dataset in the version-1 layout (<split>/points/...); move it "
                                 f"into the current one in place: {migrate_command(root or '.')}")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise CardError(f"{path} uses dataset schema version {data.get('schema_version')!r}, this fieldbench "
                            f"reads version {SCHEMA_VERSION}: upgrade fieldbench or regenerate the dataset")
        try:
            spec = DatasetSpec.from_dict(data["spec"])
        except (KeyError, TypeError, ValueError) as error:
            raise CardError(f"{path}: the card's spec is invalid: {error}") from None
        try:
            splits = data["splits"]
            if not isinstance(splits, Mapping):
                raise TypeError("splits must be an object")
            return cls(spec=spec, splits={name: SplitRecord.from_dict(split) for name, split in splits.items()},
                       content_sha256=str(data["content_sha256"]), fieldbench_version=data.get("fieldbench_version"),
                       created=data.get("created"), generated_with=data.get("generated_with"),
                       values=data.get("values", VALUES_NOTE), schema_version=data["schema_version"],
                       format=data["format"])
        except (KeyError, TypeError, ValueError) as error:
            detail = str(error) if isinstance(error, CardError) else f"{type(error).__name__}: {error}"
            raise CardError(f"{path} is not a valid dataset card ({detail}); {CARD_REPAIR}") from None


def migrate_command(root: str) -> str:
    """The command that moves the version-1 dataset at ``root`` into the current layout."""
    return f"`fieldbench datasets migrate {root}`"


def _yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid double-quoted YAML scalar


def dataset_readme(card: DatasetCard) -> str:
    """The ``README.md`` of a dataset folder: YAML front matter with one config per table (its
    ``data_files`` per split, the splits' Parquet files by glob) for Hugging Face ``datasets``
    and the hub, then a short description. A function of the card's content only (no dates), so
    a folder's README is the same wherever it was written."""
    splits = list(card.splits)
    lines = ["---", f"pretty_name: {_yaml_string(card.name)}", "tags:", "- fieldbench", "- magnetostatics",
             "configs:"]
    for table in TABLES:
        lines += [f"- config_name: {table}"] + (["  default: true"] if table == TABLES[0] else []) + ["  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {table}/{PARTITION_KEY}={split}/part-*.parquet"]
    lines.append("---")
    rows = [f"| `{name}` | {record.samples} | {record.points_per_sample} | {len(record.shards)} |"
            for name, record in card.splits.items()]
    first = splits[0]
    body = f"""
# {card.name}

{card.spec.description or "A fieldbench dataset."}

Exact magnetostatic potentials `phi` and fields `H = -grad(phi)` of magnetised sources at evaluation
points, generated by fieldbench (`pip install fieldbench`). Two tables, each its own Parquet dataset with
the splits as hive partitions (`split=<name>`): `points` (one row per sample and evaluation point:
`sample`, coordinates, `phi`, `h_*`) and `sources` (one row per sample and source: `sample`,
`source`, `family`, `center_*`, `magnetisation_*`, `size_*`, full extents). `card.json` holds the
full spec, every file's sha256 and the content digest `{card.content_sha256}`.

| split | samples | points per sample | shards |
|---|---|---|---|
{chr(10).join(rows)}

```python
import datasets, pandas as pd
points = datasets.load_dataset("PATH_OR_REPO", "points", split="{first}")
sources = datasets.load_dataset("PATH_OR_REPO", "sources", split="{first}")
every_split = pd.read_parquet("PATH/points")        # with a `split` column
one_split = pd.read_parquet("PATH/points/split={first}")
```
"""
    return "\n".join(lines) + "\n" + body


def read_card(root: str, storage_options: dict | None = None) -> DatasetCard:
    """The card of the dataset at ``root`` (a path or fsspec URL). ``FileNotFoundError`` when there
    is none; a damaged or unreadable one raises a one-line ``ValueError`` (see ``from_json``)."""
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    path = f"{base}/{CARD_NAME}"
    if not fs.exists(path):
        raise FileNotFoundError(f"no {CARD_NAME} in {root}: not a fieldbench dataset (or generation has not "
                                "finished: rerun `fieldbench generate` to resume it)")
    return DatasetCard.from_json(fs.cat_file(path), path)
