"""The generation pipeline (fieldbench.pipeline): determinism across schedulers, exact values, atomic
and resumable writes (a generator killed with SIGKILL), corruption detection, a real dask.distributed
cluster, fsspec targets, refusal to overwrite, and the on-disk format read without fieldbench.

The expected values are computed independently of the pipeline: sources and points are redrawn
from the documented RNG recipe of ``_shards`` and solved one sample at a time with
``fieldbench.potential_and_field``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _helpers import STANDARD

import fieldbench
from fieldbench.datasets import load
from fieldbench.pipeline import (
    CARD_NAME, DatasetCard, DatasetExistsError, DatasetSpec, SplitSpec, fingerprint, generate, read_card, shard_paths,
    shard_rng,
)
from fieldbench.sources import ConfigurationSpec, Family, Sources, sample_configurations

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("_generate_child.py")
DASK_CLI = Path(sys.executable).with_name("dask")
PART = re.compile(r"^part-\d{5}\.(parquet|json)$")


# -- helpers ---------------------------------------------------------------------------------------
# Plain functions, not conftest's fixtures: module-level specs use them at import, and many tests build
# variants (another seed, shard size, family) to generate with a given scheduler, in a child process or twice.
def small_configuration(**overrides) -> ConfigurationSpec:
    options = dict(families=("disc",), sources=(2, 4), domain=2.0, size=(0.2, 0.4), overlap="none")
    options.update(overrides)
    return ConfigurationSpec(**options)


def small_spec(name: str = "small", *, seed: int = 11, samples: int = 23, shard_size: int = 5,
               points: int = 32, test_points: int = 16) -> DatasetSpec:
    """Two splits with uneven last shards: train 23 samples in shards of 5, test 7 in shards of 3."""
    return DatasetSpec(name, {
        "train": SplitSpec(small_configuration(), samples=samples, points=points, seed=seed, shard_size=shard_size),
        "test": SplitSpec(small_configuration(families=("disc", "prism"), sources=(1, 3)), samples=7,
                          points=test_points, seed=seed + 1, shard_size=3),
    })


def part_folder(root, split: str, kind: str) -> Path:
    """The folder of a split's part files of one table (``points/split=<split>``)."""
    return Path(root) / kind / f"split={split}"


def part_names(root, split: str, kind: str) -> list[str]:
    directory = part_folder(root, split, kind)
    return sorted(p.name for p in directory.iterdir() if PART.match(p.name))


def split_tables(root, split: str) -> tuple[pa.Table, pa.Table]:
    """The split's two tables, concatenated from its part files in order (plain pyarrow)."""
    tables = []
    for kind in ("sources", "points"):
        parts = [pq.read_table(part_folder(root, split, kind) / name) for name in part_names(root, split, kind)]
        tables.append(pa.concat_tables(parts))
    return tables[0], tables[1]


def assert_same_files(root_a, root_b, spec: DatasetSpec) -> None:
    """Same part files, byte for byte, and the same table contents."""
    for split in spec.splits:
        for kind in ("sources", "points"):
            names = part_names(root_a, split, kind)
            assert names == part_names(root_b, split, kind)
            assert len(names) == spec.splits[split].shards
            for name in names:
                a = (part_folder(root_a, split, kind) / name).read_bytes()
                b = (part_folder(root_b, split, kind) / name).read_bytes()
                assert a == b, f"{split}/{kind}/{name} differs"
        for a, b in zip(split_tables(root_a, split), split_tables(root_b, split)):
            assert a.equals(b)


def file_ids(root, split: str, index: int) -> dict[str, tuple[int, int]]:
    out = {}
    for kind, relative in shard_paths(split, index).items():
        stat = (Path(root) / relative).stat()
        out[kind] = (stat.st_ino, stat.st_mtime_ns)
    return out


def expected_split(split: SplitSpec, index: int) -> tuple[list[Sources], np.ndarray]:
    """Shard ``index`` of ``split`` redrawn from the documented recipe: configurations, then one
    uniform (B, N, d) draw of points, rounded to float32."""
    rng = shard_rng(split, index)
    configurations = sample_configurations(split.configuration, len(split.shard_range(index)), rng)
    lo, hi = split.configuration.domain
    points = rng.uniform(lo, hi, size=(len(configurations), split.points, split.dim)).astype(np.float32)
    return configurations, points


def assert_within_one_float32_ulp(stored: np.ndarray, exact: np.ndarray) -> None:
    """``stored`` is ``exact`` (float64) rounded to float32, allowing one float32 ulp for the last
    float64 bits, which may differ between a batched and an unbatched solve."""
    assert stored.dtype == np.float32
    spacing = np.spacing(np.abs(exact).astype(np.float32))
    assert np.all(np.abs(stored.astype(np.float64) - exact) <= spacing), \
        np.max(np.abs(stored.astype(np.float64) - exact) / spacing)


@pytest.fixture(scope="session")
def reference(make_dataset) -> tuple[DatasetSpec, Path, DatasetCard]:
    """``small_spec()`` generated once with the sync scheduler, and the card ``generate`` returned
    (tests must not modify it: copy it)."""
    spec = small_spec()
    root, card = make_dataset(spec.name, spec.splits, with_card=True)
    return spec, root, card


def copy_of(reference, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(reference[1], root)
    return root


@pytest.fixture(scope="session")
def minis(standard_minis) -> dict[str, tuple[DatasetSpec, Path]]:
    """circles2d-mini and prisms2d-mini (shared: do not modify), each with its spec read from its
    file in datasets/ (not through the registry code, so the tests check that code too)."""
    return {name: (DatasetSpec.from_dict(json.loads((STANDARD / f"{name}.json").read_text())), root)
            for name, root in standard_minis.items()}


# -- 1. determinism --------------------------------------------------------------------------------
def test_every_local_scheduler_writes_the_same_bytes(tmp_path, reference):
    spec, root, sync_card = reference  # written with scheduler="sync"
    assert sync_card.generated_with["scheduler"] == "sync"
    for scheduler, workers in (("threads", 2), ("processes", 2)):
        card = generate(spec, str(tmp_path / scheduler), scheduler=scheduler, workers=workers)
        assert card.generated_with["scheduler"] == scheduler
        assert card.content_sha256 == sync_card.content_sha256
        assert card.splits == sync_card.splits  # every shard's files, sha256 and fingerprint
        assert_same_files(root, tmp_path / scheduler, spec)

    # The card's checksums describe the files actually written.
    for split_name, entry in sync_card.splits.items():
        split = spec.splits[split_name]
        assert [s.index for s in entry.shards] == list(range(split.shards))
        assert entry.samples == split.samples and entry.points_per_sample == split.points
        for shard in entry.shards:
            for kind in ("sources", "points"):
                data = (root / shard.files[kind].path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == shard.files[kind].sha256
                assert len(data) == shard.files[kind].bytes
            sources = pq.read_table(root / shard.files["sources"].path)
            points = pq.read_table(root / shard.files["points"].path)
            assert fingerprint(sources, points) == shard.fingerprint
            assert shard.samples == len(split.shard_range(shard.index))
            assert points.num_rows == shard.points == shard.samples * split.points
        digest = hashlib.sha256("".join(f.sha256 for s in entry.shards for f in s.files.values()).encode())
        assert entry.content_sha256 == digest.hexdigest()
    assert read_card(str(root)).content_sha256 == sync_card.content_sha256


def test_another_seed_gives_other_data(tmp_path):
    spec, other = small_spec(seed=11), small_spec(seed=31)
    a = generate(spec, str(tmp_path / "a"), scheduler="sync")
    b = generate(other, str(tmp_path / "b"), scheduler="sync")
    assert a.content_sha256 != b.content_sha256
    for split in spec.splits:
        for shard_a, shard_b in zip(a.splits[split].shards, b.splits[split].shards):
            assert shard_a.fingerprint["sources_sha256"] != shard_b.fingerprint["sources_sha256"]
            assert shard_a.fingerprint["points_sha256"] != shard_b.fingerprint["points_sha256"]
        sources_a, points_a = split_tables(tmp_path / "a", split)
        sources_b, points_b = split_tables(tmp_path / "b", split)
        assert not np.any(np.isin(sources_a.column("center_x").to_numpy(), sources_b.column("center_x").to_numpy()))
        assert not np.array_equal(points_a.column("x").to_numpy(), points_b.column("x").to_numpy())


def test_shard_size_is_part_of_the_spec_and_of_the_content(tmp_path):
    # Seeds are per shard, so regrouping samples into shards changes the data; the card records it.
    coarse = small_spec(shard_size=23)
    fine = small_spec(shard_size=5)
    a = generate(coarse, str(tmp_path / "coarse"), splits=["train"], scheduler="sync")
    b = generate(fine, str(tmp_path / "fine"), splits=["train"], scheduler="sync")
    assert a.spec.splits["train"].shard_size == 23 and len(a.splits["train"].shards) == 1
    assert b.spec.splits["train"].shard_size == 5 and len(b.splits["train"].shards) == 5
    assert a.splits["train"].content_sha256 != b.splits["train"].content_sha256
    data_a, data_b = load(str(tmp_path / "coarse"), "train"), load(str(tmp_path / "fine"), "train")
    assert len(data_a) == len(data_b) == 23
    assert not np.array_equal(data_a.points, data_b.points)
    # Sample 5 opens shard 1 of the fine layout: its configuration comes from another stream.
    assert not np.array_equal(data_a.sources(5).centers, data_b.sources(5).centers)


# -- 2. values -------------------------------------------------------------------------------------
def test_stored_sources_points_and_values_are_the_recipe_and_the_exact_solution(reference):
    spec, root, _ = reference
    for split_name, split in spec.splits.items():
        data = load(str(root), split_name)
        for index in range(split.shards):
            configurations, points = expected_split(split, index)
            for offset, sample in enumerate(split.shard_range(index)):
                stored = data.sources(sample)
                expected = configurations[offset]
                np.testing.assert_array_equal(stored.family, expected.family)
                for name in ("centers", "magnetisations", "sizes"):
                    np.testing.assert_array_equal(getattr(stored, name), getattr(expected, name))
                # The stored coordinates ARE the evaluation points (float32, exactly).
                np.testing.assert_array_equal(data.points[sample], points[offset])
                phi, field = fieldbench.potential_and_field(expected, points[offset].astype(np.float64))
                assert_within_one_float32_ulp(data.phi[sample], phi)
                assert_within_one_float32_ulp(data.field[sample], field)


@pytest.mark.parametrize("name", ["circles2d-mini", "prisms2d-mini"])
def test_standard_minis_store_the_exact_field_rounded_to_float32(minis, name):
    spec, root = minis[name]
    data = load(str(root), "test_multi")
    assert data.phi.shape == (48, 1024)
    for sample in range(0, 48, 12):
        sources = Sources.from_arrays(*(np.asarray(getattr(data.sources(sample), k))
                                        for k in ("family", "centers", "magnetisations", "sizes")))
        phi, field = fieldbench.potential_and_field(sources, data.points[sample].astype(np.float64))
        assert_within_one_float32_ulp(data.phi[sample], phi)
        assert_within_one_float32_ulp(data.field[sample], field)


# -- 3. a run killed at a random moment resumes with nothing lost or duplicated ------------------------
INTERRUPT_SPEC = DatasetSpec("interrupted", {
    "train": SplitSpec(small_configuration(), samples=320, points=4096, seed=5, shard_size=8),  # 40 shards
})


def _kill_after_manifests(root: Path, spec_file: Path, manifests: int, log) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(CHILD), str(spec_file), str(root), "threads", "2"],
                               stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True)
    manifest_dir = root / "_manifests" / "train"
    deadline = time.monotonic() + 90
    try:
        while True:
            done = [p for p in manifest_dir.glob("part-*.json")] if manifest_dir.exists() else []
            if len(done) >= manifests:
                break
            assert process.poll() is None, "the generator exited before it could be interrupted"
            assert time.monotonic() < deadline, "the generator wrote no manifests within 90 s"
            time.sleep(0.002)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return process


@pytest.mark.timeout(180)
def test_a_killed_run_resumes_without_losing_or_duplicating_anything(tmp_path):
    spec = INTERRUPT_SPEC
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    reference_card = generate(spec, str(tmp_path / "reference"))
    reference = tmp_path / "reference"
    root = tmp_path / "interrupted"
    with open(tmp_path / "child.log", "wb") as log:
        process = _kill_after_manifests(root, spec_file, 4, log)
    assert process.returncode == -signal.SIGKILL
    assert not (root / CARD_NAME).exists(), "the generator finished before the kill: make the spec bigger"
    with pytest.raises(FileNotFoundError):
        load(str(root), "train")  # not a dataset until the card is written

    # Nothing partial is visible under a final name: every part file is exactly the reference file.
    complete = []
    folders = {"sources": "sources/split=train", "points": "points/split=train", "_manifest": "_manifests/train"}
    for kind in ("sources", "points", "_manifest"):
        directory = root / folders[kind]
        for path in directory.iterdir() if directory.exists() else []:
            assert PART.match(path.name) or path.name.startswith(".tmp-"), path.name
            if not PART.match(path.name):
                continue
            if kind == "_manifest":
                manifest = json.loads(path.read_text())
                expected = json.loads((reference / folders[kind] / path.name).read_text())
                manifest.pop("timings"), expected.pop("timings")
                assert manifest == expected
                complete.append(manifest["index"])
            else:
                assert path.read_bytes() == (reference / folders[kind] / path.name).read_bytes(), path.name
    assert 4 <= len(complete) < spec.splits["train"].shards
    for index in complete:  # a manifest is written last: its shard's files are all there
        for relative in shard_paths("train", index).values():
            assert (root / relative).exists()
    before = {index: file_ids(root, "train", index) for index in complete}

    calls = []
    card = generate(spec, str(root), progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (len(complete), 40), "the rerun did not start from the complete shards"
    assert calls[-1] == (40, 40)
    for index in complete:  # skipped: the very same files (same inode, untouched)
        assert file_ids(root, "train", index) == before[index]

    assert card.content_sha256 == reference_card.content_sha256
    assert card.splits == reference_card.splits
    assert_same_files(reference, root, spec)
    data = load(str(root), "train")
    np.testing.assert_array_equal(split_tables(root, "train")[1].column("sample").to_numpy(),
                                  np.repeat(np.arange(320), 4096))  # every sample once, in order
    assert len(data) == 320
    np.testing.assert_array_equal(data.phi, load(str(reference), "train").phi)


@pytest.mark.parametrize("failing_write", [7, 8, 9])  # the third shard's sources, points, manifest
def test_a_write_failing_halfway_leaves_no_partial_shard(tmp_path, monkeypatch, reference, failing_write):
    from fsspec.implementations.local import LocalFileOpener

    spec, reference_root, reference_card = reference
    root = tmp_path / "ds"
    writes = []
    original_write = LocalFileOpener.write

    def write_then_fail(self, data, *args, **kwargs):
        writes.append(len(data))
        if len(writes) == failing_write:  # half the bytes reach the disk, then the "disk" fails
            original_write(self, data[:len(data) // 2])
            self.f.flush()
            raise OSError(28, "No space left on device (simulated)")
        return original_write(self, data, *args, **kwargs)

    monkeypatch.setattr(LocalFileOpener, "write", write_then_fail)
    with pytest.raises(OSError, match="simulated"):
        generate(spec, str(root), scheduler="sync")
    monkeypatch.setattr(LocalFileOpener, "write", original_write)
    assert not (root / CARD_NAME).exists()
    visible = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
    assert visible, "nothing was written before the failure"
    for path in visible:  # whatever carries a final name is complete
        assert PART.match(path.name), path
        if path.suffix == ".parquet":
            assert path.read_bytes() == (reference_root / path.relative_to(root)).read_bytes(), path
    # Two shards were finished (3 writes each) before the failing write.
    complete = [(split, int(p.stem[len("part-"):])) for split in spec.splits
                for p in (root / "_manifests" / split).glob("part-*.json")]
    assert len(complete) == 2, complete
    before = {shard: file_ids(root, *shard) for shard in complete}
    calls = []
    card = generate(spec, str(root), scheduler="sync", progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (2, 8)
    assert card.splits == reference_card.splits
    assert {shard: file_ids(root, *shard) for shard in complete} == before
    assert_same_files(reference_root, root, spec)


# -- 4. corrupted or missing pieces of finished shards are redone ----------------------------------
def test_corrupted_shards_are_detected_and_regenerated(tmp_path, reference):
    spec, _, card = reference
    root = copy_of(reference, tmp_path)
    original = {i: (root / shard_paths("train", i)["points"]).read_bytes() for i in range(5)}
    before = {i: file_ids(root, "train", i) for i in range(5)}

    flipped = root / shard_paths("train", 2)["points"]
    data = bytearray(flipped.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    flipped.write_bytes(bytes(data))
    flipped_id = file_ids(root, "train", 2)["points"]
    (root / shard_paths("train", 3)["manifest"]).write_text('{"split": "train", "ind')  # torn manifest
    (root / shard_paths("train", 4)["sources"]).unlink()  # a missing file

    # Without verification a finished shard is trusted as it stands (only presence is checked).
    generate(spec, str(root), scheduler="sync", verify_existing=False)
    assert file_ids(root, "train", 2)["points"] == flipped_id
    for index in (0, 1):
        assert file_ids(root, "train", index) == before[index]

    calls = []
    again = generate(spec, str(root), scheduler="sync", progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (7, 8)  # 5 + 3 shards; only the byte-flipped one is redone now
    assert (root / shard_paths("train", 2)["points"]).read_bytes() == original[2]
    assert file_ids(root, "train", 2)["points"] != flipped_id
    for index in (0, 1, 3, 4):
        assert (root / shard_paths("train", index)["points"]).read_bytes() == original[index]
    for index in (0, 1):
        assert file_ids(root, "train", index) == before[index]
    assert again.splits == card.splits
    assert again.content_sha256 == card.content_sha256


# -- 5. a real dask.distributed cluster ---------------------------------------------------------------
def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


@pytest.mark.timeout(240)
def test_a_distributed_cluster_writes_the_same_dataset(tmp_path, monkeypatch, reference):
    distributed = pytest.importorskip("distributed")
    if not DASK_CLI.exists():
        pytest.skip(f"no dask CLI at {DASK_CLI}")
    spec, local_root, local = reference
    train_only = DatasetSpec(spec.name, {"train": spec.splits["train"]})  # one split keeps the workers light

    worker_home = tmp_path / "worker-home"  # workers run elsewhere: paths must not depend on the cwd
    worker_home.mkdir()
    env = dict(os.environ, FIELDBENCH_CPU_DEVICES="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    scheduler_file = tmp_path / "scheduler.json"
    processes: list[subprocess.Popen] = []
    logs = []

    def start(arguments: list[str], name: str) -> None:
        log = open(tmp_path / f"{name}.log", "wb")
        logs.append(log)
        processes.append(subprocess.Popen([str(DASK_CLI), *arguments], stdout=log, stderr=subprocess.STDOUT,
                                          env=env, cwd=str(worker_home), start_new_session=True))

    client = None
    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--idle-timeout", "300s",
               "--scheduler-file", str(scheduler_file)], "scheduler")
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            assert processes[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start within 60 s"
            time.sleep(0.1)
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass
        assert address.startswith("tcp://127.0.0.1:")
        for number in range(2):
            start(["worker", address, "--nworkers", "1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                   "--death-timeout", "60", "--local-directory", str(worker_home)], f"worker-{number}")
        client = distributed.Client(address, timeout="30s")
        client.wait_for_workers(2, timeout=120)

        calls = []
        card = generate(spec, str(tmp_path / "cluster"), splits=["train"], scheduler=address,
                        progress=lambda done, total: calls.append((done, total)))
        assert calls == [(done, 5) for done in range(6)]
        assert card.generated_with["scheduler"] == address
        assert card.splits == {"train": local.splits["train"]}
        assert_same_files(local_root, tmp_path / "cluster", train_only)
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert len(executed) == 2 and sum(executed.values()) == 5, executed  # the 5 shards, on the workers

        # A relative target means the caller's directory, not the workers'.
        monkeypatch.chdir(tmp_path)
        relative = generate(spec, "cluster-relative", splits=["train"], scheduler=address)
        assert relative.splits == {"train": local.splits["train"]}
        assert_same_files(local_root, tmp_path / "cluster-relative", train_only)
        assert not (worker_home / "cluster-relative").exists()
    finally:
        if client is not None:
            client.close(timeout=10)
        _stop(processes)
        for log in logs:
            log.close()


# -- 6. any fsspec filesystem ------------------------------------------------------------------------
def test_generate_and_load_on_an_fsspec_memory_filesystem(tmp_path, reference):
    import fsspec

    spec, local_root, local = reference
    url = f"memory://fieldbench-test-{uuid.uuid4().hex}/small"
    fs = fsspec.filesystem("memory")
    try:
        card = generate(spec, url)
        assert card.splits == local.splits
        assert fs.exists(url + "/points/split=train/part-00004.parquet")
        assert read_card(url).content_sha256 == local.content_sha256
        for split in spec.splits:
            remote, here = load(url, split), load(str(local_root), split)
            for name in ("family", "centers", "magnetisations", "sizes", "mask", "points", "phi", "field"):
                np.testing.assert_array_equal(getattr(remote, name), getattr(here, name))
        # A rerun on the same URL finds every shard complete.
        calls = []
        generate(spec, url, progress=lambda done, total: calls.append((done, total)))
        assert calls[0] == (8, 8)
    finally:
        fs.rm(url.split("/small")[0], recursive=True)


# -- 7. never overwrite another dataset ------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_refuses_to_overwrite_a_different_dataset(tmp_path, reference):
    spec, _, card = reference
    root = copy_of(reference, tmp_path)
    snapshot = _snapshot(root)
    ids = file_ids(root, "train", 0)

    renamed = DatasetSpec("another-name", dict(spec.splits))
    reseeded = small_spec(seed=12)
    more_points = small_spec(points=64)
    only_test_changed = DatasetSpec(spec.name, {"train": spec.splits["train"],
                                                "test": dataclasses.replace(spec.splits["test"], points=9)})
    for other in (renamed, reseeded, more_points):
        with pytest.raises(DatasetExistsError, match="already holds a different dataset"):
            generate(other, str(root), scheduler="sync")
    # The split being generated is unchanged, but the card would then describe data it does not hold.
    with pytest.raises(DatasetExistsError, match="already holds a different dataset"):
        generate(only_test_changed, str(root), splits=["train"], scheduler="sync")
    with pytest.raises(DatasetExistsError, match="already holds a different dataset"):
        generate(DatasetSpec(spec.name, {"train": spec.splits["train"]}), str(root), scheduler="sync")
    assert _snapshot(root) == snapshot

    # The same spec again is a no-op resume (nothing rewritten).
    again = generate(spec, str(root), scheduler="sync")
    assert again.splits == card.splits and file_ids(root, "train", 0) == ids
    # Adding a split to a dataset is fine; the finished ones are kept as they are.
    extra = SplitSpec(small_configuration(), samples=3, points=8, seed=99)
    grown = DatasetSpec(spec.name, {**spec.splits, "extra": extra})
    bigger = generate(grown, str(root), splits=["extra"], scheduler="sync")
    assert set(bigger.splits) == {"train", "test", "extra"} and file_ids(root, "train", 0) == ids
    assert {k: bigger.splits[k] for k in ("train", "test")} == card.splits
    assert load(str(root), "extra").points.shape == (3, 8, 2)
    assert load(str(root), "test").points.shape == (7, 16, 2)
    spec = grown

    # Without a card (a run interrupted before its end), the shard manifests still catch a changed spec.
    (root / CARD_NAME).unlink()
    snapshot = _snapshot(root)
    with pytest.raises(DatasetExistsError, match="different spec"):
        generate(more_points, str(root), scheduler="sync")
    assert _snapshot(root) == snapshot
    with pytest.raises(ValueError, match="unknown split"):
        generate(spec, str(root), splits=["validation"])
    with pytest.raises(TypeError, match="DatasetSpec"):
        generate(spec.to_dict(), str(root))


def test_splits_generated_one_at_a_time_make_the_same_dataset(tmp_path, reference):
    spec, whole_root, whole = reference
    first = generate(spec, str(tmp_path / "parts"), splits=["test"], scheduler="sync")
    assert list(first.splits) == ["test"]
    with pytest.raises(KeyError, match="train"):
        load(str(tmp_path / "parts"), "train")
    second = generate(spec, str(tmp_path / "parts"), splits=["train"], scheduler="sync")
    assert second.splits == {**whole.splits} and second.content_sha256 == whole.content_sha256
    assert_same_files(whole_root, tmp_path / "parts", spec)


# -- 8. the format is readable without fieldbench ---------------------------------------------------
@pytest.mark.filterwarnings("ignore:The inplace keyword")  # raised inside dask's parquet reader
@pytest.mark.parametrize("name, family", [("circles2d-mini", "disc"), ("prisms2d-mini", "prism")])
def test_the_format_reads_with_pandas_pyarrow_and_dask(minis, name, family):
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow.dataset as ds

    spec, root = minis[name]
    split = "test_multi"
    points = pd.read_parquet(part_folder(root, split, "points"))
    assert list(points.columns) == ["sample", "x", "y", "phi", "h_x", "h_y"]
    assert points["sample"].dtype == np.int64
    for column in ("x", "y", "phi", "h_x", "h_y"):
        assert points[column].dtype == np.float32, column
    assert len(points) == 48 * 1024
    assert (points.groupby("sample").size() == 1024).all() and points["sample"].is_monotonic_increasing

    sources = ds.dataset(part_folder(root, split, "sources"), format="parquet").to_table()
    assert sources.column_names == ["sample", "source", "family", "center_x", "center_y", "magnetisation_x",
                                    "magnetisation_y", "size_x", "size_y"]
    assert sources.schema.field("sample").type == pa.int64()
    assert sources.schema.field("source").type == pa.int16()
    assert set(sources.column("family").cast(pa.string()).to_pylist()) == {family}
    for column in sources.column_names[3:]:
        assert sources.schema.field(column).type == pa.float64(), column
    frame = sources.to_pandas()
    counts = frame.groupby("sample").size()
    assert counts.index.tolist() == list(range(48)) and counts.between(2, 8).all()

    lazy = dd.read_parquet(str(part_folder(root, split, "points")))[list(points.columns)]
    assert list(lazy.columns) == list(points.columns)
    computed = lazy.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(computed, points.reset_index(drop=True), check_dtype=True)
    lazy_sources = dd.read_parquet(str(part_folder(root, split, "sources"))).compute()
    assert set(lazy_sources["family"].astype(str)) == {family}

    # Sources are stored exactly: they are the configurations the documented recipe draws.
    configurations, expected_points = expected_split(spec.splits[split], 0)
    for sample, expected in enumerate(configurations):
        rows = frame[frame["sample"] == sample].sort_values("source")
        assert rows["source"].tolist() == list(range(len(expected)))
        rebuilt = Sources.from_arrays(np.array([int(Family.parse(f)) for f in rows["family"]]),
                                      rows[["center_x", "center_y"]].to_numpy(),
                                      rows[["magnetisation_x", "magnetisation_y"]].to_numpy(),
                                      rows[["size_x", "size_y"]].to_numpy())
        for key in ("family", "centers", "magnetisations", "sizes"):
            np.testing.assert_array_equal(getattr(rebuilt, key), getattr(expected, key))
    np.testing.assert_array_equal(points[["x", "y"]].to_numpy().reshape(48, 1024, 2), expected_points)
    # Sizes are full extents: diameters of discs (radius 1), sides of squares in [0.12, 0.48].
    if family == "disc":
        assert (frame["size_x"] == 2.0).all() and (frame["size_y"] == 2.0).all()
    else:
        assert (frame["size_x"] == frame["size_y"]).all() and frame["size_x"].between(0.12, 0.48).all()


# -- 9. splits of the standard datasets share no configuration ---------------------------------------
@pytest.mark.parametrize("name", ["circles2d-mini", "prisms2d-mini"])
def test_standard_splits_share_no_configuration(minis, name):
    spec, root = minis[name]
    card = read_card(str(root))
    assert card.spec.to_dict() == spec.to_dict()
    assert set(card.splits) == {"train", "val", "test_single", "test_multi", "test_overlap"}
    columns = ["center_x", "center_y", "magnetisation_x", "magnetisation_y", "size_x", "size_y"]
    rows_per_split, points_per_split = {}, {}
    for split in card.splits:
        sources, points = split_tables(root, split)
        rows = {tuple(row) for row in np.stack([sources.column(c).to_numpy() for c in columns], axis=1).tolist()}
        assert len(rows) == sources.num_rows  # no repeated source within a split either
        rows_per_split[split] = rows
        points_per_split[split] = points.column("x").to_numpy()
        magnetisations = np.concatenate([sources.column(c).to_numpy() for c in columns[2:4]])
        assert 0.5 < magnetisations.std() < 1.5  # N(0, 1) components
    names = list(rows_per_split)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rows_per_split[a] & rows_per_split[b], (a, b)
            assert not np.array_equal(points_per_split[a], points_per_split[b]), (a, b)


# -- 10. spec validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, error, message", [
    ({"samples": 0}, ValueError, r"samples must be a positive integer; got 0"),
    ({"samples": 2.5}, ValueError, r"samples must be a positive integer; got 2\.5"),
    ({"samples": True}, ValueError, r"samples must be a positive integer"),
    ({"points": -3}, ValueError, r"points must be a positive integer; got -3"),
    ({"shard_size": 0}, ValueError, r"shard_size must be a positive integer"),
    ({"point_method": "random"}, ValueError, r"point_method must be one of \('uniform', 'grid'\); got 'random'"),
    ({"point_method": "grid", "points": 10}, ValueError, r"point_method='grid' needs points = n\^2; got 10"),
    ({"seed": -1}, ValueError, r"seed must be a non-negative integer; got -1"),
    ({"configuration": {"families": ["disc"]}}, TypeError,
     r"configuration must be a fieldbench\.sources\.ConfigurationSpec"),
])
def test_split_spec_validation(overrides, error, message):
    options = dict(configuration=small_configuration(), samples=4, points=16)
    options.update(overrides)
    with pytest.raises(error, match=message):
        SplitSpec(**options)


def test_grid_split_accepts_perfect_squares():
    assert SplitSpec(small_configuration(), samples=2, points=16, point_method="grid").points == 16


def test_dataset_spec_validation_and_round_trip():
    split = SplitSpec(small_configuration(), samples=4, points=16, seed=1)
    with pytest.raises(ValueError, match=r"every split needs its own seed .*'a': 1, 'b': 1"):
        DatasetSpec("dup", {"a": split, "b": split})
    with pytest.raises(ValueError, match="at least one split"):
        DatasetSpec("empty", {})
    with pytest.raises(ValueError, match="dataset name must be non-empty without '/'"):
        DatasetSpec("a/b", {"a": split})
    with pytest.raises(ValueError, match="split name must be letters, digits and underscores; got 'bad split'"):
        DatasetSpec("ok", {"bad split": split})
    with pytest.raises(ValueError, match="got 'test-multi' \\(use 'test_multi'\\)"):
        DatasetSpec("ok", {"test-multi": split})
    # ... while a spec file's old hyphenated names are read as their canonical form
    old_names = DatasetSpec.from_dict({"name": "ok", "splits": {"test-multi": split.to_dict()}})
    assert list(old_names.splits) == ["test_multi"]
    three_d = SplitSpec(ConfigurationSpec(families=("sphere",), domain=2.0, size=0.2), samples=2, points=8, seed=2)
    with pytest.raises(ValueError, match="same dimension"):
        DatasetSpec("mixed", {"a": split, "b": three_d})

    good = small_spec().to_dict()
    assert DatasetSpec.from_dict(json.loads(json.dumps(good))) == small_spec()
    for name in ("circles2d-mini", "prisms2d-mini"):
        data = json.loads((STANDARD / f"{name}.json").read_text())
        assert DatasetSpec.from_dict(data).to_dict() == data
    bad = json.loads(json.dumps(good))
    bad["splits"]["train"]["sample"] = 3
    with pytest.raises(ValueError, match=r"unknown split field\(s\) \['sample'\]"):
        DatasetSpec.from_dict(bad)
    bad = json.loads(json.dumps(good))
    bad["splits"]["train"]["configuration"]["radius"] = 3
    with pytest.raises(ValueError, match=r"unknown configuration field\(s\) \['radius'\]"):
        DatasetSpec.from_dict(bad)
    bad = json.loads(json.dumps(good))
    del bad["splits"]["train"]["samples"]
    with pytest.raises(ValueError, match="needs at least 'configuration' and 'samples'"):
        DatasetSpec.from_dict(bad)
    with pytest.raises(ValueError, match="needs 'name' and 'splits'"):
        DatasetSpec.from_dict({"splits": good["splits"]})
    bad = json.loads(json.dumps(good))
    bad["splits"]["test"]["seed"] = bad["splits"]["train"]["seed"]
    with pytest.raises(ValueError, match="every split needs its own seed"):
        DatasetSpec.from_dict(bad)


def test_shard_ranges_tile_the_split():
    split = SplitSpec(small_configuration(), samples=23, points=4, shard_size=5)
    assert split.shards == math.ceil(23 / 5) == 5
    covered = [i for index in range(split.shards) for i in split.shard_range(index)]
    assert covered == list(range(23))
    with pytest.raises(IndexError, match="out of range"):
        split.shard_range(5)


# -- 9. one writer per folder; debris of concurrent or killed runs is repaired -------------------------
def test_a_second_run_into_a_locked_folder_waits_for_the_first(tmp_path, reference):
    from filelock import FileLock

    spec, reference_root, _ = reference
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    root = tmp_path / "target"
    with FileLock(str(tmp_path / ".target.lock")):  # the folder's lock, beside it, as a first run holds it
        child = subprocess.Popen([sys.executable, str(CHILD), str(spec_file), str(root), "sync"], cwd=str(REPO),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            while not lines or lines[-1] and "waiting for another process" not in lines[-1]:
                lines.append(child.stderr.readline())  # '' once the child has exited
            assert "waiting for another process generating into" in lines[-1], "".join(lines)
            time.sleep(0.5)
            assert child.poll() is None
            assert not [p for p in root.rglob("*") if p.is_file()], "the second run wrote while locked out"
        except BaseException:
            child.kill()
            raise
    assert child.wait(timeout=300) == 0, child.stderr.read()
    assert_same_files(reference_root, root, spec)


def test_a_rerun_repairs_shards_of_another_spec_mixed_into_its_dataset(tmp_path, reference):
    """Two runs of different specs that once wrote one folder at the same time (before the lock) left
    the card of one and shards of the other; a rerun of the card's spec redoes those shards."""
    spec, reference_root, card = reference
    other = tmp_path / "other"
    generate(small_spec(seed=12), str(other), splits=["train"], scheduler="sync")
    root = copy_of(reference, tmp_path)
    for relative in shard_paths("train", 1).values():
        shutil.copy(other / relative, root / relative)
    assert not fieldbench.datasets.verify(root, against=False).ok
    repaired = generate(spec, str(root), scheduler="sync")
    assert repaired.splits == card.splits
    assert_same_files(reference_root, root, spec)
    assert fieldbench.datasets.verify(root, against=False).ok

    # Without a card the folder may hold another dataset's unfinished run: refuse, naming the command.
    for relative in shard_paths("train", 1).values():
        shutil.copy(other / relative, root / relative)
    (root / CARD_NAME).unlink()
    folders = ["sources/split=train", "points/split=train", "_manifests/train"]
    with pytest.raises(DatasetExistsError, match=re.escape(f"`rm -r {' '.join(f'{root}/{f}' for f in folders)}`")):
        generate(spec, str(root), scheduler="sync")
    for folder in folders:
        shutil.rmtree(root / folder)
    generate(spec, str(root), scheduler="sync")
    assert_same_files(reference_root, root, spec)


def test_a_rerun_removes_the_temporaries_of_a_killed_run(tmp_path, reference):
    spec, reference_root, _ = reference
    root = copy_of(reference, tmp_path)
    debris = [root / "points" / "split=train" / f".tmp-{uuid.uuid4().hex}-part-00002.parquet",
              root / "_manifests" / "test" / f".tmp-{uuid.uuid4().hex}-part-00000.json",
              root / f".tmp-{uuid.uuid4().hex}-card.json"]
    for path in debris:
        path.write_bytes(b"half a file")
    report = fieldbench.datasets.verify(root, against=False)
    assert not report.ok and len(report.strays) == 3, str(report)
    generate(spec, str(root), scheduler="sync")
    assert not any(path.exists() for path in debris)
    assert fieldbench.datasets.verify(root, against=False).ok
    assert_same_files(reference_root, root, spec)


def _descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent has not reaped it yet


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(300)
def test_processes_scheduler_workers_die_with_a_killed_parent(tmp_path):
    spec = DatasetSpec("orphans", {
        "train": SplitSpec(small_configuration(), samples=160, points=4096, seed=5, shard_size=16),  # 10 shards
    })
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    root = tmp_path / "orphans"
    manifests = root / "_manifests" / "train"
    with open(tmp_path / "child.log", "wb") as log:
        parent = subprocess.Popen([sys.executable, str(CHILD), str(spec_file), str(root), "processes", "2"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not (manifests.exists() and any(manifests.glob("part-*.json"))):  # workers are mid-task now
            assert parent.poll() is None, (tmp_path / "child.log").read_text()
            assert time.monotonic() < deadline, "no shard finished within 240 s"
            workers |= _descendants(parent.pid)
            time.sleep(0.05)
        workers |= _descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        assert not (root / CARD_NAME).exists(), "the run finished before the kill: make the spec bigger"
        assert len(workers) >= 2, workers
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [pid for pid in workers if _alive(pid)]
        assert not survivors, f"worker(s) {survivors} outlived their killed parent"
        written = sorted(p.name for p in manifests.glob("part-*.json"))
        time.sleep(2)
        assert sorted(p.name for p in manifests.glob("part-*.json")) == written  # nobody writes any more
    finally:
        for pid in workers | {parent.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # The next run resumes and finishes the dataset.
    generate(spec, str(root), scheduler="sync")
    assert fieldbench.datasets.verify(root, against=False).ok


# -- 11. the spec travels as one object; the card is a typed object -----------------------------------
def test_the_spec_reaches_every_shard_task_as_one_object_hashed_once(tmp_path, monkeypatch):
    import fieldbench.pipeline._generate as generate_module
    import fieldbench.pipeline._spec as spec_module

    hashed, received = [], []
    original_hash, original_produce = spec_module.json_sha256, generate_module.produce_shard
    monkeypatch.setattr(spec_module, "json_sha256", lambda data: hashed.append(data) or original_hash(data))

    def produce(root, split_name, split, *args, **kwargs):
        received.append((split_name, split))
        return original_produce(root, split_name, split, *args, **kwargs)

    monkeypatch.setattr(generate_module, "produce_shard", produce)
    spec = small_spec(seed=5)
    for scheduler in ("sync", "threads"):
        hashed.clear(), received.clear()
        fresh = DatasetSpec(spec.name, {name: dataclasses.replace(split) for name, split in spec.splits.items()})
        generate(fresh, str(tmp_path / scheduler), scheduler=scheduler)
        assert len(received) == sum(split.shards for split in fresh.splits.values())
        assert all(split is fresh.splits[name] for name, split in received)  # no dict -> spec per task
        assert len(hashed) == len(fresh.splits)  # each split hashed once, however many shards it has


def test_the_card_object_round_trips_its_file(reference):
    _, root, card = reference
    text = (root / CARD_NAME).read_text()
    assert card.to_json() == text and read_card(str(root)) == card
    assert DatasetCard.from_json(text) == card and DatasetCard.from_json(card.to_json()).to_json() == text
    assert card.content_digest() == card.content_sha256
    assert all(split.content_digest() == split.content_sha256 for split in card.splits.values())
    files = card.files()
    assert [f.path for f in files] == [shard_paths(s, shard.index)[kind] for s, split in card.splits.items()
                                       for shard in split.shards for kind in ("sources", "points")]
    assert all(hashlib.sha256((root / f.path).read_bytes()).hexdigest() == f.sha256 for f in files)


@pytest.mark.parametrize("edit, message", [
    (lambda card: card.update(schema_version=999), "uses dataset schema version 999"),
    (lambda card: card.update(format="other"), "is not a fieldbench dataset card (format='other')"),
    (lambda card: card["spec"].pop("splits"), "the card's spec is invalid"),
    (lambda card: card["splits"]["train"]["shards"][0].pop("files"), "is not a valid dataset card"),
])
def test_a_wrong_card_gives_one_line_naming_the_file(tmp_path, reference, edit, message):
    root = copy_of(reference, tmp_path)
    card = json.loads((root / CARD_NAME).read_text())
    edit(card)
    (root / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(ValueError) as caught:
        read_card(str(root))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(root / CARD_NAME) in str(caught.value)
    report = fieldbench.datasets.verify(root)
    assert report.problems == [str(caught.value)]
