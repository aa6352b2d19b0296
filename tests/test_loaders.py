"""Loaders (fieldbench.datasets): ``load`` as arrays and ``iter_batches`` streamed shard by shard.

Checked against the Parquet tables read directly with pyarrow, not against the loader's own code.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fieldbench.datasets import DatasetHandle, SplitData, iter_batches, load, open_dataset
from fieldbench.pipeline import SplitSpec
from fieldbench.sources import ConfigurationSpec, Family, Sources

KEYS = ("family", "centers", "magnetisations", "sizes", "mask", "points", "phi", "field")
SAMPLES, SHARD, POINTS, MAX_SOURCES = 50, 8, 12, 4  # 7 shards: six of 8 samples, one of 2


@pytest.fixture(scope="module")
def dataset(make_dataset) -> Path:
    # Discs and prisms mixed, hence a ConfigurationSpec rather than the disc_configuration fixture.
    configuration = ConfigurationSpec(families=("disc", "prism"), sources=(1, MAX_SOURCES), domain=2.0,
                                      size=(0.1, 0.3), overlap="none")
    return make_dataset("loader-test", {
        "train": SplitSpec(configuration, samples=SAMPLES, points=POINTS, seed=21, shard_size=SHARD),
        "test": SplitSpec(configuration, samples=16, points=POINTS, seed=22, shard_size=SHARD),
    })


@pytest.fixture(scope="module")
def train(dataset) -> SplitData:
    return load(str(dataset), "train")


def raw_tables(root: Path, split: str) -> tuple[pa.Table, pa.Table]:
    # Layout version 2: one Parquet dataset per table, each split a hive partition folder.
    return tuple(pq.read_table(root / kind / f"split={split}") for kind in ("sources", "points"))


def collect(batches) -> list[dict]:
    return [{k: np.asarray(v) for k, v in batch.items()} for batch in batches]


# -- load ------------------------------------------------------------------------------------------
def test_load_shapes_and_dtypes(train):
    assert isinstance(train, SplitData)
    assert train.name == "loader-test" and train.split == "train" and len(train) == SAMPLES
    expected = {
        "family": ((SAMPLES, MAX_SOURCES), np.int8), "mask": ((SAMPLES, MAX_SOURCES), np.bool_),
        "centers": ((SAMPLES, MAX_SOURCES, 2), np.float64), "magnetisations": ((SAMPLES, MAX_SOURCES, 2), np.float64),
        "sizes": ((SAMPLES, MAX_SOURCES, 2), np.float64), "points": ((SAMPLES, POINTS, 2), np.float32),
        "phi": ((SAMPLES, POINTS), np.float32), "field": ((SAMPLES, POINTS, 2), np.float32),
    }
    for key, (shape, dtype) in expected.items():
        value = getattr(train, key)
        assert value.shape == shape and value.dtype == dtype, (key, value.shape, value.dtype)


def test_load_matches_the_tables(dataset, train):
    sources, points = raw_tables(dataset, "train")
    frame = sources.to_pandas()
    counts = frame.groupby("sample").size().reindex(range(SAMPLES), fill_value=0).to_numpy()
    assert counts.min() >= 1 and counts.max() <= MAX_SOURCES and len(set(counts)) > 1  # varied counts
    np.testing.assert_array_equal(train.mask.sum(axis=1), counts)
    # Real sources first, padding after: zero magnetisation, unit size.
    np.testing.assert_array_equal(train.mask, np.arange(MAX_SOURCES)[None, :] < counts[:, None])
    assert np.all(train.magnetisations[~train.mask] == 0) and np.all(train.sizes[~train.mask] == 1)
    families = set()
    for sample in range(SAMPLES):
        rows = frame[frame["sample"] == sample].sort_values("source")
        expected = Sources.from_arrays(np.array([int(Family.parse(f)) for f in rows["family"]]),
                                       rows[["center_x", "center_y"]].to_numpy(),
                                       rows[["magnetisation_x", "magnetisation_y"]].to_numpy(),
                                       rows[["size_x", "size_y"]].to_numpy())
        got = train.sources(sample)
        assert isinstance(got, Sources) and len(got) == counts[sample]
        for key in ("family", "centers", "magnetisations", "sizes"):
            np.testing.assert_array_equal(getattr(got, key), getattr(expected, key))
        families |= set(rows["family"].astype(str))
    assert families == {"disc", "prism"}
    assert set(np.unique(train.family[train.mask])) == {int(Family.DISC), int(Family.PRISM)}
    for axis, name in enumerate("xy"):
        np.testing.assert_array_equal(train.points[..., axis].ravel(), points.column(name).to_numpy())
        np.testing.assert_array_equal(train.field[..., axis].ravel(), points.column(f"h_{name}").to_numpy())
    np.testing.assert_array_equal(train.phi.ravel(), points.column("phi").to_numpy())
    assert len(train.batch) == SAMPLES and train.batch.sample(3).centers.shape == (counts[3], 2)


def test_load_other_split_and_open_dataset(dataset):
    test = load(str(dataset), "test")
    assert len(test) == 16 and test.split == "test"
    assert not np.array_equal(test.centers[:, 0], load(str(dataset), "train").centers[:16, 0])
    handle = open_dataset(str(dataset))
    assert isinstance(handle, DatasetHandle)
    assert handle.splits == ["train", "test"]
    assert [s.index for s in handle.shards("train")] == list(range(7))
    assert handle.spec.splits["train"].samples == SAMPLES


# -- iter_batches ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size, drop_remainder", [(8, False), (6, False), (6, True), (50, False),
                                                         (64, False), (64, True), (1, False)])
def test_every_sample_once_per_epoch(dataset, train, shuffle, batch_size, drop_remainder):
    batches = collect(iter_batches(str(dataset), "train", batch_size, shuffle=shuffle, seed=3,
                                   drop_remainder=drop_remainder, as_jax=False))
    sizes = [len(b["sample"]) for b in batches]
    full, rest = divmod(SAMPLES, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest and not drop_remainder else [])
    seen = np.concatenate([b["sample"] for b in batches]) if batches else np.zeros(0, dtype=np.int64)
    assert len(np.unique(seen)) == len(seen)  # nothing twice
    if not drop_remainder:
        assert sorted(seen.tolist()) == list(range(SAMPLES))  # nothing missing
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))
    for batch in batches:  # every row is the sample it claims to be
        for key in KEYS:
            np.testing.assert_array_equal(batch[key], getattr(train, key)[batch["sample"]], err_msg=key)


def test_shuffle_is_reproducible_and_differs_between_epochs_and_seeds(dataset):
    def order(seed, epoch, shuffle=True):
        return np.concatenate([np.asarray(b["sample"]) for b in iter_batches(
            str(dataset), "train", 8, shuffle=shuffle, seed=seed, epoch=epoch, as_jax=False)])

    first = order(0, 0)
    np.testing.assert_array_equal(first, order(0, 0))
    orders = [first, order(0, 1), order(1, 0), order(1, 1)]
    for i in range(len(orders)):
        for j in range(i + 1, len(orders)):
            assert not np.array_equal(orders[i], orders[j]), (i, j)
    assert not np.array_equal(first, np.arange(SAMPLES))
    # Without shuffle the seed and the epoch do not matter.
    np.testing.assert_array_equal(order(0, 0, shuffle=False), order(5, 9, shuffle=False))


def test_batches_are_jax_arrays_by_default(dataset):
    import jax

    batch = next(iter_batches(str(dataset), "train", 5))
    assert set(batch) == set(KEYS) | {"sample"}
    for key, value in batch.items():
        assert isinstance(value, jax.Array), key
    for key in ("points", "phi", "field"):
        assert batch[key].dtype == np.float32
    for key in ("centers", "magnetisations", "sizes"):
        assert batch[key].dtype == np.float64
    assert batch["mask"].dtype == np.bool_ and batch["points"].shape == (5, POINTS, 2)
    plain = next(iter_batches(str(dataset), "train", 5, as_jax=False))
    assert all(isinstance(v, np.ndarray) for v in plain.values())


@pytest.mark.parametrize("shuffle", [False, True])
def test_numpy_batches_own_writable_arrays(dataset, train, shuffle):
    """For any framework: before, a NumPy batch's phi was a read-only view of Arrow's buffer
    (torch.from_numpy warns on it, and writing through it is undefined) and the other arrays views
    into the shard's block. Now every array of every batch is its own, writable and C-contiguous,
    and holds the same values as before."""
    batches = list(iter_batches(str(dataset), "train", 6, shuffle=shuffle, seed=2, as_jax=False))
    for batch in batches:
        assert set(batch) == set(KEYS) | {"sample"}
        for key, value in batch.items():
            assert type(value) is np.ndarray, key
            assert value.flags.writeable and value.flags.owndata and value.flags.c_contiguous, key
            if key != "sample":
                np.testing.assert_array_equal(value, getattr(train, key)[batch["sample"]], err_msg=key)
    assert sorted(np.concatenate([b["sample"] for b in batches]).tolist()) == list(range(SAMPLES))


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [3, 8, 12])
def test_reads_shard_by_shard(dataset, monkeypatch, shuffle, batch_size):
    reads = []
    original = DatasetHandle.read_shard

    def counting(self, split, index):
        reads.append(index)
        return original(self, split, index)

    monkeypatch.setattr(DatasetHandle, "read_shard", counting)
    stream = iter_batches(str(dataset), "train", batch_size, shuffle=shuffle, seed=1, as_jax=False)
    first = next(stream)
    if batch_size <= SHARD and not shuffle:
        assert reads == [0]  # the first batch comes from the first shard alone
    delivered = 0
    for batch in itertools.chain([first], stream):
        delivered += len(batch["sample"])
        sizes = [min(SHARD, SAMPLES - SHARD * i) for i in reads]
        # The last shard read was needed for this batch: nothing is read ahead.
        assert sum(sizes[:-1]) < delivered <= sum(sizes), (reads, delivered)
    assert delivered == SAMPLES
    assert sorted(reads) == list(range(7))  # each shard read exactly once per epoch


# -- errors ----------------------------------------------------------------------------------------
def test_errors(dataset, tmp_path):
    with pytest.raises(KeyError, match=r"split 'validation' not in loader-test; available: \['train', 'test'\]"):
        load(str(dataset), "validation")
    with pytest.raises(KeyError, match="validation"):
        next(iter_batches(str(dataset), "validation", 4))
    with pytest.raises(FileNotFoundError, match="neither a dataset directory nor a standard dataset"):
        load(str(tmp_path / "missing"), "train")
    with pytest.raises(FileNotFoundError, match="neither a dataset directory"):
        next(iter_batches(str(tmp_path / "missing"), "train", 4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no card.json"):
        load(str(tmp_path / "empty"), "train")
    for size in (0, -2):
        with pytest.raises(ValueError, match=f"batch_size must be positive; got {size}"):
            next(iter_batches(str(dataset), "train", size))


def test_refuses_an_unknown_schema_version(dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    card = json.loads((copy / "card.json").read_text())
    card["schema_version"] = 999
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="schema version 999"):
        load(str(copy), "train")
