"""Specs of datasets: what to generate, fully and serialisably (they go into every dataset card).

A spec is a frozen object from the CLI to the shard writer: ``generate`` hands each Dask task the
``SplitSpec`` itself, and its digest (``sha256``, the JSON with sorted keys) is computed once per
object, on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Mapping

import numpy as np

from .._io import json_sha256, read_json

from ..sources import ConfigurationSpec, Family

__all__ = ["SplitSpec", "DatasetSpec", "POINT_METHODS", "canonical_split", "SPLIT_NAME"]

POINT_METHODS = ("uniform", "grid")
#: A split name is an identifier (letters, digits, underscores): Hugging Face ``datasets`` refuses
#: other split names (``^\w+(\.\w+)*$``), and a name is a folder name (``points/split=<name>``).
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def canonical_split(name: str) -> str:
    """The canonical name of a split. Layout version 1 named splits with hyphens (``test-multi``);
    those names stay accepted everywhere a split is passed and mean ``test_multi``: every ``-``
    becomes ``_``. Any other name is returned as it is (the lookup that follows reports it)."""
    return name.replace("-", "_") if isinstance(name, str) else name


def _configuration_to_dict(spec: ConfigurationSpec) -> dict:
    out = dataclasses.asdict(spec)
    out["families"] = [Family.parse(f).name.lower() for f in spec.families]
    if out["centres"] == "uniform":  # the default stays implicit: cards written before it existed stay valid
        del out["centres"]
    return {key: list(value) if isinstance(value, tuple) else value for key, value in out.items()}


def _configuration_from_dict(data: Mapping) -> ConfigurationSpec:
    data = dict(data)
    unknown = set(data) - {f.name for f in dataclasses.fields(ConfigurationSpec)}
    if unknown:
        raise ValueError(f"unknown configuration field(s) {sorted(unknown)}; known: "
                         + ", ".join(f.name for f in dataclasses.fields(ConfigurationSpec)))
    for key in ("families", "sources", "domain", "size"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return ConfigurationSpec(**data)


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """One split of a dataset: ``samples`` configurations, each evaluated at ``points`` points.

    configuration: how each sample's sources are drawn (families, count, overlap policy, ...).
    points: N evaluation points per sample.
    point_method: "uniform" (random in the domain) or "grid" (regular, N = n^d).
    point_domain: where points go; None means the configuration's domain.
    exclude_interiors: keep points strictly outside every source of their sample.
    seed: root of all randomness of the split (shard i draws from SeedSequence(seed, spawn_key=(i,))).
    shard_size: samples per Parquet shard (the unit of work, of resumption and of download).
    """

    configuration: ConfigurationSpec
    samples: int
    points: int = 1024
    point_method: str = "uniform"
    point_domain: float | tuple[float, float] | None = None
    exclude_interiors: bool = False
    seed: int = 0
    shard_size: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.configuration, ConfigurationSpec):
            raise TypeError("configuration must be a fieldbench.sources.ConfigurationSpec")
        for name in ("samples", "points", "shard_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.point_method not in POINT_METHODS:
            raise ValueError(f"point_method must be one of {POINT_METHODS}; got {self.point_method!r}")
        if self.point_method == "grid":
            side = round(self.points ** (1 / self.configuration.dim))
            if side ** self.configuration.dim != self.points:
                raise ValueError(f"point_method='grid' needs points = n^{self.configuration.dim}; got {self.points}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {self.seed!r}")
        if isinstance(self.point_domain, list):
            object.__setattr__(self, "point_domain", tuple(self.point_domain))

    @property
    def dim(self) -> int:
        return self.configuration.dim

    @property
    def shards(self) -> int:
        return math.ceil(self.samples / self.shard_size)

    @property
    def max_sources(self) -> int:
        return int(self.configuration.sources[1])

    def shard_range(self, index: int) -> range:
        """Global sample indices of one shard."""
        if not 0 <= index < self.shards:
            raise IndexError(f"shard {index} out of range: this split has {self.shards} shard(s)")
        return range(index * self.shard_size, min((index + 1) * self.shard_size, self.samples))

    @functools.cached_property
    def sha256(self) -> str:
        """Digest of the split (``to_dict`` as JSON with sorted keys); each shard manifest records it,
        so a rerun redoes the shards of a changed split. Computed once per object."""
        return json_sha256(self.to_dict())

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["configuration"] = _configuration_to_dict(self.configuration)
        if isinstance(self.point_domain, tuple):
            out["point_domain"] = list(self.point_domain)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> SplitSpec:
        data = dict(data)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown split field(s) {sorted(unknown)}; known: "
                             + ", ".join(f.name for f in dataclasses.fields(cls)))
        if "configuration" not in data or "samples" not in data:
            raise ValueError("a split needs at least 'configuration' and 'samples'")
        data["configuration"] = _configuration_from_dict(data["configuration"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: a set of splits (e.g. train, val, test_single, test_multi, test_overlap).

    Split names are identifiers (``SPLIT_NAME``); ``from_dict`` accepts the hyphenated names of
    older spec files (``test-multi``) and stores their canonical form (``canonical_split``)."""

    name: str
    splits: Mapping[str, SplitSpec]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"dataset name must be non-empty without '/', '\\' or spaces; got {self.name!r}")
        if not self.splits:
            raise ValueError("a dataset needs at least one split")
        for split in self.splits:
            if not isinstance(split, str) or not SPLIT_NAME.match(split):
                hint = f" (use {canonical_split(split)!r})" if SPLIT_NAME.match(str(canonical_split(split))) else ""
                raise ValueError(f"split name must be letters, digits and underscores; got {split!r}{hint}")
        seeds = [s.seed for s in self.splits.values()]
        if len(set(seeds)) != len(seeds):
            raise ValueError("every split needs its own seed (splits must not share configurations); "
                             f"got seeds {dict(zip(self.splits, seeds))}")
        dims = {s.dim for s in self.splits.values()}
        if len(dims) > 1:
            raise ValueError("all splits of a dataset must have the same dimension")

    @functools.cached_property
    def sha256(self) -> str:
        """Digest of the dataset spec (``to_dict`` as JSON with sorted keys): the registry's
        ``spec_sha256``, how it notices an edited spec. Computed once per object."""
        return json_sha256(self.to_dict())

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "splits": {name: spec.to_dict() for name, spec in self.splits.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> DatasetSpec:
        if "name" not in data or "splits" not in data:
            raise ValueError("a dataset spec needs 'name' and 'splits'")
        splits = {}
        for name, split in data["splits"].items():
            canonical = canonical_split(name)
            if canonical in splits:
                raise ValueError(f"splits {name!r} and {canonical!r} are one split ({canonical!r}): rename one")
            splits[canonical] = SplitSpec.from_dict(split)
        return cls(name=data["name"], description=data.get("description", ""), splits=splits)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_file(cls, path) -> DatasetSpec:
        """A spec from a JSON file (``to_json`` format); a damaged or invalid file raises a one-line
        ``ValueError`` naming the file and what to do."""
        fix = ("fix the file: it must hold a dataset spec as DatasetSpec.to_json writes it (see "
               "fieldbench/datasets/standard/*.json)")
        data = read_json(path, fix)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path} holds JSON but not a dataset spec (a JSON object); {fix}")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a valid dataset spec ({error}); {fix}") from None
