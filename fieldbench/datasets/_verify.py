"""Checking a dataset directory (against its card and the registry) and publishing mirrors.

``verify(path)`` re-hashes every file listed in the card, checks the card against itself and
against the shard manifests, and, for a standard dataset, compares it with the registry: exactly
(same file sha256) or, for a rebuild whose Parquet bytes differ (another pyarrow writes other
metadata), by content fingerprint: the sources and the point coordinates must be bit-identical,
the values (float32) must reproduce the registered sums to float32 rounding (see ``values_close``).

``publish(name, to)`` writes the mirror-ready files of a standard dataset into ``to/<name>/...``
(the same relative paths as in the registry). Any static file server is then a mirror; e.g.::

    cd to && python -m http.server 8000        # base URL: http://HOST:8000
    FIELDBENCH_MIRROR=http://HOST:8000 python -c "import fieldbench.datasets._fetch as f; f.get('circles2d')"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..pipeline import CARD_NAME, SCHEMA_VERSION, DatasetSpec, fingerprint, read_card, shard_paths
from ._registry import StaleRegistryError, dataset_spec, list_datasets, registry_entries, spec_sha256
from .._io import file_sha256

__all__ = ["VerificationReport", "DatasetVerificationError", "PublishError", "verify", "publish",
           "values_close", "file_sha256", "VALUE_ULPS"]

#: Float32 eps (2**-23: the spacing of float32 numbers in [1, 2)).
FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: A rebuilt float32 value may differ from the reference by this many float32 eps, relatively.
#: Values are computed in float64 and rounded once; any two correct float64 evaluations round to
#: the same float32 or to neighbours (1 eps). 4 leaves room for float64 differences between
#: platforms near cancellations, and is still ~1e5 times tighter than any real change in the data.
VALUE_ULPS = 4.0


class DatasetVerificationError(ValueError):
    """A dataset failed verification; ``.report`` holds the details."""

    def __init__(self, report: "VerificationReport", headline: str | None = None):
        self.report = report
        super().__init__((headline + "\n" if headline else "") + str(report))


class PublishError(RuntimeError):
    """The dataset cannot serve as a mirror for the registry."""


@dataclasses.dataclass
class VerificationReport:
    """What ``verify`` found. ``ok`` is True when there are no problems (notes are informational)."""

    path: Path
    name: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    files_checked: int = 0
    #: Comparison with the registry: "identical" (same bytes), "equivalent" (same content, other
    #: Parquet bytes), "different", or None (not compared).
    registry: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_failed(self, headline: str | None = None) -> "VerificationReport":
        if self.problems:
            raise DatasetVerificationError(self, headline)
        return self

    def __str__(self) -> str:
        state = "OK" if self.ok else f"FAILED ({len(self.problems)} problem(s))"
        registry = {None: "not compared with the registry", "identical": "identical to the registry",
                    "equivalent": "equivalent to the registry (same content, other Parquet bytes)",
                    "different": "DIFFERENT from the registry"}[self.registry]
        lines = [f"dataset {self.name or '?'} at {self.path}: {state}; {self.files_checked} file(s) checked; "
                 f"{registry}"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def values_close(value: tuple[float, float], reference: tuple[float, float], rows: int,
                 ulps: float = VALUE_ULPS) -> tuple[bool, str]:
    """Whether a rebuilt column's [sum, sum of squares] reproduces the reference's to float32 rounding.

    If every one of the n values differs by at most tau*|v_i| (tau = ulps * float32 eps), then
    |sum - ref| <= tau * sum |v_i| <= tau * sqrt(n * sum v_i^2) (Cauchy-Schwarz), and
    |sumsq - ref| <= (2 tau + tau^2) * sum v_i^2. These are worst-case bounds (all errors of one
    sign); the float64 summation itself adds ~1e-16 relative, covered by a tiny absolute floor.
    """
    tau = ulps * FLOAT32_EPS
    (total, squares), (ref_total, ref_squares) = value, reference
    scale = max(float(ref_squares), 0.0)
    floor = 1e-300
    tol_total = tau * math.sqrt(rows * scale) * 1.001 + floor
    tol_squares = (2 * tau + tau * tau) * scale * 1.001 + floor
    bad = []
    if not abs(total - ref_total) <= tol_total:
        bad.append(f"sum {total!r} vs registered {ref_total!r} (allowed +-{tol_total:.3g})")
    if not abs(squares - ref_squares) <= tol_squares:
        bad.append(f"sum of squares {squares!r} vs registered {ref_squares!r} (allowed +-{tol_squares:.3g})")
    return (not bad), "; ".join(bad)


def _shard_key(shard: Mapping) -> dict:
    return {k: v for k, v in shard.items() if k != "timings"}


def _resolve_against(against, report: VerificationReport):
    if against is False:
        return None
    if isinstance(against, Mapping):
        return against
    if isinstance(against, str):
        return registry_entries(against, check_spec=False)  # clear errors for unknown/unregistered names
    if against is not None:
        raise TypeError(f"against must be None, False, a dataset name or a registry entry; got {against!r}")
    if report.name not in list_datasets():
        report.notes.append(f"{report.name!r} is not a standard dataset: not compared with the registry")
        return None
    try:
        return registry_entries(report.name, check_spec=False)
    except StaleRegistryError as error:
        report.notes.append(f"not compared with the registry: {error}")
        return None


def verify(path: str | os.PathLike, *, against=None, hashes: bool = True) -> VerificationReport:
    """Check the dataset directory ``path``; never raises for a bad dataset, returns a report.

    Args:
      path: a dataset directory (``card.json`` at its root).
      against: None: the registry entry of the card's dataset name when it is a standard
        dataset; a standard dataset's name; a registry entry (mapping); False: no registry check.
      hashes: re-hash every file (default). False checks sizes only (fast, catches truncation).

    Use ``report.ok`` / ``report.raise_if_failed()``; ``str(report)`` lists what is wrong.
    """
    root = Path(path)
    report = VerificationReport(path=root)
    try:
        card = read_card(str(root))
    except FileNotFoundError as error:
        report.problems.append(str(error))
        return report
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        report.problems.append(f"{root / CARD_NAME} is not valid JSON ({error}); the card is damaged: "
                               "fetch or generate the dataset again")
        return report
    if card.get("format") != "fieldbench-dataset":
        report.problems.append(f"{root / CARD_NAME} is not a fieldbench dataset card (format={card.get('format')!r})")
        return report
    if card.get("schema_version") != SCHEMA_VERSION:
        report.problems.append(f"schema version {card.get('schema_version')!r}, this fieldbench reads "
                               f"{SCHEMA_VERSION}: use a matching fieldbench version")
    try:
        spec = DatasetSpec.from_dict(card["spec"])
    except (KeyError, TypeError, ValueError) as error:
        report.problems.append(f"the card's spec is invalid: {error}")
        return report
    report.name = spec.name

    actual_sha: dict[str, str | None] = {}  # relative path -> sha256 of the file on disk (None: unreadable)
    split_digests = {}
    for split_name, split in card.get("splits", {}).items():
        if split_name not in spec.splits:
            report.problems.append(f"split {split_name!r} is in the card but not in its spec")
            continue
        split_spec = spec.splits[split_name]
        shards = sorted(split.get("shards", []), key=lambda s: s.get("index", -1))
        indices = [s.get("index") for s in shards]
        if indices != list(range(split_spec.shards)):
            report.problems.append(f"split {split_name!r}: the card lists shards {indices}, its spec has "
                                   f"{split_spec.shards} (0..{split_spec.shards - 1})")
        for shard in shards:
            expected = shard_paths(split_name, shard.get("index", -1))
            for kind in ("sources", "points"):
                entry = shard.get("files", {}).get(kind)
                if not entry or entry.get("path") != expected[kind]:
                    report.problems.append(f"split {split_name!r} shard {shard.get('index')}: the card's {kind} "
                                           f"entry should name {expected[kind]}; got {entry and entry.get('path')!r}")
                    continue
                file = root / entry["path"]
                report.files_checked += 1
                if not file.is_file():
                    report.problems.append(f"missing file {entry['path']} (listed in the card)")
                    actual_sha[entry["path"]] = None
                    continue
                size = file.stat().st_size
                if size != entry["bytes"]:
                    report.problems.append(f"{entry['path']}: {size} bytes, the card says {entry['bytes']} "
                                           "(truncated or replaced file)")
                if hashes:
                    digest = file_sha256(file)
                    actual_sha[entry["path"]] = digest
                    if digest != entry["sha256"]:
                        report.problems.append(f"{entry['path']}: sha256 checksum mismatch: the file hashes to "
                                               f"{digest}, the card says {entry['sha256']} (corrupted or "
                                               "tampered file: fetch or regenerate the dataset)")
                elif size == entry["bytes"]:
                    actual_sha[entry["path"]] = entry["sha256"]  # trusted (hashes=False)
            manifest_path = root / expected["manifest"]
            if manifest_path.is_file():
                try:
                    manifest = json.loads(manifest_path.read_text())
                except (json.JSONDecodeError, UnicodeDecodeError):
                    report.problems.append(f"{expected['manifest']} is not valid JSON")
                else:
                    if _shard_key(manifest) != _shard_key(shard):
                        report.problems.append(f"{expected['manifest']} disagrees with the card about shard "
                                               f"{shard.get('index')} of split {split_name!r}")
            else:
                report.notes.append(f"no manifest {expected['manifest']} (fine for a download; generate() "
                                    "would redo this shard)")
        digest = hashlib.sha256("".join(f["sha256"] for s in shards for f in s.get("files", {}).values())
                                .encode()).hexdigest()
        split_digests[split_name] = digest
        if digest != split.get("content_sha256"):
            report.problems.append(f"split {split_name!r}: content_sha256 in the card does not match its file list")
    overall = hashlib.sha256("".join(split_digests[s] for s in sorted(split_digests)).encode()).hexdigest()
    if overall != card.get("content_sha256"):
        report.problems.append("the card's content_sha256 does not match its splits (edited card?)")
    listed = {f["path"] for split in card.get("splits", {}).values() for shard in split.get("shards", [])
              for f in shard.get("files", {}).values()}
    for split_name in card.get("splits", {}):
        for kind in ("sources", "points"):
            for file in sorted((root / split_name / kind).glob("*.parquet")):
                if f"{split_name}/{kind}/{file.name}" not in listed:
                    report.notes.append(f"unlisted file {split_name}/{kind}/{file.name} (not in the card; ignored)")
    missing_splits = [s for s in spec.splits if s not in card.get("splits", {})]
    if missing_splits:
        report.notes.append(f"split(s) {missing_splits} of the spec were not generated")

    entries = _resolve_against(against, report)
    if entries is not None:
        _compare_with_registry(root, card, spec, entries, actual_sha, report)
    return report


def _compare_with_registry(root: Path, card: Mapping, spec: DatasetSpec, entries: Mapping,
                           actual_sha: Mapping, report: VerificationReport) -> None:
    import pyarrow.parquet as pq

    before = len(report.problems)
    exact = True
    if spec_sha256(spec) != entries.get("spec_sha256"):
        report.problems.append(f"the dataset's spec differs from the registered spec of {spec.name!r}")
        report.registry = "different"
        return
    files = entries["files"]
    name_prefix = entries["card"].rsplit("/", 1)[0] + "/"
    for split_name, registered in entries["splits"].items():
        split = card.get("splits", {}).get(split_name)
        if split is None:
            report.problems.append(f"split {split_name!r} (registered) is missing")
            continue
        shards = {s.get("index"): s for s in split.get("shards", [])}
        for reference in registered["shards"]:
            index = reference["index"]
            shard = shards.get(index)
            where = f"split {split_name!r} shard {index}"
            if shard is None:
                report.problems.append(f"{where} (registered) is missing")
                continue
            relative = {kind: path[len(name_prefix):] for kind, path in reference["files"].items()}
            same = all(actual_sha.get(relative[kind]) == files[path]["sha256"]
                       for kind, path in reference["files"].items())
            if same:
                continue
            exact = False
            if any(actual_sha.get(relative[kind]) is None for kind in relative):
                report.problems.append(f"{where}: cannot compare with the registry (file missing)")
                continue
            try:
                found = fingerprint(pq.read_table(root / relative["sources"]), pq.read_table(root / relative["points"]))
            except Exception as error:  # unreadable Parquet: report, don't crash
                report.problems.append(f"{where}: cannot read its Parquet files ({type(error).__name__}: {error})")
                continue
            expected = reference["fingerprint"]
            for key, what in (("sources_sha256", "sources"), ("points_sha256", "point coordinates")):
                if found[key] != expected[key]:
                    report.problems.append(f"{where}: {what} differ from the registry ({key} {found[key]} != "
                                           f"registered {expected[key]}): not the standard dataset")
            if set(found["values"]) != set(expected["values"]):
                report.problems.append(f"{where}: value columns {sorted(found['values'])} != registered "
                                       f"{sorted(expected['values'])}")
                continue
            for column, reference_sums in expected["values"].items():
                close, detail = values_close(found["values"][column], reference_sums, reference["points"])
                if not close:
                    report.problems.append(f"{where}: column {column!r} differs from the registry beyond float32 "
                                           f"rounding: {detail}")
    if len(report.problems) > before:
        report.registry = "different"
    else:
        report.registry = "identical" if exact else "equivalent"


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".tmp-{uuid.uuid4().hex}-{target.name}"
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def publish(name: str, to: str | os.PathLike, *, source: str | os.PathLike | None = None, strict: bool = True,
            **get_options) -> list[str]:
    """Write the mirror-ready files of standard dataset ``name`` into ``to/<name>/`` and return their
    registry lines (``"<relative path> sha256:<hex>"``, pooch's registry-file format).

    ``source`` is a dataset directory; by default the dataset is obtained with ``get(name,
    **get_options)`` (the cache, a mirror, or a local rebuild). The source must verify, and with
    ``strict`` (default) its Parquet files must be byte-identical to the registry, since downloads
    are checked against the registered sha256s (a rebuild with another pyarrow version is
    equivalent but not identical: publish a downloaded copy instead, or re-register).
    ``to`` is then servable by any static file server, e.g. ``cd to && python -m http.server 8000``
    gives the mirror base URL ``http://HOST:8000``.
    """
    dataset_spec(name)  # clear error for an unknown name
    entries = registry_entries(name)
    if source is None:
        from ._fetch import get

        source = get(name, **get_options)
    source = Path(source)
    report = verify(source, against=entries)
    report.raise_if_failed(f"cannot publish {name!r} from {source}:")
    card = read_card(str(source))
    if report.registry != "identical":
        message = (f"the files of {source} are equivalent to the registered {name!r} but not byte-identical "
                   "(another Parquet writer?), so downloads from this mirror would fail their sha256 checks; "
                   "publish from a downloaded copy, or re-register with update_registry")
        if strict:
            raise PublishError(message)
        warnings.warn(message + "; publishing anyway (strict=False): the lines returned are this build's",
                      stacklevel=2)
    target = Path(to)
    lines = []
    listed = [shard["files"][kind] for split in card["splits"].values() for shard in split["shards"]
              for kind in ("sources", "points")]
    for entry in sorted(listed, key=lambda e: e["path"]):
        _copy_atomic(source / entry["path"], target / name / entry["path"])
        lines.append(f"{name}/{entry['path']} sha256:{entry['sha256']}")
    _copy_atomic(source / CARD_NAME, target / name / CARD_NAME)
    lines.insert(0, f"{name}/{CARD_NAME} sha256:{file_sha256(target / name / CARD_NAME)}")
    return lines
