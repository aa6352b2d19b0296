"""Publishing a mirror: the files of a standard dataset, laid out as ``get`` downloads them.

``publish(name, to)`` writes the mirror-ready files of a standard dataset into ``to/<name>/...``
(the same relative paths as in the registry), with ``card.json``, the ``README.md`` dataset card
(YAML ``configs`` for the Hugging Face hub) and ``SHA256SUMS`` (``sha256sum -c`` format, every
other file). ``to/<name>/`` is then, as it is, the content of a Hugging Face dataset repository
(``huggingface-cli upload --repo-type dataset``) or of an archive record, and any static file
server over ``to`` is a mirror. With ``flat=True`` every file is written straight into ``to`` under
its archive name (``<name>/a/b`` as ``<name>__a__b``), what a DOI record (Zenodo, figshare,
Dataverse), which holds no folders, must hold for a ``doi:`` mirror. E.g.::

    cd to && python -m http.server 8000        # base URL: http://HOST:8000
    FIELDBENCH_MIRROR=http://HOST:8000 fieldbench datasets get circles2d
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .._io import atomic_copy, atomic_write_text, file_sha256
from ..exceptions import PublishError
from ..pipeline import CARD_NAME, README_NAME, dataset_readme, read_card
from ._fetch import get
from ._mirrors import archive_name
from ._registry import registry_entries
from ._verify import verify

__all__ = ["PublishError", "publish", "CHECKSUMS_NAME"]

#: The checksum file of a published folder, in ``sha256sum`` format (``sha256sum -c SHA256SUMS``).
CHECKSUMS_NAME = "SHA256SUMS"


def publish(name: str, to: str | os.PathLike, *, source: str | os.PathLike | None = None, strict: bool = True,
            flat: bool = False, **get_options) -> list[str]:
    """Write the mirror-ready files of standard dataset ``name`` into ``to/<name>/`` and return their
    registry lines (``"<relative path> sha256:<hex>"``, pooch's registry-file format), and writes
    ``SHA256SUMS`` beside them (the same checksums, paths relative to ``to/<name>``).

    ``source`` is a dataset directory; by default the dataset is obtained with ``get(name,
    **get_options)`` (the cache, a mirror, or a local rebuild). The source must verify, and with
    ``strict`` (default) its Parquet files must be byte-identical to the registry, since downloads
    are checked against the registered sha256s (a rebuild with another pyarrow version is
    equivalent but not identical: publish a downloaded copy instead, or re-register).
    ``to`` is then servable by any static file server, e.g. ``cd to && python -m http.server 8000``
    gives the mirror base URL ``http://HOST:8000``. ``flat`` writes every file (``SHA256SUMS`` too,
    listing the flat names) directly into ``to`` under its archive name, for a DOI record.
    """
    entries = registry_entries(name)  # clear errors for an unknown or unregistered name
    source = Path(get(name, **get_options) if source is None else source)
    report = verify(source, against=entries)
    report.raise_if_failed(f"cannot publish {name!r} from {source}:")
    card = read_card(str(source))
    if report.registry != "identical":
        message = (f"the files of {source} are equivalent to the registered {name!r} but not byte-identical "
                   "(another Parquet writer?), so downloads from this mirror would fail their sha256 checks; "
                   f"publish from a downloaded copy, or re-register it (`fieldbench datasets register {name} "
                   f"{source}`)")
        if strict:
            raise PublishError(message)
        warnings.warn(message + "; publishing anyway (strict=False): the lines returned are this build's",
                      stacklevel=2)
    def place(relative: str) -> Path:  # where the file at registry path <name>/<relative> is written
        return Path(to) / archive_name(f"{name}/{relative}") if flat else Path(to) / name / relative

    def listed(relative: str) -> str:  # its name in SHA256SUMS, relative to the file itself
        return archive_name(f"{name}/{relative}") if flat else relative

    lines, sums = [], []
    for entry in sorted(card.files(), key=lambda e: e.path):
        atomic_copy(source / entry.path, place(entry.path))
        lines.append(f"{name}/{entry.path} sha256:{entry.sha256}")
        sums.append(f"{entry.sha256}  {listed(entry.path)}")
    atomic_copy(source / CARD_NAME, place(CARD_NAME))
    atomic_write_text(place(README_NAME), dataset_readme(card))
    for position, extra in enumerate((CARD_NAME, README_NAME)):
        digest = file_sha256(place(extra))
        lines.insert(position, f"{name}/{extra} sha256:{digest}")
        sums.append(f"{digest}  {listed(extra)}")
    atomic_write_text(place(CHECKSUMS_NAME), "\n".join(sorted(sums, key=lambda s: s.split("  ", 1)[1])) + "\n")
    return lines
