"""Mirrors: the places ``get`` (and ``fieldbench.models.fetch_checkpoint``) download registered files from.

A mirror is a base under which every registered file lives at its registry path (a dataset file
at ``<dataset>/<relative path>``, a checkpoint at its registered path, e.g.
``checkpoints/<name>.eqx``). Three kinds, told apart by how they are written:

``http(s)://HOST/PATH``, ``ftp://HOST/PATH``
    a static file server over a folder written by ``fieldbench datasets publish``: the file
    ``P`` is ``<base>/P``.
``doi:10.NNNN/ID``
    a Zenodo, figshare or Dataverse record, found through pooch's DOI support (pooch asks doi.org
    where the DOI points and the archive's API for each file's download address; this module
    asks once per mirror, not once per file). Archives hold flat file names, so the file ``P``
    is stored as ``archive_name(P)``: its ``/`` replaced by ``__``
    (``circles2d/train/points/part-00000.parquet`` -> ``circles2d__train__points__part-00000.parquet``).
``hf://datasets/ORG/NAME[@REVISION][/FOLDER]``, ``https://huggingface.co/datasets/ORG/NAME[/tree/REVISION][/FOLDER]``
    a Hugging Face dataset repository: the file ``P`` is ``FOLDER/P`` at REVISION (default
    ``main``). Addresses come from ``huggingface_hub.hf_hub_url`` against ``$HF_ENDPOINT`` (read
    at each call; default https://huggingface.co), with the token huggingface_hub finds
    (``HF_TOKEN``, ``hf auth login``), so a private repository works too.

Whatever the kind, the bytes go through pooch into a staging folder and are checked there against
the registered sha256 (``file_fetcher``): a file that fails is deleted by pooch and reported as
``ChecksumError``, one that cannot be fetched as ``MirrorFailure``; the callers move a file into
place only once it passed, and go on to the next mirror after either failure.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._config import hf_endpoint
from ..exceptions import ChecksumError, MirrorWarning

__all__ = ["Mirror", "MirrorFailure", "parse_mirror", "archive_name", "file_fetcher", "try_mirrors",
           "HF_DEFAULT_ENDPOINT"]

_HTTP_SCHEMES = ("http", "https", "ftp")
_HF_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_DOI = re.compile(r"10\.\d{4,9}/\S+")
#: Archives (Zenodo, figshare, Dataverse) keep one flat list of file names per record.
ARCHIVE_SEPARATOR = "__"
EXAMPLES = ("'http://HOST:8000', where HOST serves the folder written by `fieldbench datasets publish`; "
            "'doi:10.5281/zenodo.NNNN'; 'hf://datasets/ORG/NAME'")


class MirrorFailure(Exception):
    """A mirror could not provide a file (unreachable, missing file, unknown record): try the next."""


def reporter(progress) -> Callable[[str], None]:
    """What a fetch reports to: ``progress`` itself if callable, stderr if true, nothing if false."""
    if callable(progress):
        return progress
    if progress:
        return lambda message: print(f"fieldbench: {message}", file=sys.stderr, flush=True)
    return lambda message: None


def archive_name(path: str) -> str:
    """The flat name under which a DOI archive record stores the file of registry path ``path``."""
    return path.replace("/", ARCHIVE_SEPARATOR)


@dataclass(frozen=True)
class Mirror:
    """One parsed mirror. ``text`` is how it is shown in messages; ``kind`` is http, doi or hf;
    ``base`` the base URL (http), the DOI (doi) or ``ORG/NAME`` (hf)."""

    text: str
    kind: str
    base: str
    revision: str = "main"
    folder: str = ""

    def __str__(self) -> str:
        return self.text

    def url(self, path: str) -> str:
        """What pooch fetches for the file of registry path ``path``."""
        if self.kind == "http":
            return f"{self.base}/{path}"
        if self.kind == "doi":
            return f"doi:{self.base}/{archive_name(path)}"
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.base, f"{self.folder}/{path}" if self.folder else path, repo_type="dataset",
                          revision=self.revision, endpoint=hf_endpoint() or HF_DEFAULT_ENDPOINT)

    def downloader(self, timeout: float):
        import pooch

        if self.kind == "doi":
            return _RecordDownloader(self, timeout)
        if self.kind == "hf":
            from huggingface_hub.utils import build_hf_headers

            return pooch.HTTPDownloader(progressbar=False, timeout=timeout,
                                        headers=build_hf_headers(library_name="fieldbench"))
        return pooch.HTTPDownloader(progressbar=False, timeout=timeout)


class _RecordDownloader:
    """pooch's DOI support with the record resolved once: pooch's own ``DOIDownloader`` asks
    doi.org and the archive's API again for every file."""

    def __init__(self, mirror: Mirror, timeout: float):
        self.mirror, self.timeout, self.record = mirror, timeout, None

    def __call__(self, url: str, output_file, pooch_instance) -> None:
        import pooch
        from pooch.downloaders import doi_to_repository

        file_name = url.rpartition("/")[2]
        try:
            if self.record is None:
                self.record = doi_to_repository(self.mirror.base, timeout=self.timeout)
            address = self.record.download_url(file_name)
        except (ValueError, KeyError, TypeError) as error:  # not a record pooch reads, or no such file in it
            raise MirrorFailure(f"the mirror {self.mirror} is unusable or incomplete: {error}") from error
        pooch.HTTPDownloader(progressbar=False, timeout=self.timeout)(address, output_file, pooch_instance)


def _parse_hf(value: str, rest: str, web: bool) -> Mirror | None:
    """``rest``: what follows ``datasets/`` (hf://) or ``/datasets/`` (a web address)."""
    parts = [urllib.parse.unquote(part) for part in rest.split("/") if part]
    if len(parts) < 2:
        return None
    organisation, name, folder = parts[0], parts[1], parts[2:]
    revision = "main"
    if not web and "@" in name:
        name, _, revision = name.partition("@")
    elif web and folder and folder[0] in ("tree", "resolve", "blob"):
        if len(folder) < 2:
            return None
        revision, folder = folder[1], folder[2:]
    if not organisation or not name or not revision:
        return None
    return Mirror(value, "hf", f"{organisation}/{name}", revision, "/".join(folder))


def parse_mirror(value, origin: str) -> Mirror:
    """Parse one mirror as written by the user; ``ValueError`` (naming ``origin``) if it is none of
    the kinds in the module docstring."""
    if not isinstance(value, str):
        raise ValueError(f"{origin} must be a URL string or a list of them; got {value!r}")
    value = value.strip().rstrip("/")
    parts = urllib.parse.urlsplit(value)
    mirror = None
    if value.startswith("doi:"):
        if _DOI.fullmatch(value[4:]):
            mirror = Mirror(value, "doi", value[4:])
    elif value.startswith("hf://"):
        if value[5:].startswith("datasets/"):
            mirror = _parse_hf(value, value[5 + len("datasets/"):], web=False)
    elif parts.scheme in ("http", "https") and parts.hostname in _HF_HOSTS and parts.path.startswith("/datasets/"):
        mirror = _parse_hf(value, parts.path[len("/datasets/"):], web=True)
    elif parts.scheme in _HTTP_SCHEMES and parts.netloc:
        mirror = Mirror(value, "http", value)
    if mirror is None:
        raise ValueError(f"{origin} = {value!r} is not an http(s), ftp, doi: or Hugging Face mirror (e.g. "
                         f"{EXAMPLES})")
    return mirror


def file_fetcher(mirror: Mirror, staging: Path, registry: Mapping[str, str | None], *, store: Path, timeout: float,
                 retries: int, fix: str) -> Callable[[str], Path]:
    """A function that downloads one file of ``registry`` (registry path -> ``"sha256:<hex>"``, or
    None for a file checked by the caller) from ``mirror`` into ``staging`` and returns where it is.

    pooch writes each download to a temporary file in the folder of its final path and renames it
    there only once the checksum matched; the caller then moves it into place (same file system:
    atomic). Raises ``MirrorFailure`` when the file cannot be fetched and ``ChecksumError`` (whose
    message names where the file would have gone, ``store / relative``, and ends with ``fix``) when
    it was fetched but is not the registered file; the bad download is deleted either way.
    """
    import pooch
    import requests

    fetcher = pooch.create(path=staging, base_url=mirror.text, registry=dict(registry), retry_if_failed=retries,
                           urls={path: mirror.url(path) for path in registry}, allow_updates=True)
    downloader = mirror.downloader(timeout)

    def fetch(relative: str) -> Path:
        try:
            return Path(fetcher.fetch(relative, downloader=downloader))
        except requests.exceptions.RequestException as error:
            raise MirrorFailure(f"the mirror {mirror} is unreachable or incomplete: could not download "
                                f"{relative} ({type(error).__name__}: {error})") from error
        except ValueError as error:  # pooch: sha256 mismatch (the download was deleted)
            raise ChecksumError(f"sha256 checksum mismatch for {relative} downloaded from {mirror}: {error} The "
                                f"bad file was discarded (nothing was stored under {store / relative}). "
                                f"{fix}") from error

    return fetch


def try_mirrors(mirrors: Sequence[Mirror], attempt: Callable[[Mirror], object], say) -> tuple[bool, list]:
    """Run ``attempt(mirror)`` on each mirror in order until one succeeds: (True, failures before it),
    or (False, every failure) where a failure is (mirror, ``MirrorFailure`` or ``ChecksumError``).
    Each failure but the last is warned about at once (``MirrorWarning``, naming the mirror, why, and
    the next one); the caller reports the last, which decides what happens next."""
    failures = []
    for number, mirror in enumerate(mirrors):
        try:
            attempt(mirror)
        except (MirrorFailure, ChecksumError) as error:
            failures.append((mirror, error))
            if number + 1 < len(mirrors):
                message = f"{error}; trying the next mirror, {mirrors[number + 1]}"
                warnings.warn(message, MirrorWarning, stacklevel=3)
                say(message)
            continue
        return True, failures
    return False, failures
