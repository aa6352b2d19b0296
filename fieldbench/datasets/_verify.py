"""Checking a dataset directory against its card, its shard manifests and the registry.

``verify(path)`` re-hashes every file listed in the card, checks the card against itself and
against the shard manifests, reports stray files (anything that is neither a listed shard file, a
manifest, the card nor ``get``'s marker), and, for a standard dataset, compares it with the
registry, shard by shard:

* **identical**: both Parquet files have the registered sha256;
* **equivalent**: other Parquet bytes (another pyarrow writes other metadata) but the same content:
  the fingerprint (``pipeline.fingerprint``) hashes the exact bytes of every source column, of the
  sample ids and coordinates, and of each value column (float32, in row order), so any changed bit
  and any permutation of rows or of values between points fails;
* **close** (only with ``reference=``, a copy that is itself identical or equivalent to the
  registry): the sources and coordinates are exact and every value is within float32 rounding of
  the reference's, elementwise: |v - r| <= ``VALUE_ULPS`` * float32 eps * |r| + ``ABSOLUTE_FLOOR`` *
  max|r| (the floor, 2**-40 of the shard's largest magnitude, covers float64 cancellation noise in
  values near zero). This accepts a rebuild by a numerical stack that rounds differently.

Without a reference a value differing from the registered one fails: the registry holds hashes,
not values, and no hash of values can tell "within rounding" from "changed" (see
``pipeline.fingerprint``). Values are computed in float64 and rounded once to float32, so a
correct rebuild is almost always bit-identical; if not, compare it with a downloaded copy.

Publishing mirrors is ``_publish``; writing the registry is ``_register``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._io import DamagedFileError, file_sha256, read_json
from ..exceptions import DatasetVerificationError
from ..pipeline import (CARD_NAME, README_NAME, SHARD_FILES, CardError, DatasetCard, FileRecord, ShardRecord,
                        dataset_readme, fingerprint, read_card, shard_paths, value_columns)
from ._registry import StaleRegistryError, list_datasets, registry_entries

__all__ = ["VerificationReport", "DatasetVerificationError", "verify", "values_close", "stray_files", "VALUE_ULPS",
           "ABSOLUTE_FLOOR", "MARKER_NAME"]

#: Float32 eps (2**-23: the spacing of float32 numbers in [1, 2)).
FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: A rebuilt float32 value may differ from a reference value by this many float32 eps, relatively.
#: Values are computed in float64 and rounded once; any two correct float64 evaluations round to
#: the same float32 or to neighbours (1 eps). 4 leaves room for float64 differences between
#: platforms, and is still ~1e5 times tighter than any real change in the data.
VALUE_ULPS = 4.0
#: ... plus this fraction of the shard's largest |value| of the column: a value near zero is a
#: cancellation, where float64 noise is relative to the terms, not to the result.
ABSOLUTE_FLOOR = 2.0 ** -40
#: The file in a cached copy recording what ``get`` verified (see ``_fetch``); not a stray.
MARKER_NAME = ".fieldbench-verified.json"


@dataclasses.dataclass
class VerificationReport:
    """What ``verify`` found. ``ok`` is True when there are no problems (notes are informational)."""

    path: Path
    name: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    files_checked: int = 0
    #: Comparison with the registry: "identical" (same bytes), "equivalent" (same content, other
    #: Parquet bytes), "close" (within float32 rounding of a reference copy), "different", or None
    #: (not compared).
    registry: str | None = None
    #: Relative paths of the files that are not part of the dataset.
    strays: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_failed(self, headline: str | None = None) -> VerificationReport:
        if self.problems:
            raise DatasetVerificationError(self, headline)
        return self

    def __str__(self) -> str:
        state = "OK" if self.ok else f"FAILED ({len(self.problems)} problem(s))"
        registry = {None: "not compared with the registry", "identical": "identical to the registry",
                    "equivalent": "equivalent to the registry (same content, other Parquet bytes)",
                    "close": "within float32 rounding of the registered content (checked elementwise against "
                             "a reference copy)",
                    "different": "DIFFERENT from the registry"}[self.registry]
        lines = [f"dataset {self.name or '?'} at {self.path}: {state}; {self.files_checked} file(s) checked; "
                 f"{registry}"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def values_close(found, reference, ulps: float = VALUE_ULPS) -> tuple[bool, str]:
    """Whether every value of ``found`` is within float32 rounding of ``reference`` (same shape),
    elementwise: |v - r| <= ulps * float32 eps * |r| + ``ABSOLUTE_FLOOR`` * max|r|. Returns (ok,
    a description of the worst offender and how many there are)."""
    found = np.asarray(found, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if found.shape != reference.shape:
        return False, f"{found.shape[0] if found.ndim else 1} values, the reference has {reference.shape[0]}"
    if found.size == 0:
        return True, ""
    magnitude = np.abs(reference)
    tolerance = ulps * FLOAT32_EPS * magnitude + ABSOLUTE_FLOOR * float(magnitude.max())
    error = np.abs(found - reference)
    bad = ~(error <= tolerance)  # NaN counts as bad
    if not bad.any():
        return True, ""
    worst = int(np.argmax(np.where(bad, error / np.maximum(tolerance, np.finfo(np.float64).tiny), -1.0)))
    return False, (f"{int(bad.sum())} value(s) beyond float32 rounding, e.g. row {worst}: {found[worst]!r} vs "
                   f"reference {reference[worst]!r} (allowed +-{tolerance[worst]:.3g})")


def stray_files(root: str | os.PathLike, card: DatasetCard) -> list[str]:
    """Relative paths (sorted) of the files under ``root`` that are not part of the dataset: not
    the card, its ``README.md``, ``get``'s marker, or a file or manifest of a shard the card lists.
    Such files break plain folder reads (``pd.read_parquet("<dataset>/points")`` reads every file
    there)."""
    root = Path(root)
    expected = {CARD_NAME, README_NAME, MARKER_NAME}
    for split_name, split in card.splits.items():
        for shard in split.shards:
            expected.update(shard_paths(split_name, shard.index).values())
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative not in expected:
                found.append(relative)
    return sorted(found)


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
        if "fingerprint version" in str(error):  # a registry this fieldbench cannot check against: say so
            report.problems.append(str(error))
        else:
            report.notes.append(f"not compared with the registry: {error}")
        return None


def verify(path: str | os.PathLike, *, against=None, hashes: bool = True,
           reference: str | os.PathLike | None = None) -> VerificationReport:
    """Check the dataset directory ``path``; never raises for a bad dataset, returns a report.

    Args:
      path: a dataset directory (``card.json`` at its root).
      against: None: the registry entry of the card's dataset name when it is a standard
        dataset; a standard dataset's name; a registry entry (mapping); False: no registry check.
      hashes: re-hash every file (default). False checks sizes only (fast, catches truncation).
      reference: another copy of the same standard dataset, itself identical or equivalent to the
        registry: shards whose values are not bit-identical to the registry's are then compared
        with it elementwise, to float32 rounding (``values_close``).

    Use ``report.ok`` / ``report.raise_if_failed()``; ``str(report)`` lists what is wrong.
    """
    root = Path(path)
    report = VerificationReport(path=root)
    try:
        card = read_card(str(root))
    except (FileNotFoundError, DamagedFileError, CardError) as error:
        report.problems.append(str(error))
        return report
    spec = card.spec
    report.name = spec.name

    actual_sha: dict[str, str | None] = {}  # relative path -> sha256 of the file on disk (None: unreadable)
    for split_name, split in card.splits.items():
        if split_name not in spec.splits:
            report.problems.append(f"split {split_name!r} is in the card but not in its spec")
            continue
        split_spec = spec.splits[split_name]
        shards = sorted(split.shards, key=lambda s: s.index)
        indices = [s.index for s in shards]
        if indices != list(range(split_spec.shards)):
            report.problems.append(f"split {split_name!r}: the card lists shards {indices}, its spec has "
                                   f"{split_spec.shards} (0..{split_spec.shards - 1})")
        for shard in shards:
            expected = shard_paths(split_name, shard.index)
            for kind in SHARD_FILES:
                entry = shard.files[kind]
                if entry.path != expected[kind]:
                    report.problems.append(f"split {split_name!r} shard {shard.index}: the card's {kind} "
                                           f"entry should name {expected[kind]}; got {entry.path!r}")
                    continue
                report.files_checked += 1
                actual_sha[entry.path] = _check_file(root, entry, hashes, report)
            _check_manifest(root, split_name, shard, expected["manifest"], report)
        if split.content_digest() != split.content_sha256:
            report.problems.append(f"split {split_name!r}: content_sha256 in the card does not match its file list")
    if card.content_digest() != card.content_sha256:
        report.problems.append("the card's content_sha256 does not match its splits (edited card?)")
    report.strays = stray_files(root, card)
    for stray in report.strays:
        report.problems.append(f"stray file {stray}: not part of the dataset (debris of an interrupted download "
                               f"or run; plain folder reads would trip over it): delete it (`rm '{root / stray}'`) "
                               "or rerun the interrupted command")
    readme = root / README_NAME
    if not readme.is_file() or readme.read_text(errors="replace") != dataset_readme(card):
        report.notes.append(f"{README_NAME} is {'stale' if readme.is_file() else 'missing'} (the dataset card that "
                            f"Hugging Face `datasets.load_dataset` reads): rewrite it with `fieldbench datasets "
                            f"migrate {root}`")
    missing_splits = [s for s in spec.splits if s not in card.splits]
    if missing_splits:
        report.notes.append(f"split(s) {missing_splits} of the spec were not generated")

    entries = _resolve_against(against, report)
    if entries is not None:
        references = None
        if reference is not None:
            references = _reference_tables(Path(reference), entries, hashes, report)
        if references is not False:
            _compare_with_registry(root, card, entries, actual_sha, report, references)
    elif reference is not None:
        report.problems.append(f"cannot use the reference {reference}: {spec.name!r} has no registry entry to "
                               "check it against")
    return report


def _check_file(root: Path, entry: FileRecord, hashes: bool, report: VerificationReport) -> str | None:
    """Check one listed file's size (and sha256 with ``hashes``); returns its sha256 (None: missing;
    the card's when ``hashes`` is False and the size is right, i.e. trusted)."""
    file = root / entry.path
    if not file.is_file():
        report.problems.append(f"missing file {entry.path} (listed in the card)")
        return None
    size = file.stat().st_size
    if size != entry.bytes:
        report.problems.append(f"{entry.path}: {size} bytes, the card says {entry.bytes} (truncated or replaced file)")
    if hashes:
        digest = file_sha256(file)
        if digest != entry.sha256:
            report.problems.append(f"{entry.path}: sha256 checksum mismatch: the file hashes to {digest}, the card "
                                   f"says {entry.sha256} (corrupted or tampered file: fetch or regenerate the dataset)")
        return digest
    return entry.sha256 if size == entry.bytes else None


def _check_manifest(root: Path, split_name: str, shard: ShardRecord, relative: str, report: VerificationReport) -> None:
    """The shard's manifest must say what the card says about it (timings aside)."""
    manifest_path = root / relative
    if not manifest_path.is_file():
        report.notes.append(f"no manifest {relative} (fine for a download; generate() would redo this shard)")
        return
    try:
        manifest = read_json(manifest_path, "delete it; a `fieldbench generate` rerun redoes the shard")
    except DamagedFileError as error:
        report.problems.append(str(error))
        return
    try:
        agrees = ShardRecord.from_dict(manifest).without_timings() == shard.without_timings()
    except CardError:
        agrees = False
    if not agrees:
        report.problems.append(f"{relative} disagrees with the card about shard {shard.index} of split {split_name!r}")


def _reference_tables(reference: Path, entries: Mapping, hashes: bool, report: VerificationReport):
    """A reader of the reference copy's points tables by (split, index), or False (reported) when
    the reference is not itself identical or equivalent to the registry."""
    import pyarrow.parquet as pq

    checked = verify(reference, against=entries, hashes=hashes)
    if not checked.ok or checked.registry not in ("identical", "equivalent"):
        report.problems.append(f"the reference {reference} is not an exact copy of the registered dataset "
                               f"({'; '.join(checked.problems[:2]) or checked.registry}), so it cannot vouch for "
                               "values: use a copy that `fieldbench datasets verify` finds identical")
        return False
    card = read_card(str(reference))
    paths = {(split_name, shard.index): reference / shard.files["points"].path
             for split_name, split in card.splits.items() for shard in split.shards}
    report.notes.append(f"reference copy for elementwise comparison: {reference} ({checked.registry} to the registry)")
    return lambda split_name, index: pq.read_table(paths[(split_name, index)])


def _compare_with_registry(root: Path, card: DatasetCard, entries: Mapping, actual_sha: Mapping,
                           report: VerificationReport, references=None) -> None:
    import pyarrow.parquet as pq

    before = len(report.problems)
    exact, close = True, False
    if card.spec.sha256 != entries.get("spec_sha256"):
        report.problems.append(f"the dataset's spec differs from the registered spec of {card.name!r}")
        report.registry = "different"
        return
    files = entries["files"]
    name_prefix = entries["card"].rsplit("/", 1)[0] + "/"
    for split_name, registered in entries["splits"].items():
        split = card.splits.get(split_name)
        if split is None:
            report.problems.append(f"split {split_name!r} (registered) is missing")
            continue
        shards = {s.index: s for s in split.shards}
        for expected_shard in registered["shards"]:
            index = expected_shard["index"]
            shard = shards.get(index)
            where = f"split {split_name!r} shard {index}"
            if shard is None:
                report.problems.append(f"{where} (registered) is missing")
                continue
            relative = {kind: path[len(name_prefix):] for kind, path in expected_shard["files"].items()}
            same = all(actual_sha.get(relative[kind]) == files[path]["sha256"]
                       for kind, path in expected_shard["files"].items())
            if same:
                continue
            exact = False
            if any(actual_sha.get(relative[kind]) is None for kind in relative):
                report.problems.append(f"{where}: cannot compare with the registry (file missing)")
                continue
            try:
                points = pq.read_table(root / relative["points"])
                found = fingerprint(pq.read_table(root / relative["sources"]), points)
            except Exception as error:  # unreadable Parquet: report, don't crash
                report.problems.append(f"{where}: cannot read its Parquet files ({type(error).__name__}: {error})")
                continue
            expected = expected_shard["fingerprint"]
            for key, what in (("sources_sha256", "sources"), ("points_sha256", "point coordinates")):
                if found[key] != expected[key]:
                    report.problems.append(f"{where}: {what} differ from the registry ({key} {found[key]} != "
                                           f"registered {expected[key]}): not the standard dataset")
            if set(found["values_sha256"]) != set(expected["values_sha256"]):
                report.problems.append(f"{where}: value columns {sorted(found['values_sha256'])} != registered "
                                       f"{sorted(expected['values_sha256'])}")
                continue
            differing = [c for c in value_columns(points) if found["values_sha256"][c] != expected["values_sha256"][c]]
            if not differing or found["points_sha256"] != expected["points_sha256"]:
                continue
            if references is None:
                report.problems.append(
                    f"{where}: column(s) {differing} differ from the registry (their values_sha256 do not match: a "
                    f"value changed, or values moved between points); a rebuild whose numerical stack rounds "
                    f"differently would show this too: compare it elementwise with a downloaded copy "
                    f"(`fieldbench datasets verify {root} --reference COPY`), or download the dataset from a mirror")
                continue
            reference_points = references(split_name, index)
            for column in differing:
                ok, detail = values_close(points.column(column).to_numpy(),
                                          reference_points.column(column).to_numpy())
                if ok:
                    close = True
                else:
                    report.problems.append(f"{where}: column {column!r} differs from the reference copy: {detail}")
    if len(report.problems) > before:
        report.registry = "different"
    else:
        report.registry = "identical" if exact else ("close" if close else "equivalent")
