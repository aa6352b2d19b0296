"""Baseline checkpoints too large for the repository: a registry of their checksums, fetched from the mirrors.

``fetch_checkpoint(name)`` returns the path of a registered checkpoint (its ``.eqx`` file, with
its ``.json`` metadata beside it, as ``load_checkpoint`` reads them) in
``<cache root>/<registered path>`` (the cache root of ``fieldbench.datasets.cache_root``). A copy
whose files all have their registered size and sha256 is returned as it is; otherwise the missing
or damaged files are downloaded from the same mirrors as the datasets (``--mirror``,
``$FIELDBENCH_MIRROR``, the config file; any kind in ``fieldbench.datasets._mirrors``), tried in
order, each file checked against its sha256 before it is moved into place. When no mirror has it,
``CheckpointUnavailableError`` names the command that trains it again.

The registry is ``checkpoint_registry.json`` in this package (package data)::

    {"format": "fieldbench-checkpoints", "version": 1,
     "checkpoints": {"fc-ilr-circles2d-seed0": {
         "model": "fc-ilr", "dataset": "circles2d", "seed": 0,
         "checkpoint": "checkpoints/fc-ilr-circles2d-seed0.eqx",
         "files": {"checkpoints/fc-ilr-circles2d-seed0.eqx": {"sha256": "<hex>", "bytes": 123},
                   "checkpoints/fc-ilr-circles2d-seed0.json": {"sha256": "<hex>", "bytes": 456}}}}}

Every checkpoint shipped today is small enough to ship in the repository, so the registry starts
empty; a mirror serves each file at its registered path (``checkpoints/...``).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from .._io import file_sha256, folder_lock, read_json
from ..datasets._mirrors import file_fetcher, reporter, try_mirrors
from ..datasets._settings import cache_root, how_to_configure, resolve_mirrors
from ..exceptions import CheckpointUnavailableError, UnknownCheckpointError

__all__ = ["CHECKPOINT_REGISTRY", "CHECKPOINT_FORMAT", "checkpoint_registry", "fetch_checkpoint",
           "download_checkpoint", "UnknownCheckpointError", "CheckpointUnavailableError"]

CHECKPOINT_REGISTRY = "checkpoint_registry.json"
CHECKPOINT_FORMAT = "fieldbench-checkpoints"


def checkpoint_registry(registry: str | os.PathLike | Mapping | None = None) -> dict:
    """The checkpoint registry: ``registry`` (a file or its parsed content), else the packaged one."""
    if isinstance(registry, Mapping):
        data = dict(registry)
    elif registry is not None:
        data = read_json(registry, "restore it or fix the JSON")
    else:
        text = importlib.resources.files(__package__).joinpath(CHECKPOINT_REGISTRY).read_text()
        data = read_json(CHECKPOINT_REGISTRY, "reinstall fieldbench", text=text)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT or data.get("version") != 1:
        raise ValueError(f"{registry or CHECKPOINT_REGISTRY} is not a fieldbench checkpoint registry (format "
                         f"{CHECKPOINT_FORMAT!r}, version 1)")
    return data


def _entry(name: str, registry) -> dict:
    checkpoints = checkpoint_registry(registry)["checkpoints"]
    if name not in checkpoints:
        raise UnknownCheckpointError(f"no registered checkpoint named {name!r}; the registry holds: "
                                     f"{', '.join(sorted(checkpoints)) or '(none)'}")
    entry = checkpoints[name]
    for path in entry["files"]:
        parts = PurePosixPath(path).parts
        if PurePosixPath(path).is_absolute() or ".." in parts or not parts:
            raise ValueError(f"checkpoint {name!r}: registered path {path!r} must be relative, without '..'")
    if entry["checkpoint"] not in entry["files"]:
        raise ValueError(f"checkpoint {name!r}: its 'checkpoint' file {entry['checkpoint']!r} is not among its files")
    return entry


def _intact(path: Path, registered: Mapping) -> bool:
    return path.is_file() and path.stat().st_size == registered["bytes"] and file_sha256(path) == registered["sha256"]


def fetch_checkpoint(
    name: str,
    *,
    mirror: str | Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    registry: str | os.PathLike | Mapping | None = None,
    progress: bool | Callable[[str], None] = False,
    timeout: float = 30.0,
    retries: int = 1,
) -> Path:
    """The local path of registered checkpoint ``name`` (see the module docstring).

    ``mirror``: as for ``fieldbench.datasets.get`` (None: ``$FIELDBENCH_MIRROR`` or the config
    file; "" or []: none). ``registry``: a registry file or its content instead of the packaged
    one. Raises ``UnknownCheckpointError`` for a name the registry lacks, ``CheckpointUnavailableError``
    (naming ``fieldbench train MODEL --dataset D --seed N``) when no mirror provided it; a mirror
    that failed before another one succeeded is named in a ``MirrorWarning``.
    """
    entry = _entry(name, registry)
    say = reporter(progress)
    root = cache_root(cache_dir)
    files = entry["files"]
    target = root / entry["checkpoint"]
    with folder_lock(target, say=say, what=f"fetching checkpoint {name} into"):
        missing = [path for path, registered in files.items() if not _intact(root / path, registered)]
        if not missing:
            return target
        staging = target.parent / f".{target.name}.download"

        def attempt(one) -> None:
            shutil.rmtree(staging, ignore_errors=True)
            fetch = file_fetcher(one, staging, {path: f"sha256:{files[path]['sha256']}" for path in missing},
                                 store=root, timeout=timeout, retries=retries,
                                 fix="The mirror serves a corrupted or different file: republish it, or use another "
                                     "mirror")
            try:
                for path in list(missing):
                    say(f"downloading {path} from {one}")
                    staged = fetch(path)
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, root / path)  # checked by pooch in the staging folder: only intact files
                    missing.remove(path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

        done, failures = try_mirrors(resolve_mirrors(mirror), attempt, say)
        if done:
            return target
    why = "; ".join(str(error) for _, error in failures) or "no mirror is configured"
    command = f"fieldbench train {entry['model']} --dataset {entry['dataset']} --seed {entry['seed']}"
    raise CheckpointUnavailableError(
        f"checkpoint {name!r} is not in {target.parent} and no mirror provided it ({why}); train it yourself with "
        f"`{command}`, or {how_to_configure()}")



def download_checkpoint(url: str, sha256: str, metadata_sha256: str | None = None, *,
                        cache_dir: str | os.PathLike | None = None, timeout: float = 60.0) -> Path:
    """A checkpoint published at ``url`` (its ``.eqx``; the ``.json`` metadata beside it, at the same
    URL with that suffix), as a leaderboard record names it: downloaded once into
    ``<cache root>/checkpoints/by-sha256/<sha256>/`` and checked against ``sha256`` (and the metadata
    against ``metadata_sha256``); a copy already there that matches is returned as it is. A file that
    does not match is discarded, never kept; raises ``CheckpointUnavailableError`` naming the URL and
    what went wrong."""
    import pooch
    import requests

    if not url.endswith(".eqx"):
        raise ValueError(f"checkpoint URL {url} must name the .eqx file (its .json metadata is fetched beside it)")
    folder = cache_root(cache_dir) / "checkpoints" / "by-sha256" / sha256
    name = PurePosixPath(url.split("?", 1)[0]).name
    wanted = [(url, name, sha256), (url.removesuffix(".eqx") + ".json", name.removesuffix(".eqx") + ".json",
                                    metadata_sha256)]
    with folder_lock(folder / name, what="downloading a checkpoint into"):
        for address, file, digest in wanted:
            try:
                pooch.retrieve(address, known_hash=f"sha256:{digest}" if digest else None, fname=file, path=folder,
                               downloader=pooch.HTTPDownloader(timeout=timeout), progressbar=False)
            except requests.exceptions.RequestException as error:
                raise CheckpointUnavailableError(f"could not download {address} ({type(error).__name__}: {error}); "
                                                 "check the URL, or restore the checkpoint file in the clone") from None
            except ValueError as error:  # pooch: sha256 mismatch (the download was deleted)
                raise CheckpointUnavailableError(f"{address} is not the checkpoint the record names (sha256 "
                                                 f"mismatch: {' '.join(str(error).split())[:200]}); the file at the "
                                                 "URL changed: restore it, or resubmit the record") from None
    return folder / name
