"""Standard datasets: registry, fetching from a real HTTP mirror (127.0.0.1), rebuild fallback, verification."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import http.server
import json
import shutil
import socket
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

from fieldbench.datasets._fetch import (MARKER_NAME, ChecksumError, DatasetUnavailableError, MirrorWarning,
                                        cache_root, get, resolve_mirror)
from fieldbench.datasets._registry import (StaleRegistryError, UnknownDatasetError, dataset_spec, list_datasets,
                                           registry_entries)
from fieldbench.datasets._verify import DatasetVerificationError, publish, values_close, verify
from fieldbench.pipeline import generate

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
def builds(tmp_path_factory):
    """Fresh local builds of the mini datasets (made once, with the current code)."""
    root = tmp_path_factory.mktemp("builds")
    out = {}
    for name in MINIS:
        generate(dataset_spec(name), str(root / name))
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def mirror_dir(builds, tmp_path_factory):
    to = tmp_path_factory.mktemp("mirror")
    lines = publish(NAME, to, source=builds[NAME])
    assert lines[0].startswith(f"{NAME}/card.json sha256:")
    assert len(lines) == 1 + len(registry_entries(NAME)["files"])
    return to


@contextlib.contextmanager
def serve(directory: Path, delay: float = 0.0):
    """A real static HTTP server on 127.0.0.1 (a free port); yields (base URL, hits per path)."""
    hits = collections.Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            hits[self.path] += 1
            if delay:
                time.sleep(delay)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_url() -> str:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


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
    points = pd.read_parquet(path / "train" / "points" / "part-00000.parquet")
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
        victim = path / "val" / "points" / "part-00000.parquet"
        victim.write_bytes(victim.read_bytes()[:100])  # truncated: the cheap size check catches it
        hits.clear()
        assert get(NAME, mirror=url, cache_dir=tmp_path, progress=False) == path
    assert hits[f"/{NAME}/val/points/part-00000.parquet"] == 1
    assert verify(path).registry == "identical"


# ------------------------------------------------------------------------------------------- (b) corruption

@pytest.mark.parametrize("rebuild", [True, False])
def test_corrupted_file_on_mirror_is_rejected(mirror_dir, tmp_path, rebuild):
    bad_mirror = tmp_path / "bad-mirror"
    shutil.copytree(mirror_dir, bad_mirror)
    relative = f"{NAME}/test-multi/points/part-00000.parquet"
    flip_byte(bad_mirror / relative)
    cache = tmp_path / "cache"
    if not rebuild:  # also: a damaged file already in the cache must not survive a failed update
        (cache / "datasets" / relative).parent.mkdir(parents=True)
        (cache / "datasets" / relative).write_bytes(b"garbage")
    with serve(bad_mirror) as (url, hits):
        with pytest.raises(ChecksumError, match="checksum") as caught:
            get(NAME, mirror=url, cache_dir=cache, progress=False, retries=0, rebuild=rebuild)
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
    assert hits[f"/{NAME}/train/points/part-00000.parquet"] == 0
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
            get(NAME, mirror=url, cache_dir=tmp_path, progress=False)
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
    repo_registry = Path(__file__).resolve().parents[1] / "datasets"
    registry = tmp_path / "registry"
    shutil.copytree(repo_registry, registry)
    data = json.loads((registry / "registry.json").read_text())
    entry = data["datasets"][NAME]
    shard = entry["splits"]["val"]["shards"][0]
    entry["files"][shard["files"]["points"]]["sha256"] = "0" * 64
    if reference == "other-values":
        shard["fingerprint"]["values"]["h_y"][0] += 1e-3 * abs(shard["fingerprint"]["values"]["h_y"][0]) + 1e-3
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
    with pytest.raises(DatasetUnavailableError, match="FIELDBENCH_MIRROR"):
        get(NAME, cache_dir=tmp_path, rebuild=False, progress=False)
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
    assert resolve_mirror() == "http://config.example:8000"
    monkeypatch.setenv("FIELDBENCH_MIRROR", "https://env.example/data")
    assert resolve_mirror() == "https://env.example/data"
    assert resolve_mirror("http://arg.example") == "http://arg.example"
    assert resolve_mirror("") is None
    monkeypatch.setenv("FIELDBENCH_MIRROR", "")
    assert resolve_mirror() is None
    with pytest.raises(ValueError, match="not an http"):
        resolve_mirror("/some/local/folder")
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
    shutil.rmtree(dataset / relative.split("/")[0] / "_manifest")


def test_verify_catches_a_tampered_file(builds, tmp_path):
    dataset = tmp_path / NAME
    shutil.copytree(builds[NAME], dataset)
    assert verify(dataset).ok
    flip_byte(dataset / "train" / "sources" / "part-00000.parquet")
    report = verify(dataset)
    assert not report.ok
    assert any("train/sources/part-00000.parquet" in p and "sha256" in p for p in report.problems), str(report)
    assert "train/sources/part-00000.parquet" in str(report)


def test_verify_catches_a_manifest_disagreeing_with_the_card(builds, tmp_path):
    dataset = tmp_path / NAME
    shutil.copytree(builds[NAME], dataset)
    manifest = dataset / "val" / "_manifest" / "part-00000.json"
    data = json.loads(manifest.read_text())
    data["points"] += 1
    manifest.write_text(json.dumps(data))
    report = verify(dataset)
    assert not report.ok and any("_manifest" in p for p in report.problems), str(report)


def test_verify_compares_content_with_the_registry(builds, tmp_path):
    relative = "test-single/points/part-00000.parquet"
    # Same content written differently (another codec): not byte-identical, but equivalent.
    same = tmp_path / "same"
    shutil.copytree(builds[NAME], same)
    _rewrite_shard_file(same, relative, pq.read_table(same / relative), compression="zstd")
    report = verify(same)
    assert report.ok and report.registry == "equivalent", str(report)
    # Altered values with a self-consistent card: only the registry's fingerprints catch it.
    altered = tmp_path / "altered"
    shutil.copytree(builds[NAME], altered)
    table = pq.read_table(altered / relative)
    phi = table.column("phi").to_numpy() * 1.001
    _rewrite_shard_file(altered, relative, table.set_column(table.schema.get_field_index("phi"), "phi",
                                                             pa.array(phi.astype(np.float32))))
    report = verify(altered, against=False)
    assert report.ok  # self-consistent ...
    report = verify(altered)
    assert not report.ok and report.registry == "different"  # ... but not the standard dataset
    assert any("'phi'" in p and "float32 rounding" in p for p in report.problems), str(report)


def test_values_tolerance():
    rows, total, squares = 49152, 120.0, 5000.0
    tolerance = 4 * 2.0 ** -23 * (rows * squares) ** 0.5
    assert values_close((total + 0.5 * tolerance, squares), (total, squares), rows)[0]
    ok, detail = values_close((total + 2 * tolerance, squares), (total, squares), rows)
    assert not ok and "sum" in detail
    assert not values_close((total, squares * (1 + 1e-5)), (total, squares), rows)[0]


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
    text = (Path(__file__).resolve().parents[1] / "datasets" / "registry.json").read_text()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"  # canonical formatting


@pytest.mark.parametrize("name", MINIS)
def test_registry_matches_a_fresh_build(builds, name):
    """The registered fingerprints are what the current code generates (else: re-register)."""
    card = json.loads((builds[name] / "card.json").read_text())
    entries = registry_entries(name)
    fix = f"the registry is stale: run `python -m fieldbench.datasets._registry build` ({name})"
    for split_name, split in entries["splits"].items():
        built = {s["index"]: s for s in card["splits"][split_name]["shards"]}
        for shard in split["shards"]:
            found, expected = built[shard["index"]]["fingerprint"], shard["fingerprint"]
            assert found["sources_sha256"] == expected["sources_sha256"], fix
            assert found["points_sha256"] == expected["points_sha256"], fix
            for column, sums in expected["values"].items():
                assert values_close(found["values"][column], sums, shard["points"])[0], fix
    assert verify(builds[name]).registry in ("identical", "equivalent")


def test_stale_registry_is_reported(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    registry.mkdir()
    spec = json.loads((Path(__file__).resolve().parents[1] / "datasets" / f"{NAME}.json").read_text())
    spec["splits"]["train"]["samples"] = 47
    (registry / f"{NAME}.json").write_text(json.dumps(spec))
    shutil.copy(Path(__file__).resolve().parents[1] / "datasets" / "registry.json", registry)
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(registry))
    assert list_datasets() == [NAME]
    with pytest.raises(StaleRegistryError, match="changed"):
        get(NAME, cache_dir=tmp_path)
