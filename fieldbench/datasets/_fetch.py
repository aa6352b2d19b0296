"""Getting a verified standard dataset: from the local cache, a mirror (pooch), or a local rebuild.

``get(name)`` returns the directory of a verified copy of a standard dataset:

1. **Cache.** ``<cache root>/datasets/<name>``, where the cache root is the ``cache_dir``
   argument, else ``$FIELDBENCH_CACHE``, else ``platformdirs.user_cache_dir("fieldbench")``.
   A copy that was verified before (marker file ``.fieldbench-verified.json``, tied to the
   registry entry and to the card's bytes) is returned after a cheap check (card hash, every
   file's size) and without network; ``full_check=True`` re-hashes everything.
2. **Mirror.** The base URL is the ``mirror`` argument, else ``$FIELDBENCH_MIRROR``, else the key
   ``mirror`` of the TOML config file ``$FIELDBENCH_CONFIG``, by default
   ``platformdirs.user_config_dir("fieldbench")/config.toml``::

       mirror = "https://example.org/fieldbench"

   An empty value (``mirror=""``, ``FIELDBENCH_MIRROR=``) means "no mirror". Files are fetched as
   ``<mirror>/<name>/<relative path>`` (layout written by ``publish``) with pooch, which checks
   every Parquet file's sha256 against ``datasets/registry.json`` and moves a download into place
   only when it matches. The card is checked by content against the registry. A file that fails
   its checksum raises ``ChecksumError`` and is never kept.
3. **Rebuild.** With no mirror, or an unreachable/incomplete one, a ``MirrorWarning`` says so
   (naming the settings above) and, if ``rebuild=True``, the dataset is generated locally
   (``fieldbench.pipeline.generate``, resuming from any verified shards already there) and then
   verified against the registry: sources and point coordinates exactly, values to float32
   rounding (``fieldbench.datasets._verify.values_close``). A rebuild that fails is moved aside
   to ``<name>.failed`` and reported with ``DatasetVerificationError``.

Concurrency: everything happens under a ``filelock.FileLock`` (``<cache root>/datasets/.<name>.lock``),
so processes fetching the same dataset at once wait for each other and then share the result.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import shutil
import sys
import tomllib
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import platformdirs
from filelock import FileLock, Timeout

from ..pipeline import CARD_NAME, DatasetExistsError, DatasetSpec, generate, shard_paths
from ._registry import dataset_spec, registry_entries, spec_sha256
from ._verify import DatasetVerificationError, file_sha256, verify

__all__ = [
    "get", "cache_root", "dataset_path", "config_path", "load_config", "resolve_mirror", "ChecksumError",
    "DatasetUnavailableError", "MirrorWarning", "MIRROR_ENV", "CACHE_ENV", "CONFIG_ENV", "MARKER_NAME",
]

MIRROR_ENV = "FIELDBENCH_MIRROR"
CACHE_ENV = "FIELDBENCH_CACHE"
CONFIG_ENV = "FIELDBENCH_CONFIG"
MARKER_NAME = ".fieldbench-verified.json"
_SCHEMES = ("http", "https", "ftp")


class ChecksumError(ValueError):
    """Downloaded content does not match the registry (the file was discarded)."""


class DatasetUnavailableError(RuntimeError):
    """No mirror could provide the dataset and a local rebuild was not allowed."""


class MirrorWarning(UserWarning):
    """No mirror configured, or the mirror failed: falling back to a local rebuild."""


class _MirrorUnavailable(Exception):
    pass


# --------------------------------------------------------------------------------------------- settings

def config_path() -> Path:
    """The config file: ``$FIELDBENCH_CONFIG``, else ``<user config dir>/fieldbench/config.toml``."""
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("fieldbench")) / "config.toml"


def load_config() -> dict:
    """The parsed config file ({} when there is none)."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"cannot parse the fieldbench config file {path}: {error}") from None


def resolve_mirror(mirror: str | None = None) -> str | None:
    """The mirror base URL (no trailing slash) or None: argument, ``$FIELDBENCH_MIRROR``, config file."""
    if mirror is not None:
        value, origin = mirror, "the mirror argument"
    elif MIRROR_ENV in os.environ:
        value, origin = os.environ[MIRROR_ENV], f"${MIRROR_ENV}"
    else:
        value, origin = load_config().get("mirror"), f"'mirror' in {config_path()}"
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{origin} must be a URL string; got {value!r}")
    value = value.strip().rstrip("/")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in _SCHEMES or not parts.netloc:
        raise ValueError(f"{origin} = {value!r} is not an http(s) or ftp base URL (e.g. 'http://HOST:8000', "
                         "where HOST serves the folder written by fieldbench.datasets publish)")
    return value


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The fieldbench cache root: argument, else ``$FIELDBENCH_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(platformdirs.user_cache_dir("fieldbench"))


def dataset_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``get`` keeps dataset ``name``: ``<cache root>/datasets/<name>``."""
    return cache_root(cache_dir) / "datasets" / name


def _how_to_configure() -> str:
    return (f"pass mirror=URL, set {MIRROR_ENV}=URL, or put `mirror = \"URL\"` in {config_path()} "
            f"(any static server of a folder written by publish() is a mirror)")


def _reporter(progress) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda message: print(f"fieldbench: {message}", file=sys.stderr, flush=True)
    return lambda message: None


# --------------------------------------------------------------------------------------------- the cache

def _write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"
    try:
        temporary.write_text(json.dumps(data, indent=1))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _card_files(card: Mapping) -> list[dict]:
    return [shard["files"][kind] for split in card["splits"].values() for shard in split["shards"]
            for kind in ("sources", "points")]


def _cached_ok(target: Path, entries: Mapping, full_check: bool) -> bool:
    marker_path = target / MARKER_NAME
    if not marker_path.is_file():
        return False
    try:
        marker = json.loads(marker_path.read_text())
        card_bytes = (target / CARD_NAME).read_bytes()
        good = (marker.get("registry_content_sha256") == entries["content_sha256"]
                and marker.get("spec_sha256") == entries["spec_sha256"]
                and marker.get("card_sha256") == hashlib.sha256(card_bytes).hexdigest())
        if good:
            for entry in _card_files(json.loads(card_bytes)):
                file = target / entry["path"]
                if not file.is_file() or file.stat().st_size != entry["bytes"]:
                    good = False
                    break
        if good and full_check:
            good = verify(target, against=entries).ok
    except (OSError, ValueError, KeyError, TypeError):
        good = False
    if not good:
        marker_path.unlink(missing_ok=True)
    return good


def _mark(target: Path, entries: Mapping, method: str, match: str) -> None:
    _write_json_atomic(target / MARKER_NAME, {
        "registry_content_sha256": entries["content_sha256"], "spec_sha256": entries["spec_sha256"],
        "card_sha256": file_sha256(target / CARD_NAME), "method": method, "registry_match": match,
        "verified": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })


def _clear_foreign(target: Path, spec: DatasetSpec, say) -> None:
    """Remove a cached folder that holds another dataset (e.g. from an older spec)."""
    card = target / CARD_NAME
    if not card.exists():
        return
    try:
        foreign = json.loads(card.read_text()).get("spec") != spec.to_dict()
    except (OSError, ValueError):
        foreign = True
    if foreign:
        say(f"{target} holds another version of {spec.name}; removing it")
        shutil.rmtree(target)


@contextlib.contextmanager
def _quiet_pooch():
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------------------------- download

def _card_problems(card: Mapping, spec: DatasetSpec, entries: Mapping, name: str) -> list[str]:
    problems = []
    if card.get("content_sha256") != entries["content_sha256"]:
        problems.append(f"content_sha256 {card.get('content_sha256')} != registered {entries['content_sha256']}")
    try:
        if spec_sha256(DatasetSpec.from_dict(card["spec"])) != entries["spec_sha256"]:
            problems.append("its spec differs from the registered one")
        listed = {f"{name}/{e['path']}": (e["sha256"], e["bytes"]) for e in _card_files(card)}
    except (KeyError, TypeError, ValueError) as error:
        return problems + [f"malformed card ({type(error).__name__}: {error})"]
    registered = {path: (e["sha256"], e["bytes"]) for path, e in entries["files"].items()}
    if listed != registered:
        problems.append("its file list or checksums differ from the registry")
    if set(card.get("splits", {})) != set(entries["splits"]):
        problems.append(f"splits {sorted(card.get('splits', {}))} != registered {sorted(entries['splits'])}")
    return problems


def _download(name: str, url: str, base: Path, target: Path, spec: DatasetSpec, entries: Mapping, say,
              timeout: float, retries: int) -> None:
    import pooch
    import requests

    registry = {entries["card"]: None}  # the card is checked by content below, not by bytes
    registry.update({path: f"sha256:{entry['sha256']}" for path, entry in entries["files"].items()})
    fetcher = pooch.create(path=base, base_url=url + "/", registry=registry, retry_if_failed=retries,
                           allow_updates=True)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)

    def fetch(relative: str) -> Path:
        try:
            return Path(fetcher.fetch(relative, downloader=downloader))
        except requests.exceptions.RequestException as error:
            raise _MirrorUnavailable(f"the mirror {url} is unreachable or incomplete: could not download "
                                     f"{relative} ({type(error).__name__}: {error})") from error
        except ValueError as error:  # pooch: sha256 mismatch (the download was deleted)
            # A local file at that path did not match the registry either (else pooch would not have
            # downloaded): remove it too, so nothing unverified sits where the good file belongs.
            (base / relative).unlink(missing_ok=True)
            raise ChecksumError(
                f"sha256 checksum mismatch for {relative} downloaded from {url}: {error} The bad file was "
                f"discarded (nothing was stored under {base / relative}). The mirror serves a corrupted or "
                f"different file: republish it with fieldbench.datasets publish(), use another mirror, or "
                f"rebuild locally with mirror='' (or {MIRROR_ENV}=)") from error

    for stale in (target / MARKER_NAME, target / CARD_NAME):
        stale.unlink(missing_ok=True)  # the card must come fresh from the mirror
    say(f"downloading {name} ({len(entries['files'])} files) from {url} into {target}")
    with _quiet_pooch():
        card_file = fetch(entries["card"])
        try:
            card = json.loads(card_file.read_text())
            problems = _card_problems(card, spec, entries, name)
        except (OSError, ValueError) as error:
            problems = [f"not a valid JSON card ({error})"]
        if problems:
            card_file.unlink(missing_ok=True)
            raise ChecksumError(f"{entries['card']} on the mirror {url} does not match the registry: "
                                + "; ".join(problems) + ". The mirror holds another version of the dataset "
                                "(or a damaged card): republish it with publish(), or rebuild locally with mirror=''")
        shards = [(split_name, shard) for split_name, split in card["splits"].items() for shard in split["shards"]]
        for done, (split_name, shard) in enumerate(shards, 1):
            for kind in ("sources", "points"):
                fetch(f"{name}/{shard['files'][kind]['path']}")
            # A manifest per shard, as generate() writes: a later rebuild resumes from these shards.
            _write_json_atomic(target / shard_paths(split_name, shard["index"])["manifest"], shard)
            say(f"{name}: {done}/{len(shards)} shards downloaded and checked")


# --------------------------------------------------------------------------------------------- rebuild

def _rebuild(name: str, spec: DatasetSpec, target: Path, entries: Mapping, say, generate_options: Mapping) -> str:
    def shards_done(done: int, total: int) -> None:
        say(f"{name}: {done}/{total} shards built")

    try:
        generate(spec, str(target), progress=shards_done, **generate_options)
    except DatasetExistsError:
        say(f"{target} holds leftovers of another version of {name}; removing them and rebuilding")
        shutil.rmtree(target)
        generate(spec, str(target), progress=shards_done, **generate_options)
    say(f"verifying the rebuilt {name} against the registry")
    report = verify(target, against=entries)
    if not report.ok:
        failed = target.with_name(f"{name}.failed")
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(target, failed)
        report.path = failed
        raise DatasetVerificationError(
            report, f"the local rebuild of {name!r} does not match the registry, so it was moved aside to "
                    f"{failed} (it is not used). This fieldbench (or its numerical stack) produces other data "
                    f"than the reference build; download the dataset from a mirror instead ({_how_to_configure()}),"
                    " or report this with the details below:")
    return report.registry


# --------------------------------------------------------------------------------------------- get

def get(
    name: str,
    *,
    mirror: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    rebuild: bool = True,
    progress: bool | Callable[[str], None] = True,
    full_check: bool = False,
    timeout: float = 30.0,
    retries: int = 1,
    lock_timeout: float = -1,
    **generate_options,
) -> Path:
    """The local directory of a verified copy of standard dataset ``name`` (see the module docstring).

    Args:
      name: a standard dataset (``list_datasets()``).
      mirror: mirror base URL; None: ``$FIELDBENCH_MIRROR`` or the config file; "": no mirror.
      cache_dir: the cache root (the dataset goes to ``<cache_dir>/datasets/<name>``); None:
        ``$FIELDBENCH_CACHE`` or ``platformdirs.user_cache_dir("fieldbench")``.
      rebuild: when no mirror can provide the dataset, generate it locally (and verify it); if
        False, raise ``DatasetUnavailableError`` instead.
      progress: True prints progress to stderr, False is silent, a callable receives each message.
      full_check: re-hash every file of an already verified cached copy.
      timeout: seconds without data before a download attempt fails; retries: extra attempts per file.
      lock_timeout: seconds to wait for another process working on the same dataset (-1: forever).
      generate_options: passed to ``fieldbench.pipeline.generate`` (``scheduler``, ``workers``).
    """
    spec = dataset_spec(name)
    entries = registry_entries(name)
    say = _reporter(progress)
    base = dataset_path(name, cache_dir).parent
    target = base / name
    base.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(base / f".{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another process to finish fetching {name} into {target}")
        try:
            lock.acquire(timeout=lock_timeout)
        except Timeout:
            raise TimeoutError(f"another process has held {lock.lock_file} for over {lock_timeout} s; if none "
                               "is running, delete that file") from None
    try:
        if _cached_ok(target, entries, full_check):
            return target
        url = resolve_mirror(mirror)
        _clear_foreign(target, spec, say)
        if url is None:
            failure = "no mirror is configured for fieldbench datasets"
        else:
            try:
                _download(name, url, base, target, spec, entries, say, timeout, retries)
            except _MirrorUnavailable as error:
                failure = str(error)
            else:
                _mark(target, entries, "download", "identical")
                say(f"{name} is ready in {target}")
                return target
        if not rebuild:
            raise DatasetUnavailableError(f"{failure}, so {name!r} cannot be downloaded; {_how_to_configure()}; "
                                          "or allow a local rebuild (rebuild=True)")
        shards = sum(s.shards for s in spec.splits.values())
        warnings.warn(f"{failure}; rebuilding {name!r} locally instead ({shards} shards, verified against the "
                      f"registry afterwards). To download it, {_how_to_configure()}.", MirrorWarning, stacklevel=2)
        say(f"{failure}; rebuilding {name} locally in {target}")
        match = _rebuild(name, spec, target, entries, say, generate_options)
        _mark(target, entries, "rebuild", match)
        say(f"{name} is ready in {target} (rebuilt, {match} to the registry)")
        return target
    finally:
        lock.release()
