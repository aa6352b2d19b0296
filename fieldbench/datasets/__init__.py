"""Datasets: the standard registry, fetching (pooch) or rebuilding with verification, and loaders.

``get(name)`` returns a verified local copy of a standard dataset (downloaded from a mirror, or
rebuilt and checked against the registry); ``load(name_or_path, split)`` gives a split as arrays;
``iter_batches`` streams JAX-ready batches shard by shard; ``verify`` and ``publish`` check a
dataset and write mirror-ready files. The registry lives in ``datasets/`` at the repository root.
"""

from ._fetch import (ChecksumError, DatasetUnavailableError, MirrorWarning, cache_root, config_path, dataset_path,
                     get, resolve_mirror)
from ._load import DatasetHandle, SplitData, iter_batches, load, open_dataset
from ._registry import (StaleRegistryError, UnknownDatasetError, build_registry, dataset_spec, list_datasets,
                        registry_entries, update_registry)
from ._resolve import card_points, resolve_spec
from ._verify import DatasetVerificationError, PublishError, VerificationReport, publish, verify

__all__ = [
    "ChecksumError", "DatasetHandle", "DatasetUnavailableError", "DatasetVerificationError", "MirrorWarning",
    "PublishError", "SplitData", "StaleRegistryError", "UnknownDatasetError", "VerificationReport", "build_registry",
    "cache_root", "config_path", "dataset_path", "dataset_spec", "get", "iter_batches", "list_datasets", "load",
    "open_dataset", "publish", "registry_entries", "resolve_mirror", "update_registry", "verify",
    "card_points", "resolve_spec",
]
