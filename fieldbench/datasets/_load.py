"""Loaders: a whole split as NumPy arrays, or a stream of batches (JAX or plain NumPy) read shard by shard.

Every function taking a split accepts its canonical name (``test_multi``) and the hyphenated one of
layout version 1 (``test-multi``), through ``fieldbench.pipeline.canonical_split``."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import time
from collections.abc import Iterator

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import UnknownSplitError
from ..pipeline import (CARD_NAME, SHARD_FILES, DatasetCard, DatasetSpec, ShardRecord, batch_from_tables,
                        canonical_split, read_card, shard_paths)
from ..sources import SourceBatch, Sources
from ._fetch import get
from ._registry import list_datasets

__all__ = ["SplitData", "load", "iter_batches", "open_dataset", "DatasetHandle"]


@functools.cache
def _settle_arrow_at_exit() -> None:
    """Once per process, before the first Parquet read: at exit, collect garbage and yield briefly
    while the interpreter is still whole. pyarrow's leftover cleanup otherwise races interpreter
    finalisation, and a process that called ``load`` dies with "terminate called without an active
    exception" (exit 134) after its work is done: 3 of 16 runs of ``fb.datasets.load(...)`` in a
    fresh process (pyarrow 26.0.1, reading from buffers as below), 0 of 20 with this handler."""
    def settle() -> None:
        gc.collect()
        time.sleep(0.05)

    atexit.register(settle)


@dataclasses.dataclass(frozen=True)
class DatasetHandle:
    """A generated dataset: where it is and its card."""

    root: str
    card: DatasetCard
    storage_options: dict

    @property
    def spec(self) -> DatasetSpec:
        return self.card.spec

    @property
    def splits(self) -> list[str]:
        return list(self.card.splits)

    def split_name(self, split: str) -> str:
        """The canonical name of ``split`` (an old hyphenated alias is accepted); ``UnknownSplitError``
        when the dataset has no such split."""
        name = canonical_split(split)
        if name not in self.card.splits:
            raise UnknownSplitError(f"split {split!r} not in {self.card.name}; available: {self.splits}")
        return name

    def shards(self, split: str) -> list[ShardRecord]:
        split = canonical_split(split)
        if split not in self.card.splits:
            raise UnknownSplitError(f"split {split!r} not in {self.card.name}; available: {self.splits}")
        return list(self.card.splits[split].shards)

    def read_shard(self, split: str, index: int):
        _settle_arrow_at_exit()
        fs, base = fsspec.core.url_to_fs(self.root, **self.storage_options)
        paths = shard_paths(canonical_split(split), index)
        # Whole files into memory, then Arrow reads from a buffer: reading through a Python file
        # object made pyarrow 26 abort at interpreter exit now and then (apache/arrow#33975).
        return tuple(pq.read_table(pa.BufferReader(fs.cat_file(f"{base}/{paths[kind]}"))) for kind in SHARD_FILES)


def open_dataset(name_or_path: str, *, storage_options: dict | None = None) -> DatasetHandle:
    """A dataset by path/URL (a directory with card.json) or by standard name (fetched or rebuilt)."""
    storage_options = storage_options or {}
    root = str(name_or_path)
    fs, base = fsspec.core.url_to_fs(root, **storage_options)
    if not fs.exists(f"{base}/{CARD_NAME}"):
        if root in list_datasets():
            root = str(get(root))
        elif fs.exists(base):
            read_card(root, storage_options)  # raises the explanatory FileNotFoundError
        else:
            raise FileNotFoundError(f"{name_or_path!r} is neither a dataset directory nor a standard dataset; "
                                    f"standard datasets: {', '.join(list_datasets())}")
    return DatasetHandle(root, read_card(root, storage_options), storage_options)


@dataclasses.dataclass(frozen=True)
class SplitData:
    """A split as arrays. S samples, K sources (padded, ``mask``), N points per sample, d dims.

    family (S, K) int8 codes; centers, magnetisations, sizes (S, K, d) float64 (sizes are full
    extents); mask (S, K) bool; points (S, N, d), phi (S, N), field (S, N, d) float32.
    """

    name: str
    split: str
    family: np.ndarray
    centers: np.ndarray
    magnetisations: np.ndarray
    sizes: np.ndarray
    mask: np.ndarray
    points: np.ndarray
    phi: np.ndarray
    field: np.ndarray

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def batch(self) -> SourceBatch:
        return SourceBatch(self.family, self.centers, self.magnetisations, self.sizes, self.mask)

    def sources(self, index: int) -> Sources:
        """The sources of one sample (unpadded)."""
        return self.batch.sample(index)


def _as_split_data(name: str, split: str, arrays: dict) -> SplitData:
    return SplitData(name, split, *(arrays[k] for k in ("family", "centers", "magnetisations", "sizes", "mask",
                                                         "points", "phi", "field")))


def load(name_or_path: str, split: str, *, storage_options: dict | None = None) -> SplitData:
    """Load a whole split into memory (fine for test splits and mini datasets; stream big ones with
    :func:`iter_batches`).

    The order of ``points`` (sample by sample, as stored) is the order in which
    ``fieldbench.evaluation.evaluate_predictions`` expects predictions."""
    handle = open_dataset(name_or_path, storage_options=storage_options)
    split = handle.split_name(split)
    shards = handle.shards(split)
    dim = handle.spec.splits[split].dim
    width = handle.spec.splits[split].max_sources
    blocks = [batch_from_tables(*handle.read_shard(split, s.index), dim, width) for s in shards]
    arrays = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    return _as_split_data(handle.card.name, split, arrays)


def iter_batches(name_or_path: str, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 epoch: int = 0, drop_remainder: bool = False, as_jax: bool = True,
                 storage_options: dict | None = None) -> Iterator[dict]:
    """Yield batches of ``batch_size`` samples, reading one shard at a time.

    Each batch is a dict with the arrays of :class:`SplitData` (keys ``family``, ``centers``,
    ``magnetisations``, ``sizes``, ``mask``, ``points``, ``phi``, ``field``, plus ``sample``, the
    global sample indices), as JAX arrays when ``as_jax`` (float32 targets, float64 sources).
    With ``as_jax=False``, plain NumPy arrays (same dtypes) for any framework: each batch owns its
    arrays (fresh, writable, C-contiguous), so ``torch.from_numpy`` shares them without a warning
    and editing one batch changes nothing else. Without ``shuffle`` samples come in
    :func:`load`'s order; ``sample`` places a batch's predictions in any order.
    With ``shuffle``, shard order and sample order within each shard are permuted from
    (seed, epoch), so an epoch is reproducible and memory stays at about one shard.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    handle = open_dataset(name_or_path, storage_options=storage_options)
    split = handle.split_name(split)
    shards = [s.index for s in handle.shards(split)]
    dim = handle.spec.splits[split].dim
    width = handle.spec.splits[split].max_sources
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch,)))
    if shuffle:
        shards = list(rng.permutation(shards))
    carry: dict | None = None
    for index in shards:
        block = batch_from_tables(*handle.read_shard(split, int(index)), dim, width)
        if shuffle:
            order = rng.permutation(len(block["sample"]))
            block = {k: v[order] for k, v in block.items()}
        if carry is not None:
            block = {k: np.concatenate([carry[k], block[k]]) for k in block}
        count = len(block["sample"])
        full = count - count % batch_size
        for start in range(0, full, batch_size):
            yield _convert({k: v[start:start + batch_size] for k, v in block.items()}, as_jax)
        carry = {k: v[full:] for k, v in block.items()} if full < count else None
    if carry is not None and not drop_remainder:
        yield _convert(carry, as_jax)


def _convert(batch: dict, as_jax: bool) -> dict:
    if not as_jax:
        # Copies: the slices are views into the shard's block, some of them read-only views of
        # Arrow's buffers (torch.from_numpy warns on those, and writing through one is undefined).
        return {key: np.array(value, order="C", copy=True) for key, value in batch.items()}
    import jax.numpy as jnp

    return {key: jnp.asarray(value) for key, value in batch.items()}
