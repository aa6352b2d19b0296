"""Datasets: the standard registry, fetching (pooch) or rebuilding with verification, and loaders.

``load(name_or_path, split)`` gives a split as arrays; ``iter_batches`` streams JAX-ready batches
shard by shard. Standard datasets are named in ``datasets/`` at the repository root.
"""

from ._load import DatasetHandle, SplitData, iter_batches, load, open_dataset

__all__ = ["DatasetHandle", "SplitData", "iter_batches", "load", "open_dataset"]
