"""The folder layout (version 2) as other tools read it: pandas, pyarrow.dataset, Dask and Hugging Face
``datasets`` each read every split of both tables with fieldbench's rows, columns and values; the
old hyphenated split names are aliases; a version-1 folder names the migration, which keeps every
file's bytes and the content digest."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fieldbench.datasets import iter_batches, load, open_dataset, verify
from fieldbench.pipeline import (CARD_NAME, README_NAME, SplitSpec, canonical_split, dataset_readme,
                                 legacy_shard_paths, migrate_layout, read_card)
from fieldbench.pipeline._migrate import OLD_MARKER
from fieldbench.exceptions import OldLayoutError

SPLITS = ("train", "test_multi", "val")


@pytest.fixture(scope="module")
def layout_dataset(make_dataset, disc_configuration) -> Path:
    """Three splits; test_multi of two shards with 2-4 discs per sample."""
    return make_dataset("layout", {
        "train": SplitSpec(disc_configuration(), samples=4, points=16, seed=1, shard_size=4),
        "test_multi": SplitSpec(disc_configuration(sources=(2, 4)), samples=6, points=16, seed=2, shard_size=3),
        "val": SplitSpec(disc_configuration(), samples=3, points=16, seed=3, shard_size=3)})


def _own(root: Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A split's (points, sources) as fieldbench reads them (its shards, in order)."""
    handle = open_dataset(str(root))
    tables = [handle.read_shard(split, s.index) for s in handle.shards(split)]
    sources = pa.concat_tables([t[0] for t in tables]).to_pandas()
    points = pa.concat_tables([t[1] for t in tables]).to_pandas()
    sources["family"] = sources["family"].astype(str)
    return points, sources


def _same(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    found = found[list(expected.columns)].reset_index(drop=True)
    if "family" in found:
        found["family"] = found["family"].astype(str)
    pd.testing.assert_frame_equal(found, expected.reset_index(drop=True), check_dtype=False,
                                  check_categorical=False, check_exact=True)


def _sorted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    # Partitioned readers promise no row order across files: order by the table's key (stable).
    return frame.sort_values(["sample", "source"] if table == "sources" else ["sample"], kind="stable")


@pytest.mark.parametrize("split", SPLITS)
def test_pandas_pyarrow_and_dask_read_each_split(layout_dataset, split):
    import dask.dataframe as dd
    import pyarrow.dataset as pads

    for table, expected in zip(("points", "sources"), _own(layout_dataset, split)):
        folder = layout_dataset / table
        whole = pd.read_parquet(folder)  # every split, with the hive partition as a column
        assert set(whole["split"].astype(str)) == set(SPLITS)
        _same(_sorted(whole[whole["split"] == split], table), expected)
        _same(pd.read_parquet(folder / f"split={split}"), expected)
        dataset = pads.dataset(folder, partitioning="hive")
        _same(_sorted(dataset.to_table(filter=pads.field("split") == split).to_pandas(), table), expected)
        frame = dd.read_parquet(str(folder))
        _same(_sorted(frame[frame["split"] == split].compute(), table), expected)
        assert len(expected) == sum(e.rows for s in read_card(str(layout_dataset)).splits[split].shards
                                    for e in [s.files[table]])


@pytest.mark.parametrize("split", SPLITS)
def test_hugging_face_datasets_reads_each_config_and_split(layout_dataset, split, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    for table, expected in zip(("points", "sources"), _own(layout_dataset, split)):
        found = datasets.load_dataset(str(layout_dataset), table, split=split, cache_dir=str(tmp_path / "hf"))
        assert found.column_names == list(expected.columns)  # no partition column added, none lost
        _same(_sorted(found.to_pandas(), table), expected)


def test_readme_declares_one_config_per_table(layout_dataset):
    card = read_card(str(layout_dataset))
    text = (layout_dataset / README_NAME).read_text()
    assert text == dataset_readme(card)
    front = text.split("---\n")[1]
    for table in ("points", "sources"):
        assert f"- config_name: {table}\n" in front
        for split in SPLITS:
            assert f"path: {table}/split={split}/part-*.parquet" in front
    assert verify(layout_dataset).ok and not verify(layout_dataset).strays


def test_old_split_names_are_aliases(layout_dataset):
    assert canonical_split("test-multi") == "test_multi" and canonical_split("train") == "train"
    old, new = load(str(layout_dataset), "test-multi"), load(str(layout_dataset), "test_multi")
    assert old.split == new.split == "test_multi"
    np.testing.assert_array_equal(old.phi, new.phi)
    batches = list(iter_batches(str(layout_dataset), "test-multi", 4, as_jax=False))
    np.testing.assert_array_equal(np.concatenate([b["phi"] for b in batches]), new.phi)


def _to_version_1(root: Path) -> None:
    """Rewrite a version-2 folder as version 1 wrote it: hyphenated split names, <split>/<table>/."""
    data = json.loads((root / CARD_NAME).read_text())
    old = {name: name.replace("_", "-") for name in data["splits"]}
    splits = {}
    for name, split in data["splits"].items():
        shards = []
        for shard in split["shards"]:
            paths = legacy_shard_paths(old[name], shard["index"])
            files = {}
            for kind, entry in shard["files"].items():
                (root / paths[kind]).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / entry["path"], root / paths[kind])
                files[kind] = entry | {"path": paths[kind]}
            shards.append(shard | {"split": old[name], "files": files})
            (root / paths["manifest"]).parent.mkdir(parents=True, exist_ok=True)
            (root / paths["manifest"]).write_text(json.dumps(shards[-1]))
        splits[old[name]] = split | {"shards": shards}
    spec = data["spec"] | {"splits": {old[n]: s for n, s in data["spec"]["splits"].items()}}
    (root / CARD_NAME).write_text(json.dumps(data | {"schema_version": 1, "spec": spec, "splits": splits}))
    for folder in ("points", "sources", "_manifests"):
        shutil.rmtree(root / folder)
    (root / README_NAME).unlink()


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.name + str(p.stat().st_size): p.read_bytes() for p in root.rglob("*.parquet")}


def test_version_1_folder_names_the_migration_and_migrates_losslessly(layout_dataset, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(layout_dataset, root)
    before = read_card(str(root))
    contents = sorted(_bytes(root).values())
    _to_version_1(root)
    (root / OLD_MARKER).write_text("{}")
    with pytest.raises(OldLayoutError, match=f"`fieldbench datasets migrate {root}`"):
        load(str(root), "train")
    assert "fieldbench datasets migrate" in verify(root).problems[0]

    result = migrate_layout(root)
    assert result.migrated and not result.content_changed and result.renamed["test-multi"] == "test_multi"
    after = read_card(str(root))
    assert after.content_sha256 == before.content_sha256 and after.to_dict()["splits"] == before.to_dict()["splits"]
    assert after.spec.to_dict() == before.spec.to_dict()
    assert sorted(_bytes(root).values()) == contents  # moved, not rewritten
    assert not (root / "test-multi").exists() and not (root / OLD_MARKER).exists()
    report = verify(root)
    assert report.ok and not report.strays, str(report)
    assert not migrate_layout(root).migrated  # a rerun on a current folder changes nothing


def test_a_killed_migration_resumes(layout_dataset, tmp_path, monkeypatch):
    root = tmp_path / "old"
    shutil.copytree(layout_dataset, root)
    expected = read_card(str(root)).to_dict()["splits"]
    _to_version_1(root)
    import fieldbench.pipeline._migrate as migrate_module

    moves = []
    real = migrate_module.os.replace

    def dying_replace(source, target):
        if len(moves) == 3:
            raise KeyboardInterrupt  # killed after three files were moved
        moves.append(target)
        real(source, target)

    monkeypatch.setattr(migrate_module.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        migrate_layout(root)
    monkeypatch.setattr(migrate_module.os, "replace", real)
    with pytest.raises(OldLayoutError):  # the card is still the old one: nothing reads a half-moved folder
        read_card(str(root))
    assert migrate_layout(root).migrated
    assert read_card(str(root)).to_dict()["splits"] == expected and verify(root).ok


def test_get_migrates_a_cached_copy_of_the_old_layout(standard_minis, tmp_path):
    from fieldbench.datasets import get

    cached = tmp_path / "datasets" / "circles2d-mini"
    shutil.copytree(standard_minis["circles2d-mini"], cached)
    _to_version_1(cached)
    path = get("circles2d-mini", mirror="", cache_dir=tmp_path, rebuild=False, progress=False)
    assert path == cached and read_card(str(path)).splits.keys() == {"train", "val", "test_single", "test_multi",
                                                                     "test_overlap"}
    assert verify(path).registry == "identical"  # the registered bytes, at their new paths
