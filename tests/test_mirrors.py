"""Mirrors of every kind against servers started here on 127.0.0.1: a DOI record (stand-ins for doi.org
and the archive's API), a Hugging Face dataset repository (through $HF_ENDPOINT), a list tried in order
with a warning per failed mirror, and registered checkpoints fetched from the same mirrors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import urllib.parse
import warnings

import pytest
import requests

from fieldbench.datasets import (ChecksumError, DatasetUnavailableError, MirrorWarning, archive_name, get, publish,
                                 registry_entries, resolve_mirrors, verify)
from fieldbench.datasets._verify import MARKER_NAME
from fieldbench.models import CheckpointUnavailableError, UnknownCheckpointError, fetch_checkpoint

from _helpers import dead_url, flip_byte, serve

NAME = "circles2d-mini"
CORRUPTED = "points/split=test_multi/part-00000.parquet"  # a file late in the download order


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path):
    """No user config, mirror, cache or Hugging Face settings leak in."""
    for variable in ("FIELDBENCH_MIRROR", "FIELDBENCH_REGISTRY", "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FIELDBENCH_CONFIG", str(tmp_path / "absent-config.toml"))
    monkeypatch.setenv("FIELDBENCH_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def mirror_dir(standard_minis, tmp_path_factory):
    to = tmp_path_factory.mktemp("mirror")
    publish(NAME, to, source=standard_minis[NAME])
    return to


@pytest.fixture
def corrupted_dir(mirror_dir, tmp_path):
    bad = tmp_path / "corrupted-mirror"
    shutil.copytree(mirror_dir, bad)
    flip_byte(bad / NAME / CORRUPTED)
    return bad


def registered_paths() -> list[str]:
    entries = registry_entries(NAME)
    return [entries["card"], *entries["files"]]


# ------------------------------------------------------------------------------------------- parsing

def test_every_kind_of_mirror_is_parsed_and_addressed(monkeypatch):
    path = f"{NAME}/points/split=train/part-00000.parquet"
    http, doi, hf, web = resolve_mirrors(["http://127.0.0.1:8000/data/", "doi:10.5281/zenodo.4242",
                                          "hf://datasets/org/fieldbench@v1.0/sub",
                                          "https://huggingface.co/datasets/org/fieldbench/tree/dev"])
    assert (http.kind, http.url(path)) == ("http", f"http://127.0.0.1:8000/data/{path}")
    flat = f"{NAME}__points__split=train__part-00000.parquet"
    assert (doi.kind, doi.url(path)) == ("doi", f"doi:10.5281/zenodo.4242/{flat}")
    assert archive_name(path) == flat
    assert (hf.kind, hf.base, hf.revision, hf.folder) == ("hf", "org/fieldbench", "v1.0", "sub")
    # huggingface_hub quotes the path (split=train as split%3Dtrain): the Hub, like any server, decodes it.
    quoted = path.replace("=", "%3D")
    assert hf.url(path) == f"https://huggingface.co/datasets/org/fieldbench/resolve/v1.0/sub/{quoted}"
    assert (web.base, web.revision, web.folder) == ("org/fieldbench", "dev", "")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")  # read at each call, not at import
    assert web.url(path) == f"http://127.0.0.1:9/datasets/org/fieldbench/resolve/dev/{quoted}"
    for bad in ("/some/folder", "doi:not-a-doi", "hf://org/fieldbench", "hf://datasets/org", "s3://bucket/x"):
        with pytest.raises(ValueError, match="is not an http.s., ftp, doi: or Hugging Face mirror") as caught:
            resolve_mirrors(["http://127.0.0.1:8000", bad])
        assert "\n" not in str(caught.value) and "--mirror" in str(caught.value)


# ------------------------------------------------------------------------------------------- doi


def test_a_flat_publish_holds_exactly_what_a_doi_mirror_asks_for(standard_minis, tmp_path):
    """A DOI record holds no folders: ``publish(flat=True)`` writes every registered file under the
    archive name the doi: mirror requests, plus README.md and a SHA256SUMS of those flat names."""
    publish(NAME, tmp_path, source=standard_minis[NAME], flat=True)
    expected = [archive_name(path) for path in registered_paths()]
    expected += [archive_name(f"{NAME}/README.md"), archive_name(f"{NAME}/SHA256SUMS")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    sums = (tmp_path / archive_name(f"{NAME}/SHA256SUMS")).read_text().splitlines()
    assert len(sums) == len(expected) - 1
    for line in sums:
        digest, flat_name = line.split("  ")
        assert hashlib.sha256((tmp_path / flat_name).read_bytes()).hexdigest() == digest


@pytest.fixture
def doi_record(mirror_dir, monkeypatch):
    """A stand-in for doi.org and for a Dataverse or (legacy API) Zenodo record holding the mirror's
    files under their flat archive names. pooch's resolver asks https://doi.org/<DOI> where a DOI
    points; the stand-in asks the local server instead and returns the record's address."""
    import pooch.downloaders

    files = {archive_name(path): (number, path) for number, path in enumerate(registered_paths(), 1)}
    state = {}

    def route(path, headers):
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path.startswith("/doi.org/"):
            doi = parts.path[len("/doi.org/"):]
            landing = (f"{state['url']}/dataset.xhtml?persistentId=doi:{doi}" if state["kind"] == "dataverse"
                       else "https://zenodo.org/records/4242")
            return 302, {"Location": landing}, b""
        if parts.path == "/api/datasets/:persistentId" and query.get("persistentId") == [f"doi:{state['doi']}"]:
            listing = [{"dataFile": {"filename": name, "id": number, "md5": "0"}}
                       for name, (number, _) in files.items()]
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"status": "OK", "data": {"latestVersion": {"files": listing}}}).encode()
        if parts.path == "/api/records/4242":
            listing = [{"key": name, "checksum": "md5:0", "links": {"self": f"{state['url']}/zenodo/{name}"}}
                       for name in files]
            return 200, {"Content-Type": "application/json"}, json.dumps({"id": 4242, "files": listing}).encode()
        if parts.path.startswith("/api/access/datafile/"):
            number = int(parts.path.rpartition("/")[2])
            return next(f"/{path}" for _, (n, path) in files.items() if n == number)
        if parts.path.startswith("/zenodo/"):
            return f"/{files[parts.path[len('/zenodo/'):]][1]}"
        return 404, {}, b"not found"

    def resolve_locally(doi, **kwargs):
        response = requests.get(f"{state['url']}/doi.org/{doi}", allow_redirects=False, **kwargs)
        response.raise_for_status()
        return response.headers["Location"]

    monkeypatch.setattr(pooch.downloaders, "doi_to_url", resolve_locally)

    def start(kind):
        state["kind"] = kind
        state["doi"] = "10.5072/FK2/FIELDBENCH" if kind == "dataverse" else "10.5281/zenodo.4242"
        url, hits = servers.enter_context(serve(mirror_dir, route=route))
        state["url"] = url
        if kind == "zenodo":
            monkeypatch.setattr(pooch.downloaders.ZenodoRepository, "base_api_url", f"{url}/api/records")
        return f"doi:{state['doi']}", hits

    with contextlib.ExitStack() as servers:  # every server started is shut down after the test
        yield start


@pytest.mark.parametrize("kind", ["dataverse", "zenodo"])
def test_a_doi_record_is_a_mirror(doi_record, tmp_path, kind):
    mirror, hits = doi_record(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = get(NAME, mirror=mirror, cache_dir=tmp_path, progress=False)
    report = verify(path)
    assert report.ok and report.registry == "identical", str(report)
    assert json.loads((path / MARKER_NAME).read_text())["method"] == "download"
    # The record is resolved once for the whole dataset, not once per file.
    assert sum(count for request, count in hits.items() if request.startswith("/doi.org/")) == 1
    api = "/api/datasets/:persistentId" if kind == "dataverse" else "/api/records/4242"
    assert sum(count for request, count in hits.items() if request.startswith(api)) == 1


def test_a_doi_record_without_a_file_is_skipped_for_the_next_mirror(doi_record, mirror_dir, tmp_path):
    mirror, _ = doi_record("dataverse")
    unknown = mirror.replace("FIELDBENCH", "OTHER")  # the resolver knows it, the archive does not
    with serve(mirror_dir) as (url, _):
        with pytest.warns(MirrorWarning, match=f"the mirror {unknown} is unusable or incomplete") as caught:
            path = get(NAME, mirror=[unknown, url], cache_dir=tmp_path, progress=False, retries=0)
    assert f"trying the next mirror, {url}" in str(caught[0].message)
    assert verify(path).registry == "identical"


# ------------------------------------------------------------------------------------------- hugging face

TOKEN = "hf_fieldbench_test_token"


def hf_route(revision: str):
    """A stand-in for the Hub: /datasets/ORG/NAME/resolve/REV/PATH redirects (as the Hub does for
    large files) to a CDN path that serves the file; a request without the token is refused."""

    def route(path, headers):
        prefix = f"/datasets/org/fieldbench/resolve/{revision}/"
        if path.startswith(prefix):
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return 401, {}, b"unauthorized"
            return 302, {"Location": f"/cdn/{path[len(prefix):]}"}, b""
        if path.startswith("/cdn/"):
            return path[len("/cdn"):]
        return 404, {}, b"not found"

    return route


@pytest.mark.parametrize("mirror", ["hf://datasets/org/fieldbench@v1.0",
                                    "https://huggingface.co/datasets/org/fieldbench/tree/v1.0"])
def test_a_hugging_face_dataset_repository_is_a_mirror(mirror_dir, tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with serve(mirror_dir, route=hf_route("v1.0")) as (url, hits):
        monkeypatch.setenv("HF_ENDPOINT", url)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            path = get(NAME, mirror=mirror, cache_dir=tmp_path, progress=False)
    report = verify(path)
    assert report.ok and report.registry == "identical", str(report)
    assert hits[f"/datasets/org/fieldbench/resolve/v1.0/{NAME}/card.json"] == 1
    assert sum(1 for request in hits if request.startswith("/cdn/")) == len(registered_paths())


def test_a_hugging_face_mirror_that_serves_a_corrupted_file_is_refused(corrupted_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with serve(corrupted_dir, route=hf_route("main")) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        with pytest.raises(ChecksumError, match=f"sha256 checksum mismatch for {NAME}/{CORRUPTED} downloaded from "
                                                "hf://datasets/org/fieldbench"):
            get(NAME, mirror="hf://datasets/org/fieldbench", cache_dir=tmp_path, progress=False, retries=0,
                rebuild=False)
    assert not (tmp_path / "datasets" / NAME / CORRUPTED).exists()


# ------------------------------------------------------------------------------------------- the order

def test_mirrors_are_tried_in_order(mirror_dir, corrupted_dir, tmp_path):
    dead = dead_url()
    with serve(mirror_dir) as (good, hits), serve(corrupted_dir) as (bad, bad_hits):
        with pytest.warns(MirrorWarning) as caught:
            path = get(NAME, mirror=[dead, bad, good], cache_dir=tmp_path, progress=False, retries=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, MirrorWarning)]
    assert len(messages) == 2, messages  # one per failed mirror, naming it, why, and the next one
    assert dead in messages[0] and "unreachable or incomplete" in messages[0]
    assert f"trying the next mirror, {bad}" in messages[0]
    assert "sha256 checksum mismatch" in messages[1] and bad in messages[1] and CORRUPTED in messages[1]
    assert f"trying the next mirror, {good}" in messages[1]
    report = verify(path)
    assert report.ok and report.registry == "identical", str(report)
    # Files the corrupted mirror served intact were kept: the good one served the card and the rest.
    assert bad_hits[f"/{NAME}/points/split=train/part-00000.parquet"] == 1
    assert hits[f"/{NAME}/points/split=train/part-00000.parquet"] == 0
    assert hits[f"/{NAME}/{CORRUPTED}"] == 1 and hits[f"/{NAME}/card.json"] == 1


def test_when_every_mirror_fails_the_dataset_is_rebuilt_or_each_failure_reported(corrupted_dir, tmp_path):
    dead = dead_url()
    with serve(corrupted_dir) as (bad, _):
        with pytest.warns(MirrorWarning, match=f"trying the next mirror, {bad}"), \
                pytest.raises(ChecksumError) as caught:
            get(NAME, mirror=[dead, bad], cache_dir=tmp_path / "a", progress=False, retries=0, rebuild=False)
        message = str(caught.value)
        assert "\n" not in message and dead in message and bad in message and CORRUPTED in message
        with pytest.warns(MirrorWarning) as warned:
            path = get(NAME, mirror=[dead, bad], cache_dir=tmp_path / "b", progress=False, retries=0)
    messages = [str(w.message) for w in warned if issubclass(w.category, MirrorWarning)]
    assert len(messages) == 2 and dead in messages[0] and "sha256 checksum mismatch" in messages[1]
    assert f"rebuilding {NAME!r} locally" in messages[1]
    assert json.loads((path / MARKER_NAME).read_text())["method"] == "rebuild"
    assert verify(path).ok
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as (empty, _):
        with pytest.warns(MirrorWarning, match=f"trying the next mirror, {empty}"), \
                pytest.raises(DatasetUnavailableError) as caught:
            get(NAME, mirror=[dead, empty], cache_dir=tmp_path / "c", progress=False, retries=0, rebuild=False)
    assert dead in str(caught.value) and empty in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_takes_mirrors_in_order(mirror_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fieldbench.cli._app import app

    dead = dead_url()
    with serve(mirror_dir) as (good, hits):
        with pytest.warns(MirrorWarning, match=f"trying the next mirror, {good}"):
            result = CliRunner().invoke(app, ["datasets", "get", NAME, "--mirror", dead, "--mirror", good,
                                              "--cache-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert hits[f"/{NAME}/card.json"] == 1
        # The same list from the environment, in one variable.
        monkeypatch.setenv("FIELDBENCH_MIRROR", f"{dead} {good}")
        assert [str(m) for m in resolve_mirrors()] == [dead, good]


# ------------------------------------------------------------------------------------------- checkpoints

@pytest.fixture
def checkpoint_mirror(tmp_path):
    """A mirror folder with one checkpoint (two files) and a registry that describes it."""
    folder = tmp_path / "checkpoint-mirror"
    (folder / "checkpoints").mkdir(parents=True)
    files = {"checkpoints/fc-ilr-circles2d-seed0.eqx": b"\x00weights" * 5000,
             "checkpoints/fc-ilr-circles2d-seed0.json": b'{"model": "fc-ilr"}'}
    for relative, blob in files.items():
        (folder / relative).write_bytes(blob)
    registry = tmp_path / "checkpoint_registry.json"
    registry.write_text(json.dumps({"format": "fieldbench-checkpoints", "version": 1, "checkpoints": {
        "fc-ilr-circles2d-seed0": {
            "model": "fc-ilr", "dataset": "circles2d", "seed": 0,
            "checkpoint": "checkpoints/fc-ilr-circles2d-seed0.eqx",
            "files": {relative: {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
                      for relative, blob in files.items()}}}}))
    return folder, registry, files


def test_a_registered_checkpoint_is_fetched_from_the_mirrors(checkpoint_mirror, tmp_path):
    folder, registry, files = checkpoint_mirror
    cache, dead = tmp_path / "cache", dead_url()
    with serve(folder) as (url, hits):
        with pytest.warns(MirrorWarning, match=f"{dead} is unreachable.*trying the next mirror, {url}"):
            path = fetch_checkpoint("fc-ilr-circles2d-seed0", mirror=[dead, url], cache_dir=cache, registry=registry,
                                    retries=0)
    assert path == cache / "checkpoints" / "fc-ilr-circles2d-seed0.eqx"
    for relative, blob in files.items():
        assert (cache / relative).read_bytes() == blob
        assert hits[f"/{relative}"] == 1
    assert path.with_suffix(".json").is_file()  # beside it, where load_checkpoint reads the metadata
    # Cached and intact: no mirror needed; a damaged copy is fetched again.
    assert fetch_checkpoint("fc-ilr-circles2d-seed0", mirror="", cache_dir=cache, registry=registry) == path
    flip_byte(path)
    with serve(folder) as (url, hits):
        assert fetch_checkpoint("fc-ilr-circles2d-seed0", mirror=url, cache_dir=cache, registry=registry) == path
    assert hits == {"/checkpoints/fc-ilr-circles2d-seed0.eqx": 1}
    assert path.read_bytes() == files["checkpoints/fc-ilr-circles2d-seed0.eqx"]


def test_an_unavailable_checkpoint_names_the_training_command(checkpoint_mirror, tmp_path):
    folder, registry, _ = checkpoint_mirror
    flip_byte(folder / "checkpoints" / "fc-ilr-circles2d-seed0.eqx")
    command = "`fieldbench train fc-ilr --dataset circles2d --seed 0`"
    with serve(folder) as (url, _):
        with pytest.raises(CheckpointUnavailableError) as caught:
            fetch_checkpoint("fc-ilr-circles2d-seed0", mirror=url, cache_dir=tmp_path / "cache", registry=registry,
                             retries=0)
    message = str(caught.value)
    assert "\n" not in message and command in message and "sha256 checksum mismatch" in message
    assert not (tmp_path / "cache" / "checkpoints" / "fc-ilr-circles2d-seed0.eqx").exists()
    with pytest.raises(CheckpointUnavailableError, match="no mirror is configured") as caught:
        fetch_checkpoint("fc-ilr-circles2d-seed0", mirror="", cache_dir=tmp_path / "cache", registry=registry)
    assert command in str(caught.value)
    with pytest.raises(UnknownCheckpointError, match="fc-ilr-circles2d-seed0"):
        fetch_checkpoint("fourier-circles2d-seed9", mirror="", cache_dir=tmp_path / "cache", registry=registry)


def test_the_packaged_checkpoint_registry_reads():
    from fieldbench.models import checkpoint_registry

    registry = checkpoint_registry()
    assert registry["format"] == "fieldbench-checkpoints"
    for name, entry in registry["checkpoints"].items():
        assert entry["checkpoint"] in entry["files"], name
