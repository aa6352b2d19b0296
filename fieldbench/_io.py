"""Small file helpers shared by every layer: atomic writes, file hashes (with change stamps), JSON
files that name themselves when damaged, and the one lock that guards a folder being written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .exceptions import DamagedFileError

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_copy", "file_sha256", "sha256_bytes", "json_sha256",
           "file_stamp", "stamped_sha256", "read_json", "DamagedFileError", "folder_lock", "lock_path", "RACY_NS",
           "TEMPORARY_PREFIX"]


def file_sha256(path: str | os.PathLike, *, fs=None) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks; ``fs``: an fsspec file system holding
    ``path`` (default: the local one)."""
    digest = hashlib.sha256()
    with (fs.open(path, "rb") if fs is not None else open(path, "rb")) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of bytes in memory (e.g. a file about to be written)."""
    return hashlib.sha256(data).hexdigest()


def json_sha256(data) -> str:
    """sha256 of the JSON of ``data`` with sorted keys (default separators): a digest of a spec or a
    registry entry that does not depend on key order."""
    return sha256_bytes(json.dumps(data, sort_keys=True).encode())


#: A stamp taken less than this long after the file last changed is not trusted (the "racy" case of
#: git's index): file times are coarse (a kernel tick; 2 s on FAT), so a write landing in the same
#: tick right after the hash could leave every stamp field unchanged.
RACY_NS = 2_000_000_000


def file_stamp(path: str | os.PathLike) -> list[int]:
    """[size, mtime_ns, ctime_ns, inode, device]: any write, rename-over, copy or ``os.utime`` changes
    it (ctime cannot be set back by user code, and a replaced file has another inode)."""
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


def stamped_sha256(path: str | os.PathLike, record: Mapping | None = None) -> tuple[str, dict, bool]:
    """The sha256 of ``path``, re-using ``record`` (a previous return value's dict) when the file's
    stamp is unchanged and was taken safely after its last change. Returns (sha256, record to keep,
    whether the file was actually read)."""
    stamp = file_stamp(path)
    if (record and record.get("stamp") == stamp and isinstance(record.get("sha256"), str)
            and record.get("hashed_ns", 0) - max(stamp[1], stamp[2]) > RACY_NS):
        return record["sha256"], dict(record), False
    started = time.time_ns()  # before reading: a change during the hash makes the stamp racy, not stale
    digest = file_sha256(path)
    after = file_stamp(path)
    if after != stamp:  # changed while being read: report it as read, but keep no reusable stamp
        return digest, {"sha256": digest, "stamp": None, "hashed_ns": 0}, True
    return digest, {"sha256": digest, "stamp": stamp, "hashed_ns": started}, True


#: Temporary files of atomic writes are named ``<prefix><random hex>-<final name>`` in the folder of
#: the final file, so that whoever holds a folder's lock can find (and delete) those of killed writers.
TEMPORARY_PREFIX = ".tmp-"


def _temporary_beside(path: str) -> str:
    """A fresh temporary name in the folder of ``path`` (a random part: threads of one process may
    write the same file at once)."""
    parent, slash, name = path.rpartition("/")
    return f"{parent}{slash}{TEMPORARY_PREFIX}{uuid.uuid4().hex}-{name}"


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fs=None) -> None:
    """Write ``path`` under a temporary name in the same folder, then rename: readers see the old
    file or the new one, never a torn one. ``fs``: an fsspec file system holding ``path`` (default:
    the local one; on object stores the rename is a copy, still never a torn object)."""
    if fs is not None:
        path = str(path)
        parent = path.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        temporary = _temporary_beside(path)
        with fs.open(temporary, "wb") as handle:
            handle.write(data)
        fs.mv(temporary, path)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(_temporary_beside(path.as_posix()))
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the local file ``source`` to ``target`` the way ``atomic_write_bytes`` writes (without
    reading it into memory)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(_temporary_beside(target.as_posix()))
    try:
        shutil.copyfile(source, temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def read_json(path: str | os.PathLike, fix: str, *, text: str | bytes | None = None):
    """Parse the JSON file ``path`` (or its already read ``text``). A damaged file raises
    ``DamagedFileError`` with one line: the file, where the parser stopped, and ``fix``."""
    try:
        if text is None:
            text = Path(path).read_bytes()
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"{error.msg} at line {error.lineno} column {error.colno}"
    except UnicodeDecodeError as error:
        where = f"not UTF-8 text ({error.reason} at byte {error.start})"
    raise DamagedFileError(f"{path} is damaged (not valid JSON: {where}); {fix}") from None


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file guarding folder ``target``: ``.<name>.lock`` beside it, not inside it, so that
    deleting or replacing the folder never deletes a lock someone holds."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def folder_lock(target: str | os.PathLike, *, timeout: float = -1, say: Callable[[str], None] | None = None,
                what: str = "writing") -> Iterator[Path]:
    """Hold the inter-process lock of folder ``target`` (``lock_path``) for the ``with`` block.

    Re-entrant within a process (the same ``filelock`` instance per path), so ``get`` may hold it
    while ``generate`` rebuilds into the same folder. Another process waits; ``say`` (default:
    stderr) is told once that it is waiting. ``timeout`` seconds (-1: forever), then ``TimeoutError``.
    """
    from filelock import FileLock, Timeout

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        (say or (lambda message: print(f"fieldbench: {message}", file=sys.stderr, flush=True)))(
            f"waiting for another process {what} {target} (it holds {path})")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise TimeoutError(f"another process has held {path} for over {timeout} s; if none is running, "
                               f"delete that file") from None
    try:
        yield path
    finally:
        lock.release()
