"""Getting a verified standard dataset: from the local cache, a list of mirrors (pooch), or a local rebuild.

``get(name)`` returns the directory of a verified copy of a standard dataset (the settings it reads,
cache location and mirrors, are resolved in ``_settings``):

1. **Cache.** ``<cache root>/datasets/<name>``, where the cache root is the ``cache_dir``
   argument, else ``$FIELDBENCH_CACHE``, else ``platformdirs.user_cache_dir("fieldbench")``.
   A copy in the folder layout of version 1 is first moved into the current one
   (``fieldbench.pipeline.migrate_layout``; no file changes its bytes).
   A copy that was verified before (marker file ``.fieldbench-verified.json``, tied to the
   registry entry) is returned without network when the card and every data file still have the
   sha256 they had then and no stray file is there. A file is re-hashed unless its stamp (size,
   mtime_ns, ctime_ns, inode, device; ``fieldbench._io.stamped_sha256``) is the one recorded with
   its hash, taken more than ``RACY_NS`` after its last change: any write, ``os.utime``, copy or
   replacement changes the stamp, so a bit flip that keeps the size is caught. ``full_check=True``
   re-hashes everything and reruns ``verify`` against the registry. A copy that fails is repaired
   (download or rebuild below), never returned.
2. **Mirrors**, tried in order. The list is the ``mirror`` argument, else ``$FIELDBENCH_MIRROR``
   (mirrors separated by spaces or commas), else the key ``mirror`` of the TOML config file
   ``$FIELDBENCH_CONFIG``, by default ``platformdirs.user_config_dir("fieldbench")/config.toml``::

       mirror = ["hf://datasets/ORG/fieldbench", "doi:10.5281/zenodo.NNNN", "https://example.org/fieldbench"]

   An empty value (``mirror=""``, ``FIELDBENCH_MIRROR=``) means "no mirror". A mirror is a static
   server (http, https, ftp), a DOI archive record or a Hugging Face dataset repository
   (``_mirrors`` says how each is written and where it keeps ``<name>/<relative path>``, the
   layout written by ``publish``). Every file is fetched with pooch, which checks every Parquet
   file's sha256 against the registry (``fieldbench/datasets/standard/registry.json``). Downloads
   go to a staging folder ``<cache root>/datasets/.<name>.download`` (beside the data, on the same file system), and a
   file is renamed into the dataset folder only once its checksum matched, so a killed download
   leaves its temporaries there, never among the data; the card is moved in last. Files already in
   place with the registered sha256 are not downloaded again (so the next mirror resumes where a
   failed one stopped). The card is checked by content against the registry. A file that fails
   its checksum is never kept. A mirror that is unreachable, lacks a file or serves a corrupted
   one (``ChecksumError``) is reported in a ``MirrorWarning`` naming it and why, and the next one
   is tried.
3. **Rebuild.** With no mirror, or when every mirror failed, a ``MirrorWarning`` says so (naming
   the settings above) and, if ``rebuild=True``, the dataset is generated locally
   (``fieldbench.pipeline.generate``, resuming from any verified shards already there) and then
   verified against the registry: sources, point coordinates and values exactly (see
   ``fieldbench.datasets._verify``). A rebuild that fails is moved aside to ``<name>.failed`` and
   reported with ``DatasetVerificationError``. With ``rebuild=False``, ``DatasetUnavailableError``
   lists every mirror's failure (``ChecksumError`` if a mirror served a corrupted file).

Concurrency: everything happens under ``fieldbench._io.folder_lock(<cache root>/datasets/<name>)``
(the file ``.<name>.lock`` beside it, the lock ``generate`` takes on its target too), so processes
fetching the same dataset at once wait for each other and then share the result. Under the lock,
stray files in the cached folder (debris of killed runs) are deleted before a repair.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from ..exceptions import ChecksumError, DatasetUnavailableError, MirrorWarning
from .._io import atomic_write_text, file_sha256, folder_lock, json_sha256, stamped_sha256
from ..pipeline import (CARD_NAME, FINGERPRINT_VERSION, README_NAME, SHARD_FILES, CardError, DatasetCard,
                        DatasetExistsError, DatasetSpec, OldLayoutError, dataset_readme, generate, migrate_layout,
                        read_card, shard_paths)
from ._registry import dataset_spec, registry_entries
from ._mirrors import Mirror, file_fetcher, reporter, try_mirrors
from ._settings import MIRROR_ENV, dataset_path, how_to_configure, resolve_mirrors
from ._verify import MARKER_NAME, DatasetVerificationError, stray_files, verify

__all__ = ["get", "ChecksumError", "DatasetUnavailableError", "MirrorWarning"]


# --------------------------------------------------------------------------------------------- the cache

def _write_json_atomic(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def _entry_digest(entries: Mapping) -> str:
    """Digest of a registry entry: a marker made under another entry (or fingerprint scheme) is
    re-verified, not trusted."""
    return json_sha256(entries)


def _cached_ok(target: Path, entries: Mapping, full_check: bool) -> bool:
    """Whether ``target`` is still the copy that was verified (see the module docstring); refreshes
    the marker's stamps when files had to be re-hashed. A failed copy loses its marker."""
    marker_path = target / MARKER_NAME
    if not (target / CARD_NAME).is_file():
        marker_path.unlink(missing_ok=True)
        return False
    try:
        marker = json.loads(marker_path.read_text()) if marker_path.is_file() else {}
    except (OSError, ValueError):
        marker = {}
    if not isinstance(marker, dict):
        marker = {}
    if full_check or marker.get("registry_entry_sha256") != _entry_digest(entries):
        # No marker, one from an older fieldbench or registry, or asked to: the whole check.
        report = verify(target, against=entries)
        if not report.ok:
            marker_path.unlink(missing_ok=True)
            return False
        _mark(target, entries, marker.get("method", "verified in place"), report.registry)
        return True
    records = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    fresh, reread = {}, False
    try:
        card_sha, fresh[CARD_NAME], read = stamped_sha256(target / CARD_NAME, records.get(CARD_NAME))
        reread |= read
        good = card_sha == marker.get("card_sha256")
        if good:
            card = read_card(str(target))
            for entry in card.files():
                file = target / entry.path
                if not file.is_file():
                    good = False
                    break
                digest, fresh[entry.path], read = stamped_sha256(file, records.get(entry.path))
                reread |= read
                if digest != entry.sha256:
                    good = False
                    break
            good = good and not stray_files(target, card)
    except (OSError, ValueError, KeyError, TypeError):
        good = False
    if not good:
        marker_path.unlink(missing_ok=True)
        return False
    if reread:
        _write_json_atomic(marker_path, {**marker, "files": fresh})
    return True


def _mark(target: Path, entries: Mapping, method: str, match: str) -> None:
    """Record a verified copy: the registry entry it matched and, per file, its sha256 with the
    stamp taken when it was hashed (what ``_cached_ok`` trusts later)."""
    card = read_card(str(target))
    files = {}
    for relative in [CARD_NAME] + [entry.path for entry in card.files()]:
        _, files[relative], _ = stamped_sha256(target / relative)
    _write_json_atomic(target / MARKER_NAME, {
        "registry_entry_sha256": _entry_digest(entries), "fingerprint_version": FINGERPRINT_VERSION,
        "registry_content_sha256": entries["content_sha256"], "spec_sha256": entries["spec_sha256"],
        "card_sha256": files[CARD_NAME]["sha256"], "method": method, "registry_match": match,
        "verified": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "files": files,
    })


def _expected_paths(entries: Mapping) -> set[str]:
    """Every file a cached copy of a registry entry may hold (relative to the dataset folder)."""
    expected = {CARD_NAME, MARKER_NAME}
    for split_name, split in entries["splits"].items():
        for shard in split["shards"]:
            expected.update(shard_paths(split_name, shard["index"]).values())
    return expected


def _remove_strays(target: Path, entries: Mapping, say) -> None:
    """Delete what does not belong in the cached folder (under the lock nobody else is writing it)."""
    if not target.is_dir():
        return
    expected = _expected_paths(entries)
    for folder, _, names in os.walk(target):
        for file in names:
            path = Path(folder, file)
            if path.relative_to(target).as_posix() not in expected:
                say(f"removing stray file {path}")
                path.unlink()


def _clear_foreign(target: Path, spec: DatasetSpec, say) -> None:
    """Remove a cached folder that holds another dataset (e.g. from an older spec)."""
    if not (target / CARD_NAME).exists():
        return
    try:
        foreign = read_card(str(target)).spec.to_dict() != spec.to_dict()
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

def _card_problems(card: DatasetCard, entries: Mapping, name: str) -> list[str]:
    problems = []
    if card.content_sha256 != entries["content_sha256"]:
        problems.append(f"content_sha256 {card.content_sha256} != registered {entries['content_sha256']}")
    if card.spec.sha256 != entries["spec_sha256"]:
        problems.append("its spec differs from the registered one")
    listed = {f"{name}/{e.path}": (e.sha256, e.bytes) for e in card.files()}
    registered = {path: (e["sha256"], e["bytes"]) for path, e in entries["files"].items()}
    if listed != registered:
        problems.append("its file list or checksums differ from the registry")
    if set(card.splits) != set(entries["splits"]):
        problems.append(f"splits {sorted(card.splits)} != registered {sorted(entries['splits'])}")
    return problems


def _download(name: str, mirror: Mirror, base: Path, target: Path, entries: Mapping, say,
              timeout: float, retries: int) -> None:
    # pooch writes each download into a staging folder beside the data (same file system, so the
    # final os.replace into the dataset is atomic). A kill leaves debris only there, and the next
    # download starts by deleting it (we hold the lock).
    staging = base / f".{name}.download"
    shutil.rmtree(staging, ignore_errors=True)
    registry = {entries["card"]: None}  # the card is checked by content below, not by bytes
    registry.update({path: f"sha256:{entry['sha256']}" for path, entry in entries["files"].items()})
    fetch = file_fetcher(mirror, staging, registry, store=base, timeout=timeout, retries=retries,
                         fix=f"The mirror serves a corrupted or different file: republish it with `fieldbench datasets "
                             f"publish`, use another mirror, or rebuild locally with --mirror '' (or {MIRROR_ENV}=)")

    # Nothing may trust the folder while it is rewritten; the card comes fresh from the mirror, last.
    for stale in (target / MARKER_NAME, target / CARD_NAME):
        stale.unlink(missing_ok=True)
    say(f"downloading {name} ({len(entries['files'])} files) from {mirror} into {target}")
    try:
        with _quiet_pooch():
            card_file = fetch(entries["card"])
            try:
                card = DatasetCard.from_json(card_file.read_bytes(), str(card_file))
                problems = _card_problems(card, entries, name)
            except (OSError, ValueError) as error:  # not JSON, or not a card this fieldbench reads
                problems = [f"not a valid card ({error})"]
            if problems:
                raise ChecksumError(f"{entries['card']} on the mirror {mirror} does not match the registry: "
                                    + "; ".join(problems) + ". The mirror holds another version of the dataset "
                                    "(or a damaged card): republish it with `fieldbench datasets publish`, or "
                                    "rebuild locally with --mirror ''")
            shards = [(split_name, shard) for split_name, split in card.splits.items() for shard in split.shards]
            for done, (split_name, shard) in enumerate(shards, 1):
                for kind in SHARD_FILES:
                    entry = shard.files[kind]
                    final = target / entry.path
                    if final.is_file() and file_sha256(final) == entry.sha256:
                        continue  # already here and good (an earlier, interrupted download, or another mirror)
                    final.unlink(missing_ok=True)  # a bad local copy must not survive a failed download
                    staged = fetch(f"{name}/{entry.path}")
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, final)
                # A manifest per shard, as generate() writes: a later rebuild resumes from these shards.
                _write_json_atomic(target / shard_paths(split_name, shard.index)["manifest"], shard.to_dict())
                say(f"{name}: {done}/{len(shards)} shards downloaded and checked")
            atomic_write_text(target / README_NAME, dataset_readme(card))  # made here, not fetched: no checksum
            os.replace(card_file, target / CARD_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
                    f"than the reference build; download the dataset from a mirror instead ({how_to_configure()}),"
                    " or report this with the details below:")
    return report.registry


# --------------------------------------------------------------------------------------------- get

def _migrate_old_layout(target: Path, say) -> None:
    """A cached copy in layout version 1 is moved into the current layout (its files keep their
    bytes, so it then verifies against the registry as before); one that cannot be migrated is
    left to the repair below (``_clear_foreign`` removes it)."""
    try:
        read_card(str(target))
    except OldLayoutError:
        say(f"moving the cached {target.name} into the current folder layout")
        try:
            say(str(migrate_layout(target)))
        except (OSError, CardError) as error:
            say(f"cannot migrate {target} ({error}); fetching it again")
    except (OSError, ValueError):
        pass  # no card, or a damaged one: the usual checks and repairs handle it



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
      mirror: a mirror (http(s)/ftp base URL, ``doi:...``, ``hf://datasets/...``; see
        ``fieldbench.datasets._mirrors``), several separated by spaces, or a list of them, tried in
        order; None: ``$FIELDBENCH_MIRROR`` or the config file; "" or []: no mirror.
      cache_dir: the cache root (the dataset goes to ``<cache_dir>/datasets/<name>``); None:
        ``$FIELDBENCH_CACHE`` or ``platformdirs.user_cache_dir("fieldbench")``.
      rebuild: when no mirror can provide the dataset, generate it locally (and verify it); if
        False, raise ``DatasetUnavailableError`` instead (``ChecksumError`` when a mirror served a
        corrupted file).
      progress: True prints progress to stderr, False is silent, a callable receives each message.
      full_check: re-hash every file of an already verified cached copy.
      timeout: seconds without data before a download attempt fails; retries: extra attempts per file.
      lock_timeout: seconds to wait for another process working on the same dataset (-1: forever).
      generate_options: passed to ``fieldbench.pipeline.generate`` (``scheduler``, ``workers``).
    """
    spec = dataset_spec(name)
    entries = registry_entries(name)
    say = reporter(progress)
    target = dataset_path(name, cache_dir)
    base = target.parent
    base.mkdir(parents=True, exist_ok=True)
    with folder_lock(target, timeout=lock_timeout, say=say, what=f"fetching {name} into"):
        _migrate_old_layout(target, say)
        if _cached_ok(target, entries, full_check):
            return target
        mirrors = resolve_mirrors(mirror)
        _clear_foreign(target, spec, say)
        _remove_strays(target, entries, say)
        done, failures = try_mirrors(
            mirrors, lambda one: _download(name, one, base, target, entries, say, timeout, retries), say)
        if done:
            _mark(target, entries, "download", "identical")
            say(f"{name} is ready in {target}")
            return target
        failure = str(failures[-1][1]) if failures else "no mirror is configured for fieldbench datasets"
        if not rebuild:
            corrupted = [error for _, error in failures if isinstance(error, ChecksumError)]
            if len(failures) == 1 and corrupted:
                raise corrupted[0]
            everything = "; ".join(str(error) for _, error in failures) or failure
            if corrupted:
                raise ChecksumError(f"no mirror served {name!r} intact: {everything}") from corrupted[-1]
            raise DatasetUnavailableError(f"{everything}, so {name!r} cannot be downloaded; {how_to_configure()}; "
                                          "or allow a local rebuild (rebuild=True)")
        shards = sum(s.shards for s in spec.splits.values())
        warnings.warn(f"{failure}; rebuilding {name!r} locally instead ({shards} shards, verified against the "
                      f"registry afterwards). To download it, {how_to_configure()}.", MirrorWarning, stacklevel=2)
        say(f"{failure}; rebuilding {name} locally in {target}")
        match = _rebuild(name, spec, target, entries, say, generate_options)
        _mark(target, entries, "rebuild", match)
        say(f"{name} is ready in {target} (rebuilt, {match} to the registry)")
        return target
