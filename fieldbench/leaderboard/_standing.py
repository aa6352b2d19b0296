"""Official or local: the rules a record must meet to enter the board's tables.

An official record is scored on every sample of a full standard dataset (not a ``-mini`` one, no
``samples_limit``), a learned model's over at least ``OFFICIAL_SEEDS`` independently trained
checkpoints (mean +- std, as the paper and OGB report), with its validation-split score (the
record schema requires it) and the submission metadata a reader needs (who, where the code is,
what it is). Anything else is a local result: ``verify_records`` refuses it unless ``allow_local``
and the board lists it apart, each with the reasons below.
"""

from __future__ import annotations

from ..models._registry import REFERENCE

__all__ = ["OFFICIAL_SEEDS", "REQUIRED_METADATA", "VALIDATION_SPLIT", "is_mini", "local_reasons"]

#: Independently trained checkpoints a learned model's official record averages over.
OFFICIAL_SEEDS = 3
#: Submission fields an official record must fill (``fieldbench submit --author --code-url --description``;
#: a model whose code is fieldbench's own needs no code URL).
REQUIRED_METADATA = ("authors", "code_url", "description")
#: The split whose score a record carries next to the test splits (model selection happens there).
VALIDATION_SPLIT = "val"


def is_mini(dataset: str) -> bool:
    """A mini dataset: a few dozen samples per split of a standard one, for tests and quick runs."""
    return dataset.endswith("-mini")


def local_reasons(record: dict) -> list[str]:
    """Why ``record`` is a local result and not an official one, one phrase each with its fix (empty:
    official)."""
    reasons = []
    dataset = record.get("dataset") or {}
    name = str(dataset.get("name", ""))
    if dataset.get("samples_limit") is not None:
        reasons.append(f"scored on only the first {dataset['samples_limit']} samples of each split (submit without "
                       "a limit)")
    if is_mini(name):
        reasons.append(f"scored on {name}, a mini dataset for tests (submit on {name.removesuffix('-mini')})")
    model = record.get("model") or {}
    if model.get("spec") not in REFERENCE:
        count = (record.get("seeds") or {}).get("count", 1)
        if count < OFFICIAL_SEEDS:
            reasons.append(f"{count} seed(s) of a learned model (submit >= {OFFICIAL_SEEDS} checkpoints, one per seed: "
                           "--checkpoint A --checkpoint B --checkpoint C)")
    submission = record.get("submission") or {}
    # fieldbench's own models (baselines, references) have their code in this package, named in the
    # record (model.code, provenance.git_commit): no other code URL to ask for.
    builtin = str((model.get("code") or {}).get("module", "")).startswith("fieldbench.")
    missing = [field for field in REQUIRED_METADATA if not submission.get(field)
               and not (field == "code_url" and builtin)]
    if missing:
        options = ", ".join("--" + field.replace("_", "-").removesuffix("s") for field in missing)
        reasons.append(f"no {', '.join(missing)} in its submission metadata (submit with {options})")
    return reasons
