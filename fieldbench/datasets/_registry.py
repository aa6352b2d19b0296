"""Reading the standard datasets' specs and the checksum registry that every copy is verified against.

This module only reads; ``_register`` writes the registry (``fieldbench datasets register`` and
``build``), ``_publish`` writes mirrors. The fields of ``registry.json`` are described in
``docs/data_format.md``.

Where things live
-----------------
The *registry directory* is ``$FIELDBENCH_REGISTRY`` if set, else the package data folder
``fieldbench/datasets/standard/`` (found with ``importlib.resources``: it ships in the wheel, and
in an editable install it is the checkout's own folder, so ``register`` and ``build`` rewrite the
committed files in place). It holds

* one spec per standard dataset, ``<name>.json`` (``DatasetSpec.to_dict`` format), and
* ``registry.json``, the checksums of the reference build of each dataset: per dataset the card's
  ``content_sha256``, the ``spec_sha256`` (``DatasetSpec.sha256``: the staleness check), every data
  file's sha256, size and rows, and per shard the fingerprint (``pipeline.fingerprint``) that
  hashes its exact column values. The card itself is not pinned byte for byte (it records when and
  how it was made); a downloaded card is accepted when its spec, its file list and its
  ``content_sha256`` agree with the registry.

Version 1 registries held per-column sums and sums of squares instead of ``values_sha256`` (a
shuffle of the values across points passed them). Such a file is still read, but using one of its
entries raises ``StaleRegistryError`` naming ``fieldbench datasets register``, which re-registers a
dataset from a copy (e.g. the cached one) without regenerating it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .._config import REGISTRY_ENV, registry_folder
from .._io import read_json
from ..exceptions import MissingPackageDataError, StaleRegistryError, UnknownDatasetError
from ..pipeline import CARD_NAME, FINGERPRINT_VERSION, SCHEMA_VERSION, DatasetSpec
from ._settings import dataset_path

__all__ = [
    "REGISTRY_FILE", "REGISTRY_ENV", "REGISTRY_FORMAT", "REGISTRY_VERSION", "UnknownDatasetError",
    "StaleRegistryError", "registry_dir", "registry_path", "list_datasets", "dataset_listing", "dataset_spec",
    "load_registry", "registry_entries",
]

REGISTRY_FILE = "registry.json"
REGISTRY_FORMAT = "fieldbench-registry"
REGISTRY_VERSION = 2
#: Registry versions this fieldbench reads (1: entries must be re-registered before use).
READABLE_VERSIONS = (1, 2)
#: The package data folder of the standard specs and the registry, inside ``fieldbench.datasets``.
STANDARD_FOLDER = "standard"


def registry_dir() -> Path:
    """The directory holding the standard specs and ``registry.json``."""
    configured = registry_folder()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{REGISTRY_ENV}={configured!r} is not a directory; point it at a folder "
                                    f"holding the dataset specs (<name>.json) and {REGISTRY_FILE}")
        return path
    shipped = resources.files(__package__).joinpath(STANDARD_FOLDER)
    # A real folder, not any Traversable: the registry is globbed and (in a checkout) rewritten in
    # place; a package imported from a zip archive has none.
    if not isinstance(shipped, Path) or not shipped.is_dir():
        raise MissingPackageDataError(
            f"cannot find the dataset registry: the package data folder fieldbench/datasets/{STANDARD_FOLDER} is "
            f"missing from this installation ({shipped}); reinstall fieldbench, or set {REGISTRY_ENV} to a folder "
            f"holding the dataset specs (<name>.json) and {REGISTRY_FILE}")
    return shipped


def list_datasets() -> list[str]:
    """Names of the standard datasets (one spec file ``<name>.json`` each), sorted."""
    return sorted(p.stem for p in registry_dir().glob("*.json") if p.name != REGISTRY_FILE)


def dataset_listing() -> list[dict]:
    """Every standard dataset: its splits (samples, points per sample, dimension), where ``get``
    keeps it and whether a copy is there (a card; ``get`` verifies it before use)."""
    listing = []
    for name in list_datasets():
        spec, path = dataset_spec(name), dataset_path(name)
        listing.append({"name": name, "splits": {split: {"samples": s.samples, "points": s.points, "dim": s.dim}
                                                 for split, s in spec.splits.items()},
                        "cached": (path / CARD_NAME).is_file(), "path": str(path)})
    return listing


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


def registry_path() -> Path:
    """The registry file, ``<registry dir>/registry.json``."""
    return registry_dir() / REGISTRY_FILE


def load_registry() -> dict:
    """The whole ``registry.json`` (an empty registry if the file does not exist yet)."""
    path = registry_path()
    if not path.exists():
        return {"format": REGISTRY_FORMAT, "registry_version": REGISTRY_VERSION, "datasets": {}}
    data = read_json(path, "restore it from version control (`git checkout -- "
                           f"fieldbench/datasets/{STANDARD_FOLDER}/{REGISTRY_FILE}` in the repository), or "
                           "reinstall fieldbench")
    if (not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT
            or data.get("registry_version") not in READABLE_VERSIONS):
        found = (data.get("format"), data.get("registry_version")) if isinstance(data, dict) else (None, None)
        raise ValueError(f"{path} is not a fieldbench registry this version reads (format={found[0]!r}, "
                         f"registry_version={found[1]!r}; reads {list(READABLE_VERSIONS)}); upgrade fieldbench")
    return data


def registry_entries(name: str, *, check_spec: bool = True) -> dict:
    """The registry entry of a standard dataset (fields in ``docs/data_format.md``).

    Raises ``UnknownDatasetError`` for an unknown name and ``StaleRegistryError`` when the dataset
    has no entry yet or its spec file changed since the entry was written.
    """
    spec = dataset_spec(name)
    entry = load_registry()["datasets"].get(name)
    fix = f"generate and register it (`fieldbench datasets build {name}`) to refresh {registry_path()}"
    if entry is None:
        raise StaleRegistryError(f"no checksums registered for dataset {name!r}; {fix}")
    if check_spec and entry.get("spec_sha256") != spec.sha256:
        raise StaleRegistryError(f"the registry's checksums for {name!r} were made from another version of its "
                                 f"spec ({registry_dir() / (name + '.json')} changed since); {fix}")
    if entry.get("schema_version") != SCHEMA_VERSION:
        raise StaleRegistryError(
            f"the registry entry of {name!r} describes the folder layout of version {entry.get('schema_version')!r}, "
            f"this fieldbench reads version {SCHEMA_VERSION}; re-register it from a migrated copy: `fieldbench "
            f"datasets migrate DIR` then `fieldbench datasets register {name} DIR`")
    if entry.get("fingerprint_version") != FINGERPRINT_VERSION:
        raise StaleRegistryError(
            f"the registry entry of {name!r} uses fingerprint version {entry.get('fingerprint_version', 1)} (column "
            f"sums, which miss values moved between points), this fieldbench checks version {FINGERPRINT_VERSION}; "
            f"re-register it from a copy that matched the old entry: `fieldbench datasets register {name} "
            f"DATASET_DIR` (the cached copy is {dataset_path(name)}), or `fieldbench datasets build {name}`")
    return entry
