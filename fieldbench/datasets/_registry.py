"""The standard datasets: their specs and the checksum registry that every copy is verified against.

Where things live
-----------------
The *registry directory* is ``$FIELDBENCH_REGISTRY`` if set, else the ``datasets/`` folder at the
root of the repository (found relative to this file; fieldbench is installed editable). It holds

* one spec per standard dataset, ``<name>.json`` (``DatasetSpec.to_dict`` format), and
* ``registry.json``, the checksums of the reference build of each dataset.

``registry.json`` format (``"format": "fieldbench-registry"``, ``"registry_version": 2``;
written with sorted keys and a one-space indent, so diffs stay small and reviewable)::

    {
     "datasets": {
      "<name>": {
       "card": "<name>/card.json",              # served by mirrors; checked by content, not bytes
       "content_sha256": "...",                 # the card's content_sha256 (hash of all file hashes)
       "fieldbench_version": "...",             # provenance of the reference build
       "fingerprint_version": 2,                # pipeline.FINGERPRINT_VERSION of the shard fingerprints
       "schema_version": 1,
       "spec_sha256": "...",                    # sha256 of the spec JSON (sorted keys): staleness check
       "files": {                               # every data file, keyed by its path on a mirror
        "<name>/<split>/points/part-00000.parquet": {"bytes": 1464932, "rows": 49152,
                                                      "sha256": "..."},
        ...
       },
       "splits": {
        "<split>": {
         "content_sha256": "...", "samples": 48, "points_per_sample": 1024,
         "shards": [{"index": 0, "samples": 48, "points": 49152,
                     "files": {"sources": "<name>/<split>/sources/part-00000.parquet",
                               "points": "<name>/<split>/points/part-00000.parquet"},
                     "fingerprint": {"sources_sha256": "...", "points_sha256": "...",
                                     "values_sha256": {"phi": "...", "h_x": "...", ...}}}, ...]
        }, ...
       }
      }, ...
     },
     "format": "fieldbench-registry",
     "registry_version": 1
    }

The card itself is not pinned byte for byte (it records when and how it was made); a downloaded card
is accepted when its spec, its file list and its ``content_sha256`` agree with the registry. The
fingerprints (``pipeline.fingerprint``) hash the exact column values of each shard; they are
recomputed from the Parquet files when a dataset is registered, never copied from its card.

Version 1 registries held per-column sums and sums of squares instead of ``values_sha256`` (a
shuffle of the values across points passed them). Such a file is still read, but using one of its
entries raises ``StaleRegistryError`` naming the ``update`` command below, which re-registers a
dataset from a copy (e.g. the cached one) without regenerating it.

Updating the registry
---------------------
After a deliberate change to a spec or to the generator, regenerate and re-register::

    python -m fieldbench.datasets._registry build circles2d-mini --workdir /tmp/fieldbench-registry-build
    python -m fieldbench.datasets._registry update circles2d-mini /path/to/generated/circles2d-mini

(``build`` with no names does all standard datasets; it regenerates from scratch in the workdir.)
Then commit ``datasets/registry.json``; mirrors must be republished (see ``fieldbench.datasets._verify.publish``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .._config import REGISTRY_ENV, registry_folder
from .._io import atomic_write_text, read_json
from ..exceptions import StaleRegistryError, UnknownDatasetError
from ..pipeline import CARD_NAME, FINGERPRINT_VERSION, DatasetSpec, fingerprint, read_card

__all__ = [
    "REGISTRY_FILE", "REGISTRY_ENV", "UnknownDatasetError", "StaleRegistryError", "registry_dir",
    "list_datasets", "dataset_spec", "spec_sha256", "load_registry", "registry_entries", "update_registry",
    "entries_from_card", "build_registry",
]

REGISTRY_FILE = "registry.json"
REGISTRY_FORMAT = "fieldbench-registry"
REGISTRY_VERSION = 2
#: Registry versions this fieldbench reads (1: entries must be re-registered before use).
READABLE_VERSIONS = (1, 2)


def registry_dir() -> Path:
    """The directory holding the standard specs and ``registry.json``."""
    configured = registry_folder()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{REGISTRY_ENV}={configured!r} is not a directory; point it at a folder "
                                    f"holding the dataset specs (<name>.json) and {REGISTRY_FILE}")
        return path
    path = Path(__file__).resolve().parents[2] / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"cannot find the dataset registry: expected {path} (the repository's datasets/ folder, present "
            f"when fieldbench is installed editable from a checkout); set {REGISTRY_ENV} to that folder")
    return path


def list_datasets() -> list[str]:
    """Names of the standard datasets (one spec file ``<name>.json`` each), sorted."""
    return sorted(p.stem for p in registry_dir().glob("*.json") if p.name != REGISTRY_FILE)


def _unknown(name: str) -> UnknownDatasetError:
    known = list_datasets()
    return UnknownDatasetError(f"unknown dataset {name!r}; the standard datasets are: "
                               f"{', '.join(known) or '(none)'} (specs in {registry_dir()})")


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a standard dataset; ``UnknownDatasetError`` (KeyError/ValueError) names the known ones."""
    if not isinstance(name, str) or not name or name == Path(REGISTRY_FILE).stem or any(c in name for c in "/\\"):
        raise _unknown(str(name))
    path = registry_dir() / f"{name}.json"
    if not path.is_file():
        raise _unknown(name)
    spec = DatasetSpec.from_file(path)
    if spec.name != name:
        raise ValueError(f"{path} holds a spec named {spec.name!r}; the file must be named {spec.name}.json")
    return spec


def spec_sha256(spec: DatasetSpec) -> str:
    """Digest of a spec (its JSON with sorted keys): how the registry notices an edited spec."""
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


def _registry_path() -> Path:
    return registry_dir() / REGISTRY_FILE


def load_registry() -> dict:
    """The whole ``registry.json`` (an empty registry if the file does not exist yet)."""
    path = _registry_path()
    if not path.exists():
        return {"format": REGISTRY_FORMAT, "registry_version": REGISTRY_VERSION, "datasets": {}}
    data = read_json(path, "restore it from version control (`git checkout -- datasets/registry.json` in the "
                           "repository)")
    if (not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT
            or data.get("registry_version") not in READABLE_VERSIONS):
        found = (data.get("format"), data.get("registry_version")) if isinstance(data, dict) else (None, None)
        raise ValueError(f"{path} is not a fieldbench registry this version reads (format={found[0]!r}, "
                         f"registry_version={found[1]!r}; reads {list(READABLE_VERSIONS)}); upgrade fieldbench")
    return data


def registry_entries(name: str, *, check_spec: bool = True) -> dict:
    """The registry entry of a standard dataset (format in this module's docstring).

    Raises ``UnknownDatasetError`` for an unknown name and ``StaleRegistryError`` when the dataset
    has no entry yet or its spec file changed since the entry was written.
    """
    spec = dataset_spec(name)
    entry = load_registry()["datasets"].get(name)
    fix = (f"generate it (`python -m fieldbench.datasets._registry build {name}`) to refresh "
           f"{_registry_path()}")
    if entry is None:
        raise StaleRegistryError(f"no checksums registered for dataset {name!r}; {fix}")
    if check_spec and entry.get("spec_sha256") != spec_sha256(spec):
        raise StaleRegistryError(f"the registry's checksums for {name!r} were made from another version of its "
                                 f"spec ({registry_dir() / (name + '.json')} changed since); {fix}")
    if entry.get("fingerprint_version") != FINGERPRINT_VERSION:
        raise StaleRegistryError(
            f"the registry entry of {name!r} uses fingerprint version {entry.get('fingerprint_version', 1)} (column "
            f"sums, which miss values moved between points), this fieldbench checks version {FINGERPRINT_VERSION}; "
            f"re-register it from a copy that matched the old entry: `python -m fieldbench.datasets._registry "
            f"update {name} DATASET_DIR` (the cached copy is {_cached_copy(name)}), or `... build {name}`")
    return entry


def _cached_copy(name: str) -> str:
    from ._fetch import dataset_path  # late: _fetch imports this module

    return str(dataset_path(name))


def _mirror_path(name: str, relative: str) -> str:
    return f"{name}/{relative}"


def entries_from_card(name: str, card: Mapping, fingerprints: Mapping | None = None) -> dict:
    """A registry entry from a generated dataset's card (no I/O). ``fingerprints`` maps (split,
    shard index) to the shard's fingerprint computed from its files (default: the card's own, which
    must then be of the current ``FINGERPRINT_VERSION``)."""
    spec = DatasetSpec.from_dict(card["spec"])
    files, splits = {}, {}
    for split_name in sorted(card["splits"]):
        split = card["splits"][split_name]
        shards = []
        for shard in sorted(split["shards"], key=lambda s: s["index"]):
            for kind in ("sources", "points"):
                entry = shard["files"][kind]
                files[_mirror_path(name, entry["path"])] = {"sha256": entry["sha256"], "bytes": entry["bytes"],
                                                            "rows": entry["rows"]}
            shards.append({"index": shard["index"], "samples": shard["samples"], "points": shard["points"],
                           "files": {kind: _mirror_path(name, shard["files"][kind]["path"])
                                     for kind in ("sources", "points")},
                           "fingerprint": (fingerprints[(split_name, shard["index"])] if fingerprints is not None
                                           else shard["fingerprint"])})
        splits[split_name] = {"content_sha256": split["content_sha256"], "samples": split["samples"],
                              "points_per_sample": split["points_per_sample"], "shards": shards}
    return {"card": _mirror_path(name, CARD_NAME), "content_sha256": card["content_sha256"],
            "schema_version": card["schema_version"], "fieldbench_version": card.get("fieldbench_version"),
            "fingerprint_version": FINGERPRINT_VERSION, "spec_sha256": spec_sha256(spec), "files": files,
            "splits": splits}


def _dump(data: Mapping) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _write_registry(data: Mapping) -> Path:
    path = _registry_path()
    atomic_write_text(path, _dump(data))
    return path


def _lock():
    from filelock import FileLock

    digest = hashlib.sha256(str(_registry_path().resolve()).encode()).hexdigest()[:16]
    return FileLock(os.path.join(tempfile.gettempdir(), f"fieldbench-registry-{digest}.lock"))


def update_registry(name: str, dataset_dir: str | os.PathLike) -> dict:
    """(Re)write the registry entry of standard dataset ``name`` from the dataset at ``dataset_dir``.

    The dataset must be complete, self-consistent (every file matches its card) and generated
    from the current spec ``<registry dir>/<name>.json``. Returns the new entry.
    """
    from ._verify import verify  # late: _verify imports this module

    spec = dataset_spec(name)
    card = read_card(str(dataset_dir))
    if card.get("spec") != spec.to_dict():
        raise ValueError(f"{dataset_dir} was not generated from the current spec of {name!r} "
                         f"({registry_dir() / (name + '.json')}); regenerate it into an empty folder first")
    missing = [s for s in spec.splits if s not in card["splits"]]
    if missing:
        raise ValueError(f"{dataset_dir} lacks split(s) {missing}; generate all splits before registering")
    report = verify(dataset_dir, against=False)
    if not report.ok:
        raise ValueError(f"refusing to register an inconsistent dataset:\n{report}")
    # Fingerprints from the files themselves (verified above against the card's sha256s), not from
    # the card: a card written by an older fieldbench holds another kind of fingerprint.
    fingerprints = {(split_name, shard["index"]): _file_fingerprint(Path(dataset_dir), shard)
                    for split_name, split in card["splits"].items() for shard in split["shards"]}
    entry = entries_from_card(name, card, fingerprints)
    with _lock():
        data = load_registry()
        data["registry_version"] = REGISTRY_VERSION  # a version-1 file keeps its other entries, marked stale
        data["datasets"][name] = entry
        data["datasets"] = dict(sorted(data["datasets"].items()))
        _write_registry(data)
    return entry


def _file_fingerprint(root: Path, shard: Mapping) -> dict:
    import pyarrow.parquet as pq

    return fingerprint(pq.read_table(root / shard["files"]["sources"]["path"]),
                       pq.read_table(root / shard["files"]["points"]["path"]))


def build_registry(names: Iterable[str] | None = None, workdir: str | os.PathLike = "/tmp/fieldbench-registry-build",
                   *, fresh: bool = True, **generate_options) -> dict[str, dict]:
    """Generate standard datasets under ``workdir/<name>`` and register them.

    ``fresh`` (default) deletes ``workdir/<name>`` first: ``generate`` resumes shards of the same
    spec, which would register data made by an older version of the generator.
    """
    from ..pipeline import generate

    out = {}
    for name in (list(names) if names else list_datasets()):
        spec = dataset_spec(name)
        target = Path(workdir) / name
        if fresh and target.exists():
            shutil.rmtree(target)
        generate(spec, str(target), **generate_options)
        out[name] = update_registry(name, target)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fieldbench.datasets._registry",
                                     description="Inspect and update the standard datasets' checksum registry.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the standard datasets and whether they are registered")
    update = commands.add_parser("update", help="register a generated dataset's checksums")
    update.add_argument("name")
    update.add_argument("dataset_dir")
    build = commands.add_parser("build", help="generate standard datasets and register them")
    build.add_argument("names", nargs="*")
    build.add_argument("--workdir", default="/tmp/fieldbench-registry-build",
                       help="where to generate (WORKDIR/NAME is deleted first)")
    args = parser.parse_args(argv)
    if args.command == "list":
        registered = load_registry()["datasets"]
        for name in list_datasets():
            try:
                registry_entries(name)
                state = "registered"
            except StaleRegistryError:
                state = "STALE" if name in registered else "not registered"
            print(f"{name}\t{state}")
    elif args.command == "update":
        previous = load_registry()["datasets"].get(args.name, {}).get("content_sha256")
        entry = update_registry(args.name, args.dataset_dir)
        change = ("new entry" if previous is None else "same files as before" if previous == entry["content_sha256"]
                  else f"CONTENT CHANGED (was {previous})")
        print(f"registered {args.name}: {len(entry['files'])} files, content {entry['content_sha256']} ({change}) "
              f"in {_registry_path()}")
    else:
        for name, entry in build_registry(args.names, args.workdir).items():
            print(f"registered {name}: {len(entry['files'])} files, content {entry['content_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
