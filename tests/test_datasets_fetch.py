"""Standard datasets: registry, fetching from a real HTTP mirror (127.0.0.1), rebuild fallback, verification."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _helpers import STANDARD

from fieldbench.datasets import (ChecksumError, DatasetUnavailableError, DatasetVerificationError, MirrorWarning,
                                 StaleRegistryError, UnknownDatasetError, cache_root, dataset_spec, get, list_datasets,
                                 publish, registry_entries, resolve_mirrors, verify)
from fieldbench._io import file_sha256
from fieldbench.datasets._verify import MARKER_NAME, values_close
from fieldbench.pipeline import generate

from _helpers import dead_url, flip_byte, serve

NAME = "circles2d-mini"
MINIS = ["circles2d-mini", "prisms2d-mini"]


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path):
    """No user config, mirror or cache leaks in (also for subprocesses, which inherit os.environ)."""
    monkeypatch.delenv("FIELDBENCH_MIRROR", raising=False)
    monkeypatch.delenv("FIELDBENCH_REGISTRY", raising=False)
    monkeypatch.setenv("FIELDBENCH_CONFIG", str(tmp_path / "absent-config.toml"))
    monkeypatch.setenv("FIELDBENCH_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def mirror_dir(standard_minis, tmp_path_factory):
    to = tmp_path_factory.mktemp("mirror")
    lines = publish(NAME, to, source=standard_minis[NAME])
    assert lines[0].startswith(f"{NAME}/card.json sha256:") and lines[1].startswith(f"{NAME}/README.md sha256:")
    assert len(lines) == 2 + len(registry_entries(NAME)["files"])
    # SHA256SUMS checks every other file of the published folder, in `sha256sum -c` format.
    sums = dict(line.split("  ", 1)[::-1] for line in (to / NAME / "SHA256SUMS").read_text().splitlines())
    published = sorted(p.relative_to(to / NAME).as_posix() for p in (to / NAME).rglob("*") if p.is_file())
    assert sorted(sums) == [p for p in published if p != "SHA256SUMS"]
    assert all(file_sha256(to / NAME / path) == digest for path, digest in sums.items())
    return to


def stray_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and (p.name.startswith("tmp") or p.name.startswith(".tmp-"))]


# ------------------------------------------------------------------------------------------- (a) download

def test_download_matches_registry_and_loads(mirror_dir, tmp_path):
    entries = registry_entries(NAME)
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "datasets" / NAME
    assert sum(hits.values()) == len(entries["files"]) + 1  # every Parquet file + the card, once each
    report = verify(path)
    assert report.ok, str(report)
    assert report.registry == "identical"
    assert json.loads((path / MARKER_NAME).read_text())["method"] == "download"
    for relative, entry in entries["files"].items():
        frame = pd.read_parquet(tmp_path / "datasets" / relative)
        assert len(frame) == entry["rows"]
    points = pd.read_parquet(path / "points" / "split=train" / "part-00000.parquet")
    assert {"sample", "x", "y", "phi", "h_x", "h_y"} <= set(points.columns)
    # Cached and verified: no network needed any more (the mirror is gone now), no warning.
    with warnings_as_errors():
        again = get(NAME, mirror=dead_url(), cache_dir=tmp_path, progress=False)
    assert again == path
    assert get(NAME, mirror=dead_url(), cache_dir=tmp_path, progress=False, full_check=True) == path


@contextlib.contextmanager
def warnings_as_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_damaged_cache_is_repaired_from_mirror(mirror_dir, tmp_path):
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
        victim = path / "points" / "split=val" / "part-00000.parquet"
        victim.write_bytes(victim.read_bytes()[:100])  # truncated: the cheap size check catches it
        hits.clear()
        assert get(NAME, mirror=url, cache_dir=tmp_path, progress=False) == path
    assert hits[f"/{NAME}/points/split=val/part-00000.parquet"] == 1
    assert verify(path).registry == "identical"


# ------------------------------------------------------------------------------------------- (b) corruption

def test_corrupted_file_on_mirror_is_rejected(mirror_dir, tmp_path):
    bad_mirror = tmp_path / "bad-mirror"
    shutil.copytree(mirror_dir, bad_mirror)
    relative = f"{NAME}/points/split=test_multi/part-00000.parquet"
    flip_byte(bad_mirror / relative)
    cache = tmp_path / "cache"
    # Also: a damaged file already in the cache must not survive a failed update.
    (cache / "datasets" / relative).parent.mkdir(parents=True)
    (cache / "datasets" / relative).write_bytes(b"garbage")
    with serve(bad_mirror) as (url, hits):
        with pytest.raises(ChecksumError, match="checksum") as caught:
            get(NAME, mirror=url, cache_dir=cache, progress=False, retries=0, rebuild=False)
    assert relative in str(caught.value)
    assert hits[f"/{relative}"] == 1
    dataset = cache / "datasets" / NAME
    assert not (cache / "datasets" / relative).exists(), "a file that failed its checksum was kept"
    assert not (dataset / MARKER_NAME).exists()
    assert stray_temporaries(dataset) == []
    # Repaired mirror: the next call resumes (files already verified are not downloaded again).
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=cache, progress=False)
    assert hits[f"/{relative}"] == 1
    assert hits[f"/{NAME}/points/split=train/part-00000.parquet"] == 0
    assert verify(path).registry == "identical"


def test_card_from_another_version_is_rejected(mirror_dir, tmp_path):
    bad_mirror = tmp_path / "bad-mirror"
    shutil.copytree(mirror_dir, bad_mirror)
    card_path = bad_mirror / NAME / "card.json"
    card = json.loads(card_path.read_text())
    card["content_sha256"] = "0" * 64
    card_path.write_text(json.dumps(card))
    with serve(bad_mirror) as (url, _):
        with pytest.raises(ChecksumError, match="does not match the registry"):
            get(NAME, mirror=url, cache_dir=tmp_path, progress=False, rebuild=False)
    assert not (tmp_path / "datasets" / NAME / "card.json").exists()


# ------------------------------------------------------------------------------------------- (c) fallback

@pytest.mark.parametrize("mirror", ["down", "empty"])
def test_mirror_down_falls_back_to_a_verified_rebuild(tmp_path, mirror):
    messages = []
    with contextlib.ExitStack() as stack:
        if mirror == "down":
            url = dead_url()  # nothing listens: connection refused
        else:
            (tmp_path / "empty").mkdir()
            url, _ = stack.enter_context(serve(tmp_path / "empty"))  # up, but 404 for every file
        with pytest.warns(MirrorWarning, match="unreachable or incomplete") as caught:
            path = get(NAME, mirror=url, cache_dir=tmp_path / "cache", progress=messages.append, retries=0)
    assert "FIELDBENCH_MIRROR" in str(caught[0].message) and url in str(caught[0].message)
    assert any("rebuilding" in m for m in messages) and any("verifying" in m for m in messages)
    report = verify(path)
    assert report.ok, str(report)
    assert report.registry in ("identical", "equivalent")
    assert json.loads((path / MARKER_NAME).read_text())["method"] == "rebuild"


@pytest.mark.parametrize("reference", ["other-bytes", "other-values"])
def test_rebuild_is_checked_by_content(tmp_path, monkeypatch, reference):
    """A registry made by another Parquet writer (other file hashes): a rebuild with equal content is
    accepted as equivalent; one whose values differ is rejected and moved aside."""
    repo_registry = STANDARD
    registry = tmp_path / "registry"
    shutil.copytree(repo_registry, registry)
    data = json.loads((registry / "registry.json").read_text())
    entry = data["datasets"][NAME]
    shard = entry["splits"]["val"]["shards"][0]
    entry["files"][shard["files"]["points"]]["sha256"] = "0" * 64
    if reference == "other-values":
        shard["fingerprint"]["values_sha256"]["h_y"] = "0" * 64
    (registry / "registry.json").write_text(json.dumps(data))
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(registry))
    target = tmp_path / "datasets" / NAME
    if reference == "other-bytes":
        with pytest.warns(MirrorWarning):
            assert get(NAME, mirror="", cache_dir=tmp_path, progress=False) == target
        assert json.loads((target / MARKER_NAME).read_text())["registry_match"] == "equivalent"
    else:
        with pytest.warns(MirrorWarning), pytest.raises(DatasetVerificationError, match="does not match") as caught:
            get(NAME, mirror="", cache_dir=tmp_path, progress=False)
        assert "'h_y'" in str(caught.value) and "val" in str(caught.value)
        assert not target.exists() and (tmp_path / "datasets" / f"{NAME}.failed" / "card.json").exists()


def test_no_mirror_configured(tmp_path, monkeypatch):
    with pytest.raises(DatasetUnavailableError, match="FIELDBENCH_MIRROR") as raised:
        get(NAME, cache_dir=tmp_path, rebuild=False, progress=False)
    # The advice speaks to CLI users in CLI words (the option and the command), not Python's.
    assert "--mirror URL" in str(raised.value) and "`fieldbench datasets publish`" in str(raised.value)
    assert not (tmp_path / "datasets" / NAME / MARKER_NAME).exists()
    monkeypatch.setenv("FIELDBENCH_MIRROR", "")
    with pytest.warns(MirrorWarning, match="no mirror is configured"):
        path = get(NAME, progress=False)  # cache root from $FIELDBENCH_CACHE
    assert path == cache_root() / "datasets" / NAME
    assert verify(path).ok


def test_settings_precedence(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('mirror = "http://config.example:8000/"\n')
    monkeypatch.setenv("FIELDBENCH_CONFIG", str(config))
    assert [str(m) for m in resolve_mirrors()] == ["http://config.example:8000"]
    config.write_text('mirror = ["hf://datasets/org/data", "doi:10.5281/zenodo.42"]\n')
    assert [str(m) for m in resolve_mirrors()] == ["hf://datasets/org/data", "doi:10.5281/zenodo.42"]
    monkeypatch.setenv("FIELDBENCH_MIRROR", "https://env.example/data")
    assert [str(m) for m in resolve_mirrors()] == ["https://env.example/data"]
    monkeypatch.setenv("FIELDBENCH_MIRROR", "https://a.example, doi:10.5281/zenodo.42  http://b.example/")
    assert [str(m) for m in resolve_mirrors()] == ["https://a.example", "doi:10.5281/zenodo.42", "http://b.example"]
    assert [str(m) for m in resolve_mirrors("http://arg.example")] == ["http://arg.example"]
    assert [str(m) for m in resolve_mirrors(["http://arg.example", "ftp://f.example"])] == [
        "http://arg.example", "ftp://f.example"]
    assert resolve_mirrors("") == [] and resolve_mirrors([]) == [] and resolve_mirrors([""]) == []
    monkeypatch.setenv("FIELDBENCH_MIRROR", "")
    assert resolve_mirrors() == []
    with pytest.raises(ValueError, match="not an http"):
        resolve_mirrors("/some/local/folder")
    # In CLI words (the option, the command), as `fieldbench datasets get` shows it: one line.
    from typer.testing import CliRunner

    from fieldbench.cli._app import app

    result = CliRunner().invoke(app, ["datasets", "get", NAME, "--mirror", "/some/local/folder", "--cache-dir",
                                      str(tmp_path / "e")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("error: --mirror (mirror= in Python) = '/some/local/folder' is not an http")
    assert "the folder written by `fieldbench datasets publish`" in result.output
    monkeypatch.setenv("FIELDBENCH_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_root(tmp_path / "d") == tmp_path / "d"


# ------------------------------------------------------------------------------------------- (d) two processes

def test_two_processes_fetch_into_one_cache(mirror_dir, tmp_path):
    script = textwrap.dedent("""
        import sys
        from fieldbench.datasets._fetch import get
        print(get(sys.argv[1], mirror=sys.argv[2], cache_dir=sys.argv[3], progress=False))
    """)
    cache = tmp_path / "cache"
    with serve(mirror_dir, delay=0.05) as (url, hits):
        workers = [subprocess.Popen([sys.executable, "-c", script, NAME, url, str(cache)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, results):
        assert worker.returncode == 0, err
        assert out.strip() == str(cache / "datasets" / NAME)
    # The lock serialised them: each file went over the wire once, the second process used the cache.
    assert set(hits.values()) == {1}
    report = verify(cache / "datasets" / NAME)
    assert report.ok and report.registry == "identical", str(report)
    assert stray_temporaries(cache / "datasets") == []


# ------------------------------------------------------------------------------------------- (e) verify

def _rewrite_shard_file(dataset: Path, relative: str, table, **parquet_options) -> None:
    """Replace one file and update the card so that it is self-consistent again (a careful forger)."""
    pq.write_table(table, dataset / relative, **parquet_options)
    blob = (dataset / relative).read_bytes()
    card = json.loads((dataset / "card.json").read_text())
    for split in card["splits"].values():
        for shard in split["shards"]:
            for entry in shard["files"].values():
                if entry["path"] == relative:
                    entry["sha256"], entry["bytes"] = hashlib.sha256(blob).hexdigest(), len(blob)
        split["content_sha256"] = hashlib.sha256("".join(
            f["sha256"] for s in split["shards"] for f in s["files"].values()).encode()).hexdigest()
    card["content_sha256"] = hashlib.sha256("".join(
        card["splits"][s]["content_sha256"] for s in sorted(card["splits"])).encode()).hexdigest()
    (dataset / "card.json").write_text(json.dumps(card))
    shutil.rmtree(dataset / "_manifests" / relative.split("/")[1].removeprefix("split="))


def test_verify_catches_a_tampered_file(standard_minis, tmp_path):
    dataset = tmp_path / NAME
    shutil.copytree(standard_minis[NAME], dataset)
    assert verify(dataset).ok
    flip_byte(dataset / "sources" / "split=train" / "part-00000.parquet")
    report = verify(dataset)
    assert not report.ok
    assert any("sources/split=train/part-00000.parquet" in p and "sha256" in p for p in report.problems), str(report)
    assert "sources/split=train/part-00000.parquet" in str(report)


def test_verify_catches_a_manifest_disagreeing_with_the_card(standard_minis, tmp_path):
    dataset = tmp_path / NAME
    shutil.copytree(standard_minis[NAME], dataset)
    manifest = dataset / "_manifests" / "val" / "part-00000.json"
    data = json.loads(manifest.read_text())
    data["points"] += 1
    manifest.write_text(json.dumps(data))
    report = verify(dataset)
    assert not report.ok and any("_manifest" in p for p in report.problems), str(report)


def test_verify_compares_content_with_the_registry(standard_minis, tmp_path):
    relative = "points/split=test_single/part-00000.parquet"
    # Same content written differently (another codec): not byte-identical, but equivalent.
    same = tmp_path / "same"
    shutil.copytree(standard_minis[NAME], same)
    _rewrite_shard_file(same, relative, pq.read_table(same / relative), compression="zstd")
    report = verify(same)
    assert report.ok and report.registry == "equivalent", str(report)
    # Altered values with a self-consistent card: only the registry's fingerprints catch it.
    altered = tmp_path / "altered"
    shutil.copytree(standard_minis[NAME], altered)
    table = pq.read_table(altered / relative)
    phi = table.column("phi").to_numpy() * 1.001
    _rewrite_shard_file(altered, relative, table.set_column(table.schema.get_field_index("phi"), "phi",
                                                             pa.array(phi.astype(np.float32))))
    report = verify(altered, against=False)
    assert report.ok  # self-consistent ...
    report = verify(altered)
    assert not report.ok and report.registry == "different"  # ... but not the standard dataset
    assert any("'phi'" in p and "differ from the registry" in p for p in report.problems), str(report)


def test_values_tolerance():
    rng = np.random.default_rng(0)
    reference = (rng.standard_normal(1000) * 10.0 ** rng.uniform(-3, 3, 1000)).astype(np.float32)
    assert values_close(reference, reference)[0]
    up = np.nextafter(np.nextafter(reference, np.float32(np.inf)), np.float32(np.inf))  # 2 ulps
    assert values_close(up, reference)[0]
    changed = reference.copy()
    changed[417] *= np.float32(1 + 8 * 2.0 ** -23)  # one value, 8 float32 eps
    ok, detail = values_close(changed, reference)
    assert not ok and "1 value(s)" in detail and "row 417" in detail
    assert not values_close(reference[::-1], reference)[0]  # a permutation
    # Near zero (a cancellation) the floor is 2**-40 of the largest magnitude, not relative.
    tiny = np.array([1e-20, 1.0], dtype=np.float32)
    assert values_close(tiny + np.array([2e-13, 0], dtype=np.float32), tiny)[0]
    assert not values_close(tiny + np.array([2e-12, 0], dtype=np.float32), tiny)[0]


# ------------------------------------------------------------------------------------------- (f) unknown names

def test_unknown_dataset_name(tmp_path, mirror_dir):
    for call in (lambda: get("circles3d-mini", cache_dir=tmp_path), lambda: dataset_spec("circles3d-mini"),
                 lambda: registry_entries("nope"), lambda: publish("nope", tmp_path),
                 lambda: verify(mirror_dir / NAME, against="nope"), lambda: dataset_spec("../datasets/x")):
        with pytest.raises(UnknownDatasetError) as caught:
            call()
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)
        assert "unknown dataset" in str(caught.value) and NAME in str(caught.value)
    assert not (tmp_path / "datasets").exists()


# ------------------------------------------------------------------------------------------- (g) registry

def test_registry_covers_every_standard_dataset():
    names = list_datasets()
    assert set(MINIS) | {"circles2d", "prisms2d"} <= set(names)
    for name in names:
        entries = registry_entries(name)  # raises StaleRegistryError if a spec changed since registration
        spec = dataset_spec(name)
        assert set(entries["splits"]) == set(spec.splits)
        for split_name, split in entries["splits"].items():
            assert len(split["shards"]) == spec.splits[split_name].shards
            assert sum(s["samples"] for s in split["shards"]) == spec.splits[split_name].samples
    text = (STANDARD / "registry.json").read_text()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"  # canonical formatting


@pytest.mark.parametrize("name", MINIS)
def test_registry_matches_a_fresh_build(standard_minis, name):
    """The registered fingerprints are what the current code generates (else: re-register)."""
    card = json.loads((standard_minis[name] / "card.json").read_text())
    entries = registry_entries(name)
    fix = f"the registry is stale: run `fieldbench datasets build {name}`"
    for split_name, split in entries["splits"].items():
        built = {s["index"]: s for s in card["splits"][split_name]["shards"]}
        for shard in split["shards"]:
            assert built[shard["index"]]["fingerprint"] == shard["fingerprint"], fix
    assert verify(standard_minis[name]).registry in ("identical", "equivalent")


def test_stale_registry_is_reported(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    registry.mkdir()
    spec = json.loads((STANDARD / f"{NAME}.json").read_text())
    spec["splits"]["train"]["samples"] = 47
    (registry / f"{NAME}.json").write_text(json.dumps(spec))
    shutil.copy(STANDARD / "registry.json", registry)
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(registry))
    assert list_datasets() == [NAME]
    with pytest.raises(StaleRegistryError, match="changed"):
        get(NAME, cache_dir=tmp_path)


# ------------------------------------------------------------------------------------------- (h) elementwise content

def _rewrite_values(dataset: Path, relative: str, change) -> None:
    """Rewrite the value columns of one points file with ``change(name, values) -> values`` (float32),
    keeping the card self-consistent (a careful forger)."""
    table = pq.read_table(dataset / relative)
    for name in ("phi", "h_x", "h_y"):
        values = change(name, table.column(name).to_numpy().copy())
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values.astype(np.float32)))
    _rewrite_shard_file(dataset, relative, table)


def test_values_moved_between_points_or_changed_beyond_rounding_fail(standard_minis, tmp_path):
    """Column sums (the old check) cannot see a shuffle of phi and H across the points of a shard, nor
    one value moved by a few float32 steps; the registry's elementwise check fails both."""
    relative = "points/split=test_single/part-00000.parquet"
    order = np.random.default_rng(1).permutation(pq.read_table(standard_minis[NAME] / relative).num_rows)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(standard_minis[NAME], shuffled)
    _rewrite_values(shuffled, relative, lambda name, values: values[order])
    assert verify(shuffled, against=False).ok  # self-consistent: only the registry can tell
    report = verify(shuffled)
    assert not report.ok and report.registry == "different", str(report)
    assert any("'test_single' shard 0" in p and "'phi'" in p and "'h_x'" in p and "'h_y'" in p
               for p in report.problems), str(report)

    def nudge(name, values, steps):
        if name == "h_y":
            values[321] *= np.float32(1 + steps * 2.0 ** -23)
        return values

    beyond = tmp_path / "beyond"
    shutil.copytree(standard_minis[NAME], beyond)
    _rewrite_values(beyond, relative, lambda name, values: nudge(name, values, 8))
    report = verify(beyond)
    assert not report.ok and any("['h_y']" in p for p in report.problems), str(report)

    # With a reference copy (itself identical to the registry), values are judged elementwise:
    # one float32 step is rounding, 8 are a change, and a shuffle is caught with the row named.
    within = tmp_path / "within"
    shutil.copytree(standard_minis[NAME], within)
    _rewrite_values(within, relative, lambda name, values: nudge(name, values, 1))
    assert not verify(within).ok  # no reference: the registry holds hashes, not values
    report = verify(within, reference=standard_minis[NAME])
    assert report.ok and report.registry == "close", str(report)
    report = verify(beyond, reference=standard_minis[NAME])
    assert not report.ok and any("'h_y'" in p and "row 321" in p for p in report.problems), str(report)
    report = verify(shuffled, reference=standard_minis[NAME])
    assert not report.ok and sum("differs from the reference copy" in p for p in report.problems) == 3
    # The reference must itself be an exact copy of the registered dataset.
    report = verify(within, reference=beyond)
    assert not report.ok and any("not an exact copy" in p for p in report.problems), str(report)


def test_an_old_format_registry_entry_is_refused_in_one_line_and_migrated(standard_minis, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    shutil.copytree(STANDARD, registry)
    data = json.loads((registry / "registry.json").read_text())
    current = json.loads(json.dumps(data["datasets"][NAME]))
    data["registry_version"] = 1  # as written before values were hashed: column sums per shard
    old = data["datasets"][NAME]
    del old["fingerprint_version"]
    for split in old["splits"].values():
        for shard in split["shards"]:
            shard["fingerprint"]["values"] = {c: [1.0, 2.0] for c in shard["fingerprint"].pop("values_sha256")}
    (registry / "registry.json").write_text(json.dumps(data))
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(registry))
    for call in (lambda: registry_entries(NAME), lambda: get(NAME, cache_dir=tmp_path, progress=False)):
        with pytest.raises(StaleRegistryError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and "fingerprint version 1" in message
        assert f"fieldbench datasets register {NAME} DATASET_DIR" in message
    report = verify(standard_minis[NAME])
    assert not report.ok and any("fingerprint version 1" in p for p in report.problems)
    # The command it names re-registers from an existing copy, without regenerating anything.
    from typer.testing import CliRunner

    from fieldbench.cli._app import app

    result = CliRunner().invoke(app, ["datasets", "register", NAME, str(standard_minis[NAME])])
    assert result.exit_code == 0, result.output
    assert f"registered {NAME}:" in result.output and "same files as before" in " ".join(result.output.split())
    migrated = json.loads((registry / "registry.json").read_text())
    assert migrated["registry_version"] == 2
    assert migrated["datasets"][NAME]["splits"] == current["splits"]
    assert migrated["datasets"][NAME]["content_sha256"] == current["content_sha256"]
    assert verify(standard_minis[NAME]).ok


# ------------------------------------------------------------------------------------------- (i) cached copies

def test_a_bit_flip_that_keeps_the_size_is_caught_and_repaired(mirror_dir, tmp_path):
    import os

    relative = "points/split=val/part-00000.parquet"
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
        victim = path / relative
        stat = victim.stat()
        flip_byte(victim)
        os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its old mtime back
        assert victim.stat().st_size == stat.st_size
        hits.clear()
        assert get(NAME, mirror=url, cache_dir=tmp_path, progress=False) == path
    assert hits == {f"/{NAME}/{relative}": 1, f"/{NAME}/card.json": 1}, hits  # re-downloaded, no other data
    report = verify(path)
    assert report.ok and report.registry == "identical", str(report)
    # Without a mirror the damaged copy is rebuilt, never returned as it is.
    flip_byte(victim)
    with pytest.warns(MirrorWarning):
        assert get(NAME, mirror="", cache_dir=tmp_path, progress=False) == path
    assert verify(path).ok


def test_an_unchanged_cache_is_hashed_once_and_full_check_rehashes(mirror_dir, tmp_path, monkeypatch):
    import fieldbench._io as io

    reads = []
    original = io.file_sha256
    monkeypatch.setattr(io, "file_sha256", lambda path: reads.append(Path(path).name) or original(path))
    files = len(registry_entries(NAME)["files"]) + 1  # and the card
    with serve(mirror_dir) as (url, _):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
    time.sleep(getattr(io, "RACY_NS", 2e9) / 1e9 + 0.1)  # stamps taken right after a write are not trusted yet
    reads.clear()
    assert get(NAME, mirror=dead_url(), cache_dir=tmp_path, progress=False) == path
    assert len(reads) == files  # hashed once, and stamped
    reads.clear()
    assert get(NAME, mirror=dead_url(), cache_dir=tmp_path, progress=False) == path
    assert reads == []  # unchanged stamps: nothing re-read
    assert get(NAME, mirror=dead_url(), cache_dir=tmp_path, progress=False, full_check=True) == path
    assert len(reads) >= files


def test_the_cli_full_check_catches_what_the_stamps_miss(mirror_dir, tmp_path):
    """A change that leaves a file's stamp as recorded (on disk, by a tool that keeps metadata, or a
    file system with coarse times) is trusted by a plain `get`; `--full-check` re-hashes and repairs it."""
    from typer.testing import CliRunner

    from fieldbench._io import RACY_NS, file_sha256, file_stamp
    from fieldbench.cli._app import app

    relative = "sources/split=train/part-00000.parquet"
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
        victim = path / relative
        good = file_sha256(victim)
        flip_byte(victim)
        # Make the marker's record of the file match its new stamp, taken safely after the change.
        marker = json.loads((path / MARKER_NAME).read_text())
        stamp = file_stamp(victim)
        marker["files"][relative] = {"sha256": good, "stamp": stamp, "hashed_ns": max(stamp[1:3]) + RACY_NS + 1}
        (path / MARKER_NAME).write_text(json.dumps(marker))
        runner = CliRunner()
        arguments = ["datasets", "get", NAME, "--mirror", url, "--cache-dir", str(tmp_path)]
        hits.clear()
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        assert file_sha256(victim) != good and sum(hits.values()) == 0  # the stamp missed it: returned as it is
        result = runner.invoke(app, arguments + ["--full-check"])
        assert result.exit_code == 0, result.output
    assert file_sha256(victim) == good  # caught, and that file alone re-downloaded
    assert hits == {f"/{NAME}/{relative}": 1, f"/{NAME}/card.json": 1}, hits
    flip_byte(victim)
    result = runner.invoke(app, ["datasets", "verify", str(path)])
    assert result.exit_code == 1 and "sha256 checksum mismatch" in result.output
    assert relative in result.output


# ------------------------------------------------------------------------------------------- (j) strays, kills

def test_verify_reports_stray_files_and_get_removes_them(mirror_dir, tmp_path):
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
        stray = path / "points" / "split=train" / "tmpk2x9_abc"  # what pooch leaves when killed mid-download
        stray.write_bytes(b"partial download")
        with pytest.raises((OSError, ValueError)):  # pyarrow's ArrowInvalid is a ValueError
            pd.read_parquet(path / "points")  # the README's read path trips over it
        report = verify(path)
        assert not report.ok and report.strays == ["points/split=train/tmpk2x9_abc"], str(report)
        assert any("stray file points/split=train/tmpk2x9_abc" in p and "rm " in p for p in report.problems)
        hits.clear()
        assert get(NAME, mirror=url, cache_dir=tmp_path, progress=False) == path
    assert not stray.exists() and sum(hits.values()) == 1  # the stray is gone; only the card was re-fetched
    assert len(pd.read_parquet(path / "points" / "split=train")) == 48 * 1024
    assert verify(path).ok


def test_a_download_killed_midway_leaves_nothing_among_the_data(mirror_dir, tmp_path):
    import os
    import signal

    started, release = threading.Event(), threading.Event()

    class Holding(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mirror_dir), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.endswith("/points/split=val/part-00000.parquet"):
                started.set()
                release.wait(60)  # the client is mid-download of this file when it is killed
            try:
                super().do_GET()
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Holding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    script = "import sys; from fieldbench.datasets._fetch import get; get(sys.argv[1], mirror=sys.argv[2], " \
             "cache_dir=sys.argv[3], progress=False)"
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", script, NAME, url, str(cache)])
    try:
        assert started.wait(120), "the download never reached the held file"
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    dataset = cache / "datasets" / NAME
    expected = {p for p in registry_entries(NAME)["files"]}
    leftovers = [p.relative_to(cache / "datasets").as_posix() for p in dataset.rglob("*") if p.is_file()]
    assert leftovers, "nothing had been downloaded before the kill"
    for relative in leftovers:  # only complete, checked data files (and manifests) in the dataset folder
        assert relative in expected or "/_manifests/" in relative, relative
    assert not (dataset / "card.json").exists()  # moved in last
    # The next get deletes the staging folder's debris, keeps the checked files and fetches the rest.
    with serve(mirror_dir) as (url, hits):
        path = get(NAME, mirror=url, cache_dir=cache, progress=False)
    assert verify(path).ok and not (cache / "datasets" / f".{NAME}.download").exists()
    assert hits[f"/{NAME}/points/split=train/part-00000.parquet"] == 0  # kept from before the kill
    assert len(pd.read_parquet(path / "points" / "split=val")) == 48 * 1024


# ------------------------------------------------------------------------------------------- (k) damaged JSON

def test_damaged_json_files_are_named_with_their_fix(standard_minis, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fieldbench.cli._app import app
    from fieldbench.datasets import load

    dataset = tmp_path / NAME
    shutil.copytree(standard_minis[NAME], dataset)
    (dataset / "card.json").write_text('{"format": "fieldbench-dataset", "spe')
    with pytest.raises(ValueError) as caught:
        load(str(dataset), "train")
    message = str(caught.value)
    assert "\n" not in message and str(dataset / "card.json") in message and "is damaged" in message
    assert "rerun `fieldbench generate`" in message
    report = verify(dataset)
    assert not report.ok and report.problems == [message]
    # A rerun of generate names the same fix; after deleting the card it rebuilds it from the manifests.
    with pytest.raises(ValueError, match="card.json is damaged"):
        generate(dataset_spec(NAME), str(dataset))
    (dataset / "card.json").unlink()
    generate(dataset_spec(NAME), str(dataset))
    assert verify(dataset).registry == "identical"

    spec_file = tmp_path / "spec.json"
    spec_file.write_text('{"name": "x", "splits": {')
    result = CliRunner().invoke(app, ["generate", str(spec_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())  # the console folds long lines at 240 columns off a terminal
    assert text.startswith("error: ") and text.count("error:") == 1 and "Traceback" not in text, result.output
    assert f"{spec_file} is damaged (not valid JSON" in text and "fix the file" in text, result.output

    registry = tmp_path / "registry"
    shutil.copytree(STANDARD, registry)
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(registry))
    (registry / f"{NAME}.json").write_text("{,")
    with pytest.raises(ValueError, match=f"{NAME}.json is damaged .* fix the file"):
        dataset_spec(NAME)
    (registry / f"{NAME}.json").write_text(json.dumps({"name": NAME}))
    with pytest.raises(ValueError, match=f"{NAME}.json is not a valid dataset spec"):
        dataset_spec(NAME)
    shutil.copy(STANDARD / f"{NAME}.json", registry)
    (registry / "registry.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="registry.json is damaged .*git checkout"):
        registry_entries(NAME)
