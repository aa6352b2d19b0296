"""Datasets: the standard registry, fetching (pooch) or rebuilding with verification, and loaders.

``get(name)`` returns a verified local copy of a standard dataset (downloaded from a mirror, or
rebuilt and checked against the registry); ``load(name_or_path, split)`` gives a split as arrays;
``iter_batches`` streams JAX-ready batches shard by shard; ``verify`` checks a dataset. Reading
the registry (``_registry``) is apart from writing it (``_register``: ``update_registry``,
``build_registry``) and from writing mirrors (``_publish``). The specs and the registry are package
data, ``fieldbench/datasets/standard/``; ``docs/data_format.md`` describes every file.
"""

from ._fetch import ChecksumError, DatasetUnavailableError, MirrorWarning, get
from ._load import DatasetHandle, SplitData, iter_batches, load, open_dataset
from ._publish import PublishError, publish
from ._register import Registration, build_registry, register, update_registry
from ._registry import (StaleRegistryError, UnknownDatasetError, dataset_listing, dataset_spec, list_datasets,
                        registry_entries)
from ._resolve import resolve_spec
from ._mirrors import archive_name
from ._settings import cache_root, config_path, dataset_path, resolve_mirrors
from ._verify import DatasetVerificationError, VerificationReport, verify

__all__ = [
    "ChecksumError", "DatasetHandle", "DatasetUnavailableError", "DatasetVerificationError", "MirrorWarning",
    "PublishError", "Registration", "SplitData", "StaleRegistryError", "UnknownDatasetError", "VerificationReport",
    "build_registry", "cache_root", "config_path", "dataset_listing", "dataset_path", "dataset_spec", "get",
    "iter_batches", "list_datasets", "load", "open_dataset", "publish", "register", "registry_entries",
    "resolve_mirrors", "archive_name", "update_registry", "verify", "resolve_spec",
]
